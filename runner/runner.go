// Package runner runs Weir pipelines: it binds a pipeline's logical sources
// and sinks to URIs, opens the state backend, executes the pipeline in
// backfill or stream mode, and reports what happened.
//
// A pipeline's main function builds the pipeline and hands it to Main, which
// owns the command line (--mode, --bind, --state-dir, --parallelism,
// --dead-letter, --job); programs that embed Weir call Run with Options.
//
// The two modes run the same plan, the same operators and the same state
// backend. Backfill reads bounded inputs, holds processing time still, fires
// every window when the input ends and exits. Stream reads until stopped
// (SIGINT or SIGTERM: stop reading and finish without firing pending
// windows) or drained (SIGUSR1, or Options.Drain: stop reading, advance the
// watermark to the end of time, fire every window, flush the sinks).
//
// Dependency direction: runner imports sdk, state, io/connector and the
// built-in connectors (io/file, io/discard, io/memory), and its own internal
// engine. Nothing in Weir imports runner except main packages and tests.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/weir-dev/weir/internal/fsutil"
	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
	_ "github.com/weir-dev/weir/io/discard" // discard:// sinks
	_ "github.com/weir-dev/weir/io/file"    // file:// sources and sinks
	_ "github.com/weir-dev/weir/io/kafka"   // kafka:// sources and sinks
	_ "github.com/weir-dev/weir/io/memory"  // mem:// sources and sinks
	_ "github.com/weir-dev/weir/io/nexmark" // nexmark:// generated sources
	"github.com/weir-dev/weir/runner/internal/engine"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
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

// Options configure a run. The zero value runs a backfill with everything
// defaulted except the bindings.
type Options struct {
	// Mode is backfill or stream. Default Backfill.
	Mode Mode
	// Bindings bind the pipeline's logical names to URIs.
	Bindings map[string]string
	// StateDir is where the Pebble state backend keeps its files. Default:
	// a temporary directory removed after the run.
	StateDir string
	// StateBackend is "pebble" (default) or "memory".
	StateBackend string
	// ResetState empties StateDir before the run if it holds state.
	ResetState bool
	// Parallelism is the number of workers per keyed stage and readers per
	// source. Default: the number of CPUs.
	Parallelism int
	// DeadLetter is the URI of the sink for unreadable records. Default:
	// none; such records are counted and logged.
	DeadLetter string
	// Progress is the interval between progress logs. Default 5s; negative
	// turns them off.
	Progress time.Duration
	// Logger receives logs. Default slog.Default().
	Logger *slog.Logger
	// Drain, when closed, drains a stream run.
	Drain <-chan struct{}
	// Stop, when closed, stops a stream run without firing pending windows.
	Stop <-chan struct{}
	// CheckpointDir turns checkpoints on (stream mode only): every
	// CheckpointInterval a consistent snapshot of state and source
	// positions goes there, and a run resumes from the newest one. A path
	// or a file:// URI.
	CheckpointDir string
	// CheckpointInterval is the time between checkpoints. Default 10s.
	CheckpointInterval time.Duration
	// From and To, when either is set, limit the run to the event time
	// [From, To): records outside are dropped (and counted), and sources
	// skip what they know to be outside (Parquet row groups by statistics,
	// date=/hour= partition folders).
	From, To time.Time
	// TableTopics gives tables bound to a snapshot a compacted topic to
	// continue from, by name (--table-topic): the snapshot is loaded, then
	// the topic to its end, and in stream mode the topic is followed.
	TableTopics map[string]string
	// JobID names the job: "{job}" in the bindings and in the state,
	// checkpoint, changelog and dead-letter locations becomes it, and the
	// state and checkpoint directories are marked as its own, so that
	// another job (a replay) refuses them. See job.go.
	JobID string
	// Then, in BackfillThenStream mode, binds sources again for the live
	// part, by name: kafka:// topics that continue the history bound in
	// Bindings.
	Then map[string]string
	// Handover says where the history ends and the live part starts: an
	// event time (RFC 3339, a date or epoch ms; history records from it on
	// and live records before it are dropped, and topics start at the
	// first offset of that time), or the URI of a handover file giving the
	// topic's offsets that follow the history (exact; weir cp writes one
	// as _kafka-offsets.json beside a topic it copies).
	Handover string

	// phase and stopAtEnd drive the two runs of BackfillThenStream.
	phase     string
	stopAtEnd bool
	// Group, in stream mode, scales the job out over the Kafka consumer
	// group of this name (group.go): every process started with it runs
	// the tasks, one per input partition, that the group assigns it, each
	// with state, checkpoints (under CheckpointDir, which the processes
	// share) and transactions of its own. A task that moves to another
	// process resumes there from its latest checkpoint.
	Group string
	// GroupSessionTimeout is how long the group waits for a process that
	// stopped answering before its tasks move (default 45s).
	GroupSessionTimeout time.Duration
	// GroupRebalanceTimeout is how long a rebalance waits for the
	// processes to stop their tasks and rejoin (default 60s); a process
	// killed during a rebalance holds it this long.
	GroupRebalanceTimeout time.Duration
	// task is set on the runs of a group's tasks.
	task *task
	// Changelog, with CheckpointDir, writes every state change to a Kafka
	// changelog too (kafka://host:port/PREFIX; see kafka.OpenChangelog),
	// in a transaction per checkpoint. Checkpoints then keep no copy of the
	// state: a restart reuses the local state directory when it is at the
	// checkpoint, and otherwise rebuilds the state from the changelog.
	Changelog string
	// Memory is the memory budget of the job, in bytes (see memory.go): it
	// sizes the state caches and Pebble's block cache, and holds the Go
	// heap under it. 0: no budget.
	Memory int64
	// BatchSize and QueueLength tune the shuffle (defaults 512 and 16).
	BatchSize, QueueLength int
	// Clock overrides processing time, for tests.
	Clock func() windowing.Time
}

// statePeakEvery is how often a run samples the size of its state.
const statePeakEvery = 100 * time.Millisecond

// timeRange is From and To as a connector.TimeRange, or nil.
func (o *Options) timeRange() *connector.TimeRange {
	if o.From.IsZero() && o.To.IsZero() {
		return nil
	}
	r := &connector.TimeRange{From: windowing.MinTime, To: windowing.MaxTime}
	if !o.From.IsZero() {
		r.From = windowing.FromTime(o.From)
	}
	if !o.To.IsZero() {
		r.To = windowing.FromTime(o.To)
	}
	return r
}

// EnsureDefaults fills unset fields with their defaults.
func (o *Options) EnsureDefaults() {
	if o.Mode == "" {
		o.Mode = Backfill
	}
	if o.StateBackend == "" {
		o.StateBackend = "pebble"
	}
	if o.Parallelism == 0 {
		o.Parallelism = min(runtime.NumCPU(), state.DefaultKeyGroups)
	}
	if o.Progress == 0 {
		o.Progress = 5 * time.Second
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate reports every problem with the options themselves (bindings are
// checked against the pipeline by Run).
func (o *Options) Validate() error {
	var errs []error
	switch o.Mode {
	case Backfill, Stream, BackfillThenStream:
	default:
		errs = append(errs, fmt.Errorf("%w: --mode=%q: want backfill, stream or backfill-then-stream", ErrOptions, o.Mode))
	}
	switch o.StateBackend {
	case "pebble", "memory":
	default:
		errs = append(errs, fmt.Errorf("%w: --state-backend=%q: want pebble or memory", ErrOptions, o.StateBackend))
	}
	if o.Mode == BackfillThenStream {
		if o.CheckpointDir == "" {
			errs = append(errs, fmt.Errorf("%w: --mode=backfill-then-stream needs --checkpoint-dir (the history's state is handed to the live part through a checkpoint)", ErrOptions))
		}
		if len(o.Then) == 0 {
			errs = append(errs, fmt.Errorf("%w: --mode=backfill-then-stream needs --then NAME=URI for the live sources", ErrOptions))
		}
		if o.Handover == "" {
			errs = append(errs, fmt.Errorf("%w: --mode=backfill-then-stream needs --handover: an event time, or the URI of a handover file (weir cp writes _kafka-offsets.json)", ErrOptions))
		}
	} else if len(o.Then) > 0 || o.Handover != "" {
		errs = append(errs, fmt.Errorf("%w: --then and --handover are for --mode=backfill-then-stream", ErrOptions))
	}
	if o.CheckpointDir != "" && o.Mode == Backfill {
		errs = append(errs, fmt.Errorf("%w: --checkpoint-dir: checkpoints are for --mode=stream (a backfill reruns from its files)", ErrOptions))
	}
	if !o.To.IsZero() && !o.From.Before(o.To) {
		errs = append(errs, fmt.Errorf("%w: --from %s is not before --to %s", ErrOptions, o.From.Format(time.RFC3339), o.To.Format(time.RFC3339)))
	}
	if o.Group != "" {
		if o.Mode != Stream {
			errs = append(errs, fmt.Errorf("%w: --group is for --mode=stream", ErrOptions))
		}
		if o.CheckpointDir == "" {
			errs = append(errs, fmt.Errorf("%w: --group needs --checkpoint-dir, shared by the group's processes (a task that moves resumes from its checkpoints)", ErrOptions))
		}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--group-session-timeout", o.GroupSessionTimeout}, {"--group-rebalance-timeout", o.GroupRebalanceTimeout}} {
		if d.v < 0 || (d.v > 0 && o.Group == "") {
			errs = append(errs, fmt.Errorf("%w: %s=%s: want a positive duration, with --group", ErrOptions, d.flag, d.v))
		}
	}
	if o.Changelog != "" && o.CheckpointDir == "" {
		errs = append(errs, fmt.Errorf("%w: --changelog needs --checkpoint-dir (the checkpoints keep where the changelog is)", ErrOptions))
	}
	if o.CheckpointInterval < 0 {
		errs = append(errs, fmt.Errorf("%w: --checkpoint-interval=%s must be positive", ErrOptions, o.CheckpointInterval))
	}
	if o.Memory != 0 && o.Memory < minMemory {
		errs = append(errs, fmt.Errorf("%w: --memory=%s: want at least %s", ErrOptions, humanize.IBytes(uint64(max(o.Memory, 0))), humanize.IBytes(minMemory)))
	}
	if o.Parallelism < 0 || o.Parallelism > state.DefaultKeyGroups {
		errs = append(errs, fmt.Errorf("%w: --parallelism=%d: want 1 to %d", ErrOptions, o.Parallelism, state.DefaultKeyGroups))
	}
	return errors.Join(errs...)
}

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

// Run validates p against the options, binds it, and runs it to the end.
func Run(ctx context.Context, p *sdk.Pipeline, opts Options) (*Result, error) {
	opts.EnsureDefaults()
	opts, err := opts.withJob()
	if err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Group != "" && opts.task == nil {
		return runGroup(ctx, p, opts)
	}
	budget := memoryBudget(opts.Memory)
	if opts.task == nil {
		// A group's tasks share the process's settings (runGroup).
		defer budget.applyGC()()
	}
	if opts.Mode == BackfillThenStream {
		return runBackfillThenStream(ctx, p, opts)
	}
	g := p.Graph()
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if err := checkBindings(g, opts.Bindings); err != nil {
		return nil, err
	}
	log := opts.Logger
	start := time.Now()

	var (
		ckpts    *checkpointStore
		resume   *checkpointMetaFile
		resumeAt string // the checkpoint's directory in ckpts
	)
	if opts.StateDir != "" && opts.StateBackend != "memory" {
		if err := claimStateDir(opts.StateDir, opts.JobID); err != nil {
			return nil, err
		}
	}
	if opts.CheckpointDir != "" {
		if ckpts, err = openCheckpointStore(opts.CheckpointDir); err != nil {
			return nil, err
		}
		if err := claim(ckpts.fs, ckpts.dir, "--checkpoint-dir", opts.JobID); err != nil {
			return nil, err
		}
		if ckpts.finished() {
			return nil, fmt.Errorf("%w: --checkpoint-dir %s: the job that kept checkpoints there ran to its end (drained, or its input ended); resuming would repeat its last output: use a new directory", ErrOptions, ckpts)
		}
		if resume, resumeAt, err = ckpts.latest(); err != nil {
			return nil, err
		}
		if resume != nil {
			if err := checkStateVersions(resume, g); err != nil {
				return nil, err
			}
		}
	}
	states := declaredStates(g)
	clog, restoreLog, err := openChangelog(ctx, g, &opts, resume, resume != nil && ckpts.committed(resumeAt, changelogCommitted))
	if err != nil {
		return nil, err
	}
	if clog != nil {
		defer clog.Close()
	}
	backend, cleanup, err := openBackend(&opts, resume, func() (string, func(), error) { return ckpts.localState(resumeAt) }, restoreLog)
	if err != nil {
		return nil, err
	}
	if opts.StateDir != "" && opts.StateBackend != "memory" {
		// Restoring or resetting emptied it: mark it again.
		if err := claimStateDir(opts.StateDir, opts.JobID); err != nil {
			cleanup(0)
			return nil, err
		}
	}
	if clog != nil {
		backend = state.Logged(backend, clog.log)
	}
	// lastCheckpoint is the newest checkpoint written; a stopped run marks
	// its state directory with it.
	var (
		lastCheckpoint  int64
		finalCheckpoint bool
		checkpoints     int64
		// positions reports completed checkpoints' positions to the
		// sources that take them (nil: none does, or no checkpoints).
		positions *positionCommitter
	)
	defer func() { cleanup(lastCheckpoint) }()

	sources, sinks, dead, err := openBindings(ctx, g, &opts)
	closeSources := func() {
		for _, s := range sources {
			s.Close()
		}
	}
	abortSinks := func() {
		for _, s := range sinks {
			s.Abort()
		}
		if dead != nil {
			dead.Abort()
		}
	}
	if err == nil && ckpts != nil {
		err = checkpointSinks(sinks, dead, log)
	}
	if err == nil && ckpts != nil {
		// Two-phase sinks commit what the checkpoint we resume from
		// pre-committed, and drop what later, incomplete ones did; with
		// no checkpoint to resume from, they drop everything pending.
		var (
			at      int64
			handles map[string][]byte
		)
		if resume != nil {
			at, handles = resume.ID, resume.Sinks
			if ckpts.committed(resumeAt, sinksCommitted) {
				handles = nil // committed already: Recover only discards what came after
			}
		}
		all := maps.Clone(sinks)
		if dead != nil {
			all["dead-letter"] = dead
		}
		for name, s := range all {
			if cs, ok := s.(connector.CheckpointSink); ok && err == nil {
				if rerr := cs.Recover(ctx, at, handles[name]); rerr != nil {
					err = fmt.Errorf("runner: recovering %q at checkpoint %d: %w", name, at, rerr)
				}
			}
		}
	}
	if err != nil {
		closeSources()
		abortSinks()
		return nil, err
	}
	if opts.Mode == Backfill {
		for name, s := range sources {
			if !s.Bounded() {
				closeSources()
				abortSinks()
				return nil, fmt.Errorf("%w %q: %s is unbounded; a backfill needs bounded input (use --mode=stream)", ErrBinding, name, opts.Bindings[name])
			}
		}
	}

	metrics := engine.NewMetrics()
	drain, stop := opts.Drain, opts.Stop
	drained, stopped := watchClosed(drain), watchClosed(stop)
	if opts.Mode == Backfill {
		// A backfill's output is complete only at the end of its input:
		// a stop or a drain aborts it.
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		go func(stop, drain <-chan struct{}) {
			select {
			case <-stop:
				cancel(ErrInterrupted)
			case <-drain:
				cancel(ErrInterrupted)
			case <-ctx.Done():
			}
		}(stop, drain)
		drain, stop = nil, nil
	}
	cfg := engine.Config{
		Parallelism:     opts.Parallelism,
		KeyGroups:       g.KeyGroups,
		Backend:         backend,
		Sources:         sources,
		Sinks:           sinks,
		DeadLetter:      dead,
		Bounded:         opts.Mode == Backfill,
		Clock:           opts.Clock,
		Drain:           drain,
		Stop:            stop,
		BatchSize:       opts.BatchSize,
		QueueLength:     opts.QueueLength,
		StateCacheBytes: budget.stateCaches(),
		Logger:          log,
		Metrics:         metrics,
		Range:           opts.timeRange(),
		StopAtEnd:       opts.stopAtEnd,
	}
	if ckpts != nil {
		cfg.CheckpointInterval = opts.CheckpointInterval
		cfg.OnCommitted = func(id int64) {
			if err := ckpts.markCommitted(id, sinksCommitted); err != nil {
				log.Warn("marking checkpoint committed", "id", id, "err", err)
			}
		}
		cfg.OnCheckpoint = func(id int64, final bool, splits engine.SplitStates, handles map[string][]byte) error {
			begin := time.Now()
			var cm *changelogMeta
			if clog != nil {
				h, err := clog.log.PreCommit(ctx)
				if err != nil {
					return err
				}
				cm = &changelogMeta{URI: opts.Changelog, Handle: h, Base: clog.base}
			}
			size, err := ckpts.write(backend, checkpointMetaFile{ID: id, Splits: splits, Sinks: handles, Changelog: cm, States: states, Phase: opts.phase, StateFormat: stateFormat})
			if err != nil {
				return err
			}
			if clog != nil {
				if err := clog.log.Commit(ctx); err != nil {
					return err
				}
				if err := ckpts.markCommitted(id, changelogCommitted); err != nil {
					return err
				}
			}
			lastCheckpoint, finalCheckpoint = id, final
			checkpoints++
			positions.committed(splits)
			log.Info("checkpoint", "id", id, "mb", size>>20, "took", time.Since(begin).Round(time.Millisecond))
			return nil
		}
		if resume != nil {
			cfg.FirstCheckpointID, cfg.Resume = resume.ID, resume.Splits
			log.Info("resuming from checkpoint", "id", resume.ID, "written", resume.Written)
		}
	}
	log.Info("run starting", "mode", opts.Mode, "parallelism", opts.Parallelism, "state", backendDesc(&opts), "memory", budget, "sources", strings.Join(g.Sources(), ","), "sinks", strings.Join(g.Sinks(), ","))
	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	var peakKeys, peakBytes atomic.Int64
	sample := func() {
		m := backend.Metrics()
		for _, x := range []struct {
			peak *atomic.Int64
			v    int64
		}{{&peakKeys, m.Keys}, {&peakBytes, m.DiskBytes + m.MemBytes + metrics.CachedBytes()}} {
			for old := x.peak.Load(); x.v > old && !x.peak.CompareAndSwap(old, x.v); old = x.peak.Load() {
			}
		}
	}
	progressWG.Add(1)
	go func() {
		defer progressWG.Done()
		t := time.NewTicker(statePeakEvery)
		defer t.Stop()
		for {
			select {
			case <-progressDone:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	if opts.Progress > 0 {
		progressWG.Add(1)
		go func() {
			defer progressWG.Done()
			reportProgress(log, metrics, backend, opts.Progress, start, progressDone)
		}()
	}
	// Tables are loaded before the pipeline runs; followed topics stop
	// with the run, and a failing one fails it.
	runCtx, stopRun := context.WithCancelCause(ctx)
	if ckpts != nil {
		var group committer
		if opts.task != nil {
			group = opts.task.group
		}
		positions = startPositionCommitter(ctx, sources, group, log)
	}
	tables, runErr := loadTables(runCtx, g, &opts, backend, log, stopRun)
	if runErr == nil {
		runErr = engine.Run(runCtx, g, cfg)
	}
	if cause := context.Cause(runCtx); runErr != nil && cause != nil && !errors.Is(cause, context.Canceled) && ctx.Err() == nil {
		runErr = cause // a followed table's error, not the cancellation it caused
	}
	stopRun(nil)
	if terr := tables.wait(); runErr == nil {
		runErr = terr
	}
	sample()
	close(progressDone)
	progressWG.Wait()
	positions.close()
	closeSources()

	res := &Result{Mode: opts.Mode, Elapsed: time.Since(start), DeadLettered: metrics.DeadLettered.Load(), OutOfRange: metrics.OutOfRange.Load(), Checkpoints: checkpoints, Drained: drained(), Stopped: stopped(),
		PeakStateKeys: peakKeys.Load(), PeakStateBytes: peakBytes.Load()}
	res.Read, res.Written, res.Late = metrics.Snapshot()
	if opts.stopAtEnd && finalCheckpoint {
		// The history of a backfill-then-stream job was read to its end
		// and stopped there: the live part resumes from its checkpoint.
		res.Stopped = true
	}
	if ckpts != nil && res.Stopped && !finalCheckpoint && runErr == nil {
		// The stop came once the run had ended (its input read, or a drain
		// done), too late for a final checkpoint: the run went to its end,
		// and is committed and marked finished as such. Resuming it from
		// an earlier checkpoint would repeat its output.
		res.Stopped = false
	}
	if cause := context.Cause(ctx); cause != nil && (runErr == nil || errors.Is(runErr, context.Canceled)) {
		runErr = cause
	}
	if runErr == nil {
		runErr = backend.Flush()
	}
	if !res.Stopped || !finalCheckpoint || runErr != nil {
		// Only a stop's final checkpoint leaves the state exactly at a
		// checkpoint.
		lastCheckpoint = 0
	}
	if runErr != nil {
		abortSinks()
		return res, runErr
	}
	// Commit every sink: output becomes visible only now. The first sink
	// that fails to commit stops the others, which are aborted.
	names := make([]string, 0, len(sinks))
	for name := range sinks {
		names = append(names, name)
	}
	sort.Strings(names)
	commit := func(name string, s connector.Sink) error {
		if err := s.Commit(ctx); err != nil {
			return fmt.Errorf("runner: committing %q: %w", name, err)
		}
		return nil
	}
	for i, name := range names {
		if err := commit(name, sinks[name]); err != nil {
			for _, rest := range names[i+1:] {
				sinks[rest].Abort()
			}
			if dead != nil {
				dead.Abort()
			}
			res.PartlyCommitted = names[:i]
			return res, err
		}
	}
	if dead != nil {
		if err := commit("dead-letter", dead); err != nil {
			res.PartlyCommitted = names
			return res, err
		}
	}
	if ckpts != nil && !res.Stopped {
		// The job ran to its end (drained, or its input ended): its output
		// after the last checkpoint is committed, so resuming from that
		// checkpoint would repeat it.
		if err := ckpts.markFinished(); err != nil {
			return res, fmt.Errorf("runner: marking the checkpoints finished: %w", err)
		}
	}
	return res, nil
}

func watchClosed(ch <-chan struct{}) func() bool {
	return func() bool {
		if ch == nil {
			return false
		}
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}
}

func backendDesc(o *Options) string {
	if o.StateBackend == "memory" {
		return "memory"
	}
	if o.StateDir == "" {
		return "pebble (temporary directory)"
	}
	return "pebble " + o.StateDir
}

// checkBindings reports every logical name read or written but not bound,
// and every binding that names nothing in the pipeline.
func checkBindings(g *graph.Graph, b map[string]string) error {
	var errs []error
	known := map[string]bool{}
	for _, t := range g.Tables {
		known[t.Binding] = true
		if _, ok := b[t.Binding]; !ok {
			errs = append(errs, fmt.Errorf("%w %q: the pipeline looks it up (a table) but it is not bound; use --bind %s=URI", ErrBinding, t.Binding, t.Binding))
		}
	}
	for _, n := range g.Nodes {
		switch n.Kind {
		case graph.KindSource:
			known[n.Source.Binding] = true
			if _, ok := b[n.Source.Binding]; !ok {
				errs = append(errs, fmt.Errorf("%w %q: the pipeline reads it (%s) but it is not bound; use --bind %s=URI", ErrBinding, n.Source.Binding, n, n.Source.Binding))
			}
		case graph.KindSink:
			known[n.Sink.Binding] = true
			if _, ok := b[n.Sink.Binding]; !ok && !n.Sink.Optional {
				errs = append(errs, fmt.Errorf("%w %q: the pipeline writes it (%s) but it is not bound; use --bind %s=URI (discard:// to drop it)", ErrBinding, n.Sink.Binding, n, n.Sink.Binding))
			}
		}
	}
	var names []string
	for name := range b {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !known[name] {
			errs = append(errs, fmt.Errorf("%w %q: the pipeline has no source or sink of that name (it reads %s; writes %s)", ErrBinding, name, orNone(g.Sources()), orNone(g.Sinks())))
		}
	}
	return errors.Join(errs...)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, ", ")
}

func openBindings(ctx context.Context, g *graph.Graph, o *Options) (map[string]connector.Source, map[string]connector.Sink, connector.Sink, error) {
	sources := map[string]connector.Source{}
	sinks := map[string]connector.Sink{}
	var errs []error
	for _, n := range g.Nodes {
		switch n.Kind {
		case graph.KindSource:
			u, err := connector.ParseURI(o.Bindings[n.Source.Binding])
			if err != nil {
				errs = append(errs, fmt.Errorf("%w %q: %v", ErrBinding, n.Source.Binding, err))
				continue
			}
			s, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: n.Source.Binding, URI: u, Type: n.Source.Type, Columns: n.Source.Columns, Range: o.timeRange()})
			if err != nil {
				errs = append(errs, bindingErr(err))
				continue
			}
			sources[n.Source.Binding] = s
		case graph.KindSink:
			uri, ok := o.Bindings[n.Sink.Binding]
			if !ok {
				continue // optional
			}
			u, err := connector.ParseURI(uri)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w %q: %v", ErrBinding, n.Sink.Binding, err))
				continue
			}
			s, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: n.Sink.Binding, URI: u, Type: n.Sink.Type, Task: o.task.name()})
			if err != nil {
				errs = append(errs, bindingErr(err))
				continue
			}
			sinks[n.Sink.Binding] = s
		}
	}
	var dead connector.Sink
	if o.DeadLetter != "" {
		u, err := connector.ParseURI(o.DeadLetter)
		if err == nil {
			dead, err = connector.OpenSink(ctx, connector.SinkSpec{Binding: "dead-letter", URI: u, Type: reflect.TypeFor[connector.DeadLetter](), Task: o.task.name()})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%w --dead-letter: %v", ErrBinding, err))
		}
	}
	return sources, sinks, dead, errors.Join(errs...)
}

// checkpointSinks reports sinks that cannot take part in checkpoints, and
// logs those whose output is only at-least-once with them.
func checkpointSinks(sinks map[string]connector.Sink, dead connector.Sink, log *slog.Logger) error {
	all := map[string]connector.Sink{}
	for k, v := range sinks {
		all[k] = v
	}
	if dead != nil {
		all["dead-letter"] = dead
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(all)) {
		switch all[name].(type) {
		case connector.CheckpointSink:
		case connector.ImmediateSink:
			log.Warn("with checkpoints, this sink's output is at-least-once: a restart writes again what came after the last checkpoint (a kafka:// sink can take ?delivery=exactly-once&txn-id=ID)", "binding", name)
		default:
			errs = append(errs, fmt.Errorf("%w %q: its sink cannot take part in checkpoints (what it holds until the end would be lost on a restart); bind a directory (a file:// URI ending in /) or kafka://, or leave --checkpoint-dir unset", ErrBinding, name))
		}
	}
	return errors.Join(errs...)
}

// bindingError is a connector's error about a binding, reported as
// `runner: binding "x": ...` and matching both ErrBinding and the
// connector's own sentinel with errors.Is.
type bindingError struct {
	msg string
	err error
}

func (e *bindingError) Error() string   { return e.msg }
func (e *bindingError) Unwrap() []error { return []error{ErrBinding, e.err} }

func bindingErr(err error) error {
	return &bindingError{msg: ErrBinding.Error() + " " + strings.TrimPrefix(err.Error(), "binding "), err: err}
}

// openBackend opens the state backend. Resuming from a checkpoint, it
// reuses a state directory left exactly at that checkpoint, and otherwise
// restores the checkpoint's copy into it. The returned cleanup closes the
// backend and, given a checkpoint id, marks the directory as left at it.
//
// fromLog, when set, rebuilds the state from the changelog instead of the
// checkpoint's copy.
//
// stateOf returns a local directory with the resumed checkpoint's state
// copy, and what to call when done with it.
func openBackend(o *Options, resume *checkpointMetaFile, stateOf func() (string, func(), error), fromLog func(state.Backend) error) (state.Backend, func(marker int64), error) {
	log := o.Logger
	if o.StateBackend == "memory" {
		if resume != nil && fromLog != nil {
			b := state.NewMem()
			if err := fromLog(b); err != nil {
				b.Close()
				return nil, nil, err
			}
			return b, func(int64) { b.Close() }, nil
		}
		if resume != nil {
			src, done, err := stateOf()
			if err != nil {
				return nil, nil, err
			}
			b, err := state.LoadMem(src)
			done()
			if err != nil {
				return nil, nil, fmt.Errorf("runner: restoring checkpoint %d: %w", resume.ID, err)
			}
			return b, func(int64) { b.Close() }, nil
		}
		b := state.NewMem()
		return b, func(int64) { b.Close() }, nil
	}
	dir := o.StateDir
	temp := dir == ""
	if temp {
		d, err := os.MkdirTemp("", "weir-state-")
		if err != nil {
			return nil, nil, fmt.Errorf("runner: state directory: %w", err)
		}
		dir = d
	}
	entries, _ := os.ReadDir(dir)
	entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool { return e.Name() == jobMarker })
	restoreLog := false
	switch {
	case resume != nil:
		if id, ok := markerID(dir); ok && id == resume.ID {
			log.Info("local state is at the checkpoint: reused without a restore", "dir", dir, "checkpoint", resume.ID)
			break
		}
		begin := time.Now()
		if err := os.RemoveAll(dir); err != nil {
			return nil, nil, fmt.Errorf("runner: state directory: %w", err)
		}
		if fromLog != nil {
			restoreLog = true
			break
		}
		src, done, err := stateOf()
		if err != nil {
			return nil, nil, err
		}
		err = state.RestorePebble(src, dir)
		mb := float64(dirSize(src)) / (1 << 20)
		done()
		if err != nil {
			return nil, nil, fmt.Errorf("runner: restoring checkpoint %d: %w", resume.ID, err)
		}
		took := time.Since(begin)
		log.Info("state restored from checkpoint", "checkpoint", resume.ID, "mb", int64(mb), "took", took.Round(time.Millisecond), "mb_per_s", int64(mb/max(took.Seconds(), 1e-3)))
	case len(entries) > 0 && o.CheckpointDir != "":
		log.Info("no checkpoint to resume from: starting with empty state", "dir", dir)
		if err := os.RemoveAll(dir); err != nil {
			return nil, nil, fmt.Errorf("runner: resetting state directory: %w", err)
		}
	case len(entries) > 0:
		if !o.ResetState {
			return nil, nil, fmt.Errorf("%w: %s holds state from an earlier run; pass --reset-state to start over, or use another --state-dir", ErrStateDir, dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return nil, nil, fmt.Errorf("runner: resetting state directory: %w", err)
		}
	}
	// The run writes state beyond any checkpoint from here on.
	os.Remove(filepath.Join(dir, stateMarker))
	b, err := state.OpenPebble(dir, memoryBudget(o.Memory).pebble())
	if err == nil && restoreLog {
		if err = fromLog(b); err != nil {
			b.Close()
		}
	}
	if err != nil {
		if temp {
			os.RemoveAll(dir)
		}
		return nil, nil, err
	}
	return b, func(marker int64) {
		if err := b.Close(); err != nil {
			o.Logger.Warn("closing the state backend", "err", err)
			marker = 0
		}
		if temp {
			os.RemoveAll(dir)
		} else if marker > 0 {
			if err := fsutil.WriteFileSync(filepath.Join(dir, stateMarker), []byte(strconv.FormatInt(marker, 10))); err != nil {
				o.Logger.Warn("marking the state directory", "err", err)
			}
		}
	}, nil
}

func reportProgress(log *slog.Logger, m *engine.Metrics, b state.Backend, every time.Duration, start time.Time, done <-chan struct{}) {
	t := time.NewTicker(every)
	defer t.Stop()
	var last int64
	lastAt := start
	for {
		select {
		case <-done:
			return
		case now := <-t.C:
			read, written, _ := m.Snapshot()
			var r, w int64
			for _, v := range read {
				r += v
			}
			for _, v := range written {
				w += v
			}
			rate := float64(r-last) / now.Sub(lastAt).Seconds()
			last, lastAt = r, now
			sm := b.Metrics()
			log.Info("progress", "read", r, "records_per_s", int64(rate), "written", w,
				"event_time", windowing.Time(m.MaxEventTime.Load()), "watermark", windowing.Time(m.SourceWatermark.Load()),
				"state_mb", (sm.DiskBytes+sm.MemBytes)>>20, "dead_lettered", m.DeadLettered.Load())
		}
	}
}
