package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/fsys"
	"github.com/weir-dev/weir/runner/internal/engine"
	"github.com/weir-dev/weir/state"
)

// A run is one execution of a graph on one set of bindings, in three
// phases:
//
//  1. prepare: claim the state and checkpoint directories, find the
//     checkpoint to resume from, open the changelog and the state backend
//     (reused, restored or empty), open the bindings, and let two-phase
//     sinks recover to the checkpoint;
//  2. execute: load the tables and run the engine, with progress logs,
//     state sampling and checkpoints (checkpoint.go);
//  3. finish: commit the sinks, or abort them when the run failed, and mark
//     a checkpoint directory whose job ran to its end.
//
// RunGraph makes one run, or composes several: backfill-then-stream
// (then.go) runs its history and its live part as two, and a job scaled
// out over a consumer group (group.go) runs each of its tasks as one. What
// those compositions set on a run beside the Options is its part.

// part is what a composition sets on one of its runs.
type part struct {
	// phase is recorded in the run's checkpoints, so that a restart of a
	// backfill-then-stream job resumes the right part: "history" or
	// "live".
	phase string
	// stopAtEnd stops the run once every source has been read to its end,
	// with a final checkpoint (engine.Config.StopAtEnd): the history of a
	// backfill-then-stream job.
	stopAtEnd bool
	// task is set on a task of a job scaled out over a consumer group.
	task *task
}

type run struct {
	g     *graph.Graph
	opts  Options
	part  part
	log   *slog.Logger
	start time.Time

	// ckpts is where checkpoints go (nil without checkpoints); resume is
	// the checkpoint the run resumes from (nil: none), in ckpts'
	// directory resumeAt.
	ckpts    *checkpointStore
	resume   *checkpointMetaFile
	resumeAt string
	// states are the schema versions of the graph's state cells.
	states stateVersions
	// clog is the run's changelog (nil: none).
	clog *runChangelog

	backend state.Backend
	// closeBackend closes the backend and, given a checkpoint id, marks
	// its directory as left at that checkpoint.
	closeBackend func(marker int64)
	io           *opened
	// tables are the tables' sources (engine.Table), and closeTables
	// closes them.
	tables      []engine.Table
	closeTables func()
	metrics     *engine.Metrics
	// positions reports completed checkpoints' positions to the sources
	// that take them (nil: none does, or no checkpoints).
	positions *positionCommitter

	// lastCheckpoint is the newest checkpoint written, and finalCheckpoint
	// says it was a stop's last; a stopped run marks its state directory
	// with it. checkpoints counts them.
	lastCheckpoint  int64
	finalCheckpoint bool
	checkpoints     int64

	// locks are the run's state and checkpoint directories' (lock.go),
	// released last by close.
	locks []*dirLock

	// cancel ends the run with a cause; act is Main's view of it (nil
	// when the run is not Main's). fail uses both.
	cancel context.CancelCauseFunc
	act    *activity
}

// fail ends the run on a failure it may not end from by itself (the state
// store's disk is full): the cause cancels the engine, and Main gives up
// on the run if it is stuck in a write that waits for room.
func (r *run) fail(err error) {
	r.log.Error("the run failed", "err", err)
	r.cancel(err)
	r.act.fail(err)
}

// runOnce makes one run of g: its options are complete and valid, and g's
// bindings checked.
func runOnce(ctx context.Context, g *graph.Graph, opts Options, pt part) (*Result, error) {
	r := &run{g: g, opts: opts, part: pt, log: opts.Logger, start: time.Now()}
	defer r.close()
	ctx, r.cancel = context.WithCancelCause(ctx)
	defer r.cancel(nil)
	r.act = activityOf(ctx)
	if err := r.prepare(ctx); err != nil {
		if cause := context.Cause(ctx); cause != nil && errors.Is(err, context.Canceled) {
			err = cause // a failure while preparing, said as itself
		}
		return nil, err
	}
	res, err := r.execute(ctx)
	return r.finish(ctx, res, err)
}

// prepare is the first phase: everything the run needs, resumed from the
// newest checkpoint when there is one. What it opened is released by
// close, whatever it returns.
func (r *run) prepare(ctx context.Context) error {
	o, g := &r.opts, r.g
	sweepTempDirs(r.log)
	if o.StateDir != "" && o.StateBackend != "memory" {
		l, err := lockStateDir(o.StateDir)
		if err != nil {
			return err
		}
		r.locks = append(r.locks, l)
	}
	if err := r.claimStateDir(); err != nil {
		return err
	}
	if o.CheckpointDir != "" {
		if err := r.findResume(); err != nil {
			return err
		}
	}
	r.states = declaredStates(g)
	var (
		restoreLog func(state.Backend) error
		err        error
	)
	committed := r.resume != nil && r.ckpts.committed(r.resumeAt, changelogCommitted)
	if r.clog, restoreLog, err = openChangelog(ctx, g, o, r.part.task, r.resume, committed); err != nil {
		return err
	}
	r.backend, r.closeBackend, err = openBackend(o, r.fail, r.resume, func() (string, func(), error) { return r.ckpts.localState(r.resumeAt, r.resume) }, restoreLog)
	if err != nil {
		return err
	}
	// Restoring or resetting emptied the state directory: mark it again.
	if err := r.claimStateDir(); err != nil {
		return err
	}
	if r.clog != nil {
		r.backend = state.Logged(r.backend, r.clog.log)
	}
	r.io, err = openBindings(ctx, g, o, r.part.task.name())
	if err == nil && r.ckpts != nil {
		err = r.io.checkpointable(r.log)
	}
	if err == nil && r.ckpts != nil {
		var (
			at      int64
			handles map[string][]byte
		)
		if r.resume != nil {
			at, handles = r.resume.ID, r.resume.Sinks
			if r.ckpts.committed(r.resumeAt, sinksCommitted) {
				handles = nil // committed already: Recover only discards what came after
			}
		}
		err = r.io.recover(ctx, at, handles, r.ckpts.fellBack != "")
	}
	if err == nil && o.Mode == Backfill {
		err = r.io.bounded(o)
	}
	if err == nil {
		r.tables, r.closeTables, err = openTables(ctx, g, o)
	}
	if err != nil {
		r.io.closeSources()
		r.io.abort()
		return err
	}
	return nil
}

// claimStateDir marks the state directory as the job's, or fails when it is
// another job's.
func (r *run) claimStateDir() error {
	if r.opts.StateDir == "" || r.opts.StateBackend == "memory" {
		return nil
	}
	return claimStateDir(r.opts.StateDir, r.opts.JobID)
}

// findResume opens the checkpoint store and finds the checkpoint to resume
// from, if any.
func (r *run) findResume() error {
	o := &r.opts
	ckpts, err := openCheckpointStore(o.CheckpointDir)
	if err != nil {
		return err
	}
	if ckpts.fs == fsys.Local {
		l, err := lockCheckpointDir(ckpts.dir)
		if err != nil {
			return err
		}
		r.locks = append(r.locks, l)
	}
	if err := claim(ckpts.fs, ckpts.dir, "--checkpoint-dir", o.JobID); err != nil {
		return err
	}
	if ckpts.finished() {
		return optErr("checkpoint-dir", " %s: the job that kept checkpoints there ran to its end (drained, or its input ended); resuming would repeat its last output: use a new directory", ckpts)
	}
	r.ckpts = ckpts
	if r.resume, r.resumeAt, err = ckpts.latest(); err != nil {
		return err
	}
	if err := ckpts.ensureLedger(r.resume); err != nil {
		return err
	}
	if ckpts.fellBack != "" {
		r.log.Warn(ckpts.fellBack)
	}
	if r.resume != nil {
		if r.resume.Checksum == "" {
			r.log.Warn("the checkpoint to resume from has no checksums (written by an older Weir): it is used unverified", "checkpoint", r.resumeAt)
		}
		return checkStateVersions(r.resume, r.g)
	}
	return nil
}

// execute is the second phase: it loads the tables and runs the engine to
// the end of the input, a stop, a drain or a failure, and returns what the
// run did and why it ended.
func (r *run) execute(ctx context.Context) (*Result, error) {
	o, log := &r.opts, r.log
	r.metrics = engine.NewMetrics()
	drain, stop := o.Drain, o.Stop
	if o.Mode == Backfill {
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
	budget := memoryBudget(o.Memory)
	cfg := engine.Config{
		Parallelism:     o.Parallelism,
		KeyGroups:       r.g.KeyGroups,
		Backend:         r.backend,
		Sources:         r.io.sources,
		Sinks:           r.io.sinks,
		DeadLetter:      r.io.dead,
		Bounded:         o.Mode == Backfill,
		Clock:           o.Clock,
		Drain:           drain,
		Stop:            stop,
		BatchSize:       o.BatchSize,
		QueueLength:     o.QueueLength,
		StateCacheBytes: budget.stateCaches(),
		Logger:          log,
		Metrics:         r.metrics,
		Range:           o.timeRange(),
		StopAtEnd:       r.part.stopAtEnd,
		Tables:          r.tables,
	}
	if r.ckpts != nil {
		r.checkpointing(ctx, &cfg)
		trackCheckpoints(ctx, &cfg, r.ckpts) // for a stop that gives up (stop.go)
	}
	log.Info("run starting", "mode", o.Mode, "parallelism", o.Parallelism, "state", backendDesc(o), "memory", budget, "sources", strings.Join(r.g.Sources(), ","), "sinks", strings.Join(r.g.Sinks(), ","))
	prog := startProgress(log, r.metrics, r.backend, o.Progress, r.start)
	if r.ckpts != nil {
		var group committer
		if r.part.task != nil {
			group = r.part.task.group
		}
		r.positions = startPositionCommitter(ctx, r.io.sources, group, log)
	}
	runErr := engine.Run(ctx, r.g, cfg)
	prog.stop()
	r.positions.close()
	r.io.closeSources()

	res := &Result{Mode: o.Mode, Elapsed: time.Since(r.start), DeadLettered: r.metrics.DeadLettered.Load(), OutOfRange: r.metrics.OutOfRange.Load(),
		Checkpoints: r.checkpoints, Drained: closed(o.Drain), Stopped: closed(o.Stop), PeakStateKeys: prog.peakKeys.Load(), PeakStateBytes: prog.peakBytes.Load()}
	res.Read, res.Written, res.Late = r.metrics.Snapshot()
	if r.part.stopAtEnd && r.finalCheckpoint {
		// The history of a backfill-then-stream job was read to its end
		// and stopped there: the live part resumes from its checkpoint.
		res.Stopped = true
	}
	if r.ckpts != nil && res.Stopped && !r.finalCheckpoint && runErr == nil {
		// The stop came once the run had ended (its input read, or a drain
		// done), too late for a final checkpoint: the run went to its end,
		// and is committed and marked finished as such. Resuming it from
		// an earlier checkpoint would repeat its output.
		res.Stopped = false
	}
	if cause := context.Cause(ctx); cause != nil && (runErr == nil || errors.Is(runErr, context.Canceled) || errors.Is(runErr, cause)) {
		runErr = cause // a failure is said as itself, not as what it made fail
	}
	return res, runErr
}

// finish is the last phase: it makes the output of a run that succeeded
// visible (sinks commit), or discards it (sinks abort).
func (r *run) finish(ctx context.Context, res *Result, runErr error) (*Result, error) {
	if runErr == nil {
		runErr = r.backend.Flush()
	}
	if !res.Stopped || !r.finalCheckpoint || runErr != nil {
		// Only a stop's final checkpoint leaves the state exactly at a
		// checkpoint.
		r.lastCheckpoint = 0
	}
	if runErr != nil {
		r.io.abort()
		return res, runErr
	}
	activityOf(ctx).committing()
	committed, err := r.io.commit(ctx)
	if err != nil {
		res.PartlyCommitted = committed
		return res, err
	}
	if r.ckpts != nil && !res.Stopped {
		// The job ran to its end (drained, or its input ended): its output
		// after the last checkpoint is committed, so resuming from that
		// checkpoint would repeat it.
		if err := r.ckpts.markFinished(); err != nil {
			return res, fmt.Errorf("runner: marking the checkpoints finished: %w", err)
		}
	}
	return res, nil
}

// close releases the tables' sources, the backend (marking its directory
// with the checkpoint it was left at) and the changelog.
func (r *run) close() {
	if r.closeTables != nil {
		r.closeTables()
	}
	if r.closeBackend != nil {
		r.closeBackend(r.lastCheckpoint)
	}
	if r.clog != nil {
		r.clog.Close()
	}
	for _, l := range r.locks {
		l.release()
	}
}
