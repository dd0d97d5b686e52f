package runner

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dustin/go-humanize"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// Options configure a run. The zero value runs a backfill with everything
// defaulted except the bindings. Each field but the runtime ones (Logger,
// Drain, Stop, Clock) is an option of the table in config.go, which gives
// its flag, job-file key, environment variable and default.
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
	// StopTimeout bounds a stop or a drain under Main: that long after the
	// first signal, a run that has not ended (stuck in a call that never
	// returns) is abandoned, and the process exits 1 saying what it
	// abandoned. Default 1m; negative: wait for the run however long.
	// A second SIGINT or SIGTERM aborts, and gives the run 5s.
	StopTimeout time.Duration
	// LogLevel is the least level of the logs Main writes: debug, info
	// (the default), warn or error. A program that calls Run sets Logger
	// instead.
	LogLevel string
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
	// Changelog, with CheckpointDir, writes every state change to a
	// changelog too (kafka://host:port/PREFIX, or the URI of another
	// state.ChangeLogStore), in a transaction per checkpoint. Checkpoints then keep no copy of the
	// state: a restart reuses the local state directory when it is at the
	// checkpoint, and otherwise rebuilds the state from the changelog.
	Changelog string
	// Memory is the memory budget of the job, in bytes (see memory.go): it
	// sizes the state caches and Pebble's block cache, and holds the Go
	// heap under it. 0: no budget.
	Memory int64
	// BatchSize and QueueLength tune the shuffle: elements per batch, and
	// batches an instance's input queue holds. Default: the engine's.
	BatchSize, QueueLength int
	// Clock overrides processing time, for tests.
	Clock func() windowing.Time
}

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

// OptionError is a problem with one option; errors.Is(err, ErrOptions)
// holds for it.
type OptionError struct {
	// Option is the option's name: its flag without the dashes, and its
	// key in a job file.
	Option string
	// Field is the Options field it sets.
	Field string
	// Msg says what is wrong; it follows the flag's name ("=-1s: want a
	// positive duration", " is for --mode=stream").
	Msg string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("%s: --%s%s (Options.%s)", ErrOptions, e.Option, e.Msg, e.Field)
}

// Is makes an OptionError match ErrOptions.
func (e *OptionError) Is(target error) bool { return target == ErrOptions }

// optErr is an OptionError about the option of that name.
func optErr(name, format string, args ...any) error {
	opt := lookupOption(name)
	if opt == nil {
		panic("runner: no option " + name)
	}
	return &OptionError{Option: name, Field: opt.field, Msg: fmt.Sprintf(format, args...)}
}

// Validate reports every problem with the options themselves (bindings are
// checked against the pipeline by Run), each naming its option.
func (o *Options) Validate() error {
	var errs []error
	switch o.Mode {
	case Backfill, Stream, BackfillThenStream:
	default:
		errs = append(errs, optErr("mode", "=%q: want backfill, stream or backfill-then-stream", o.Mode))
	}
	switch o.StateBackend {
	case "pebble", "memory":
	default:
		errs = append(errs, optErr("state-backend", "=%q: want pebble or memory", o.StateBackend))
	}
	if o.Mode == BackfillThenStream {
		if o.CheckpointDir == "" {
			errs = append(errs, optErr("checkpoint-dir", " is needed by --mode=backfill-then-stream (the history's state is handed to the live part through a checkpoint)"))
		}
		if len(o.Then) == 0 {
			errs = append(errs, optErr("then", " is needed by --mode=backfill-then-stream: NAME=URI for the live sources"))
		}
		if o.Handover == "" {
			errs = append(errs, optErr("handover", " is needed by --mode=backfill-then-stream: an event time, or the URI of a handover file (weir cp writes _kafka-offsets.json)"))
		}
	} else {
		if len(o.Then) > 0 {
			errs = append(errs, optErr("then", " is for --mode=backfill-then-stream"))
		}
		if o.Handover != "" {
			errs = append(errs, optErr("handover", " is for --mode=backfill-then-stream"))
		}
	}
	if o.CheckpointDir != "" && o.Mode == Backfill {
		errs = append(errs, optErr("checkpoint-dir", " is for --mode=stream: checkpoints are for streams (a backfill reruns from its files)"))
	}
	if !o.To.IsZero() && !o.From.Before(o.To) {
		errs = append(errs, optErr("from", " %s is not before --to %s", o.From.Format(time.RFC3339), o.To.Format(time.RFC3339)))
	}
	if o.Group != "" {
		if o.Mode != Stream {
			errs = append(errs, optErr("group", " is for --mode=stream"))
		}
		if o.CheckpointDir == "" {
			errs = append(errs, optErr("group", " needs --checkpoint-dir, shared by the group's processes (a task that moves resumes from its checkpoints)"))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"group-session-timeout", o.GroupSessionTimeout}, {"group-rebalance-timeout", o.GroupRebalanceTimeout}} {
		if d.v < 0 || (d.v > 0 && o.Group == "") {
			errs = append(errs, optErr(d.name, "=%s: want a positive duration, with --group", d.v))
		}
	}
	if o.Changelog != "" && o.CheckpointDir == "" {
		errs = append(errs, optErr("changelog", " needs --checkpoint-dir (the checkpoints keep where the changelog is)"))
	}
	if o.CheckpointInterval < 0 {
		errs = append(errs, optErr("checkpoint-interval", "=%s: want a positive duration", o.CheckpointInterval))
	}
	if o.Memory != 0 && o.Memory < minMemory {
		errs = append(errs, optErr("memory", "=%s: want at least %s", humanize.IBytes(uint64(max(o.Memory, 0))), humanize.IBytes(minMemory)))
	}
	if o.Parallelism < 0 || o.Parallelism > state.DefaultKeyGroups {
		errs = append(errs, optErr("parallelism", "=%d: want 1 to %d", o.Parallelism, state.DefaultKeyGroups))
	}
	if o.BatchSize < 0 {
		errs = append(errs, optErr("batch-size", "=%d: want a positive number", o.BatchSize))
	}
	if o.QueueLength < 0 {
		errs = append(errs, optErr("queue-length", "=%d: want a positive number", o.QueueLength))
	}
	if _, err := o.logLevel(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// logLevel is LogLevel as a level (info when unset).
func (o *Options) logLevel() (slog.Level, error) {
	var l slog.Level
	if o.LogLevel == "" {
		return slog.LevelInfo, nil
	}
	if err := l.UnmarshalText([]byte(o.LogLevel)); err != nil {
		return l, optErr("log-level", "=%q: want debug, info, warn or error", o.LogLevel)
	}
	return l, nil
}
