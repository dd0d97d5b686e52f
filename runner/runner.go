// Package runner runs Weir pipelines: it binds a pipeline's logical sources
// and sinks to URIs, opens the state backend, executes the pipeline in
// backfill or stream mode, and reports what happened.
//
// A pipeline's main function builds the pipeline and hands it to Main, which
// owns the command line (a flag per option, --job, --print-job, and WEIR_*
// variables; config.go); programs that embed Weir call Run with Options, and
// front ends that build a graph of their own call RunGraph.
//
// The two modes run the same plan, the same operators and the same state
// backend. Backfill reads bounded inputs, holds processing time still, fires
// every window when the input ends and exits. Stream reads until stopped
// (SIGINT or SIGTERM: stop reading and finish without firing pending
// windows) or drained (SIGUSR1, or Options.Drain: stop reading, advance the
// watermark to the end of time, fire every window, flush the sinks).
//
// Dependency direction: runner imports sdk, internal/graph, state,
// io/connector and its own internal engine, and registers the built-in
// connectors by importing them (io/file, io/discard, io/memory, io/kafka,
// io/nexmark). It reaches what only some systems do through interfaces a
// connector implements: a group of processes (connector.Grouper), data that
// continues other data (connector.Continuer), a changelog
// (state.ChangeLogStore). Nothing in Weir imports runner except main
// packages and tests.
package runner

import (
	"context"
	"errors"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	_ "github.com/weir-dev/weir/io/discard" // discard:// sinks
	_ "github.com/weir-dev/weir/io/file"    // file:// sources and sinks
	_ "github.com/weir-dev/weir/io/kafka"   // kafka:// sources and sinks
	_ "github.com/weir-dev/weir/io/memory"  // mem:// sources and sinks
	_ "github.com/weir-dev/weir/io/nexmark" // nexmark:// generated sources
	"github.com/weir-dev/weir/sdk"
)

// Mode is how a pipeline runs.
type Mode string

const (
	// Backfill reads bounded inputs to their end, fires every window and
	// exits.
	Backfill Mode = "backfill"
	// Stream reads until stopped or drained.
	Stream Mode = "stream"
	// BackfillThenStream reads history from the bindings to its end, then
	// continues on the Then bindings, live, with the same state (see
	// Options.Then and Options.Handover).
	BackfillThenStream Mode = "backfill-then-stream"
)

// Errors of the runner, for errors.Is.
var (
	// ErrBinding is wrapped by every error about bindings: unbound names,
	// bindings for names the pipeline does not have, unusable URIs.
	ErrBinding = errors.New("runner: binding")
	// ErrOptions is wrapped by invalid options.
	ErrOptions = errors.New("runner: invalid options")
	// ErrStateDir is returned when the state directory holds state from an
	// earlier run and ResetState is not set.
	ErrStateDir = errors.New("runner: state directory in use")
	// ErrInterrupted is returned when a backfill is stopped or drained
	// before its input ended: its output is incomplete, so nothing is
	// committed.
	ErrInterrupted = errors.New("runner: backfill interrupted before the end of its input; output not committed")
)

// Result is what a run did.
type Result struct {
	Mode    Mode
	Elapsed time.Duration
	// Read and Written count records by binding.
	Read, Written map[string]int64
	// Late counts late records dropped (not written anywhere) by transform.
	Late map[string]int64
	// DeadLettered counts unreadable records.
	DeadLettered int64
	// OutOfRange counts records dropped for an event time outside
	// Options.From and To.
	OutOfRange int64
	// Checkpoints counts the checkpoints the run completed.
	Checkpoints int64
	// PeakStateKeys and PeakStateBytes are the largest state the run
	// held, sampled every statePeakEvery: the backend's live keys (exact in
	// memory, estimated on Pebble; not counting what the keyed instances'
	// write-back caches hold), and the bytes of the backend on disk and in
	// memory plus those of the caches.
	PeakStateKeys, PeakStateBytes int64
	// Drained says the run ended by a drain; Stopped by a stop.
	Drained, Stopped bool
	// PartlyCommitted lists the sinks that were committed before another
	// failed to commit (the run then returns an error).
	PartlyCommitted []string
}

// add sums what r did into t.
func (t *Result) add(r *Result) {
	t.Elapsed += r.Elapsed
	for _, m := range []struct {
		dst *map[string]int64
		src map[string]int64
	}{{&t.Read, r.Read}, {&t.Written, r.Written}, {&t.Late, r.Late}} {
		if *m.dst == nil {
			*m.dst = map[string]int64{}
		}
		for k, v := range m.src {
			(*m.dst)[k] += v
		}
	}
	t.DeadLettered += r.DeadLettered
	t.OutOfRange += r.OutOfRange
	t.Checkpoints += r.Checkpoints
	t.PeakStateKeys, t.PeakStateBytes = max(t.PeakStateKeys, r.PeakStateKeys), max(t.PeakStateBytes, r.PeakStateBytes)
}

// Run validates p against the options, binds it, and runs it to the end.
func Run(ctx context.Context, p *sdk.Pipeline, opts Options) (*Result, error) {
	return RunGraph(ctx, p.Graph(), opts)
}

// RunGraph is Run for a pipeline graph, whatever built it: Weir's typed SDK
// (Run), or another front end that translates its pipelines to a graph.
func RunGraph(ctx context.Context, g *graph.Graph, opts Options) (*Result, error) {
	opts.EnsureDefaults()
	opts, err := opts.withJob()
	if err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if err := checkBindings(g, opts.Bindings); err != nil {
		return nil, err
	}
	// The memory budget's garbage-collector settings are the process's: a
	// group's tasks and the two parts of backfill-then-stream share them.
	defer memoryBudget(opts.Memory).applyGC()()
	switch {
	case opts.Group != "":
		return runGroup(ctx, g, opts)
	case opts.Mode == BackfillThenStream:
		return runBackfillThenStream(ctx, g, opts)
	}
	return runOnce(ctx, g, opts, part{})
}
