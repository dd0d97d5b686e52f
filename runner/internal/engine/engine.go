// Package engine executes a pipeline graph: it cuts the graph into stages,
// runs each stage on its workers, moves elements between them in batches over
// bounded channels, carries watermarks in-band, and runs the keyed operators
// (windowed grouping and combining, stateful DoFns, side-input joins) on the
// state backend.
//
// The engine is free of I/O and wire formats: it reads connector.Source
// splits and writes connector.Sink values that the runner opened for it, and
// keeps keyed state in a state.Backend it is given.
//
// # Stages
//
// A stage starts at a source (one instance per reader), at a keyed operator
// (one instance per worker, owning a range of key groups) or at a ParDo with
// side inputs (one instance per worker). It runs every stateless transform
// reachable from its head without crossing a shuffle, fused into one chain of
// function calls, and ends in exits: shuffles to the next keyed stage (by key
// group), to a side-input stage (main input round-robin, side inputs
// broadcast), or to a sink writer.
//
// # Watermarks
//
// Watermarks travel in the same channels as data, after it, so an element is
// never overtaken by a watermark that was computed after it. Every stage
// instance applies one rule, in windowing.Merger:
//
//	input watermark  = max(previous, min over its input senders that are not idle)
//	output watermark = input watermark, after every event-time timer before
//	                   it has fired and every element buffered before it
//	                   (side inputs) has been released
//
// Because timers fire, and their output is sent, before the new output
// watermark is forwarded, the output of a timer is never behind the
// downstream watermark: that is how Weir implements Beam's watermark holds.
//
// Dependency direction: engine imports internal/graph, windowing, state,
// io/connector and internal/coder; only the runner package imports engine.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// Config is what the engine needs for one run.
type Config struct {
	// Parallelism is the number of workers of each keyed stage and the
	// maximum number of readers of each source. Default 1.
	Parallelism int
	// KeyGroups is the number of key groups. Default state.DefaultKeyGroups.
	KeyGroups int
	// Backend holds keyed state and timers. Required when the graph has
	// keyed transforms.
	Backend state.Backend
	// Sources are the opened sources, by binding.
	Sources map[string]connector.Source
	// Sinks are the opened sinks, by binding. An optional Write with no
	// sink is counted and dropped.
	Sinks map[string]connector.Sink
	// DeadLetter receives records that could not be read. nil: they are
	// counted and logged.
	DeadLetter connector.Sink
	// Bounded runs with processing time frozen at the start of time until
	// the input ends (a backfill): processing-time timers then fire only at
	// the end, and the output depends on the data alone.
	Bounded bool
	// Clock returns processing time. Default: the wall clock.
	Clock func() windowing.Time
	// Drain, when closed, stops reading, advances every watermark to the
	// end of time so that all windows fire, and finishes the run.
	Drain <-chan struct{}
	// Stop, when closed, stops reading and finishes without firing
	// pending windows.
	Stop <-chan struct{}
	// StopAtEnd, with checkpoints, stops the run when every source has
	// been read to its end, as Stop would: a final checkpoint, no window
	// fired for the end of the input, and each split's watermark left where
	// its records put it. A run that continues from that checkpoint on
	// other sources (backfill, then stream) carries on as if the input
	// had not changed.
	StopAtEnd bool
	// StateCacheBytes is the memory the keyed instances' write-back state
	// caches share, split evenly among them (at least 1 MiB each). 0:
	// state.DefaultCacheBytes each.
	StateCacheBytes int64
	// BatchSize is the number of elements per shuffle batch. Default 512.
	BatchSize int
	// QueueLength is the capacity, in batches, of each worker's input
	// queue; a full queue blocks its senders (backpressure). Default 16.
	QueueLength int
	// TickInterval is how often stream stages check processing-time timers
	// and idleness, and flush partial batches. Default 100ms.
	TickInterval time.Duration
	// Logger receives the engine's logs. Default: slog.Default().
	Logger *slog.Logger
	// Metrics receives counters. Default: a fresh Metrics.
	Metrics *Metrics

	// CheckpointInterval > 0 turns checkpoints on: every interval, a
	// consistent snapshot; OnCheckpoint stores it.
	CheckpointInterval time.Duration
	// OnCheckpoint is called with every backend write of the snapshot done
	// and every instance paused; it copies the backend and keeps the split
	// states and the sinks' pre-commit handles (by binding; only sinks that
	// returned one). final marks a stop's last checkpoint, after which the
	// run changes no state. An error fails the run.
	OnCheckpoint func(id int64, final bool, splits SplitStates, sinks map[string][]byte) error
	// OnCommitted, if set, is called once every sink writer has committed
	// the output of checkpoint id (connector.CheckpointSink), so that a
	// restart knows it need not commit it again.
	OnCommitted func(id int64)
	// FirstCheckpointID is the id the checkpoint ids continue from (the
	// restored one).
	FirstCheckpointID int64
	// Resume has the split states to resume from, by binding and split.
	Resume SplitStates
	// Range, when set, drops records whose event time is outside it.
	Range *connector.TimeRange
	// Tables are loaded into Backend before any stage starts, and those
	// that say so followed until the run ends (table.go).
	Tables []Table
}

func (c *Config) ensureDefaults() {
	if c.Parallelism <= 0 {
		c.Parallelism = 1
	}
	if c.KeyGroups <= 0 {
		c.KeyGroups = state.DefaultKeyGroups
	}
	if c.Parallelism > c.KeyGroups {
		c.Parallelism = c.KeyGroups
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 512
	}
	if c.QueueLength <= 0 {
		c.QueueLength = 16
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.Clock == nil {
		c.Clock = func() windowing.Time { return windowing.FromTime(time.Now()) }
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
}

// ErrUserCode wraps errors and panics from pipeline code (DoFns, combine
// functions, event-time functions).
var ErrUserCode = errors.New("engine: pipeline code failed")

// Run executes g until its input ends, it is drained or stopped, or it fails.
// It does not commit or abort sinks: the caller does, depending on the
// result.
func Run(ctx context.Context, g *graph.Graph, cfg Config) error {
	cfg.ensureDefaults()
	pl, err := buildPlan(ctx, g, &cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cfg.Backend != nil {
		ctx = graph.WithTables(ctx, tableReader{cfg.Backend})
	}
	x := &executor{cfg: &cfg, plan: pl, ctx: ctx, cancel: cancel}
	if cfg.StopAtEnd {
		if cfg.CheckpointInterval <= 0 {
			return fmt.Errorf("engine: StopAtEnd needs checkpoints")
		}
		x.allAtEnd = make(chan struct{})
		n := 0
		for _, st := range pl.stages {
			if st.kind == stageSource {
				n += st.instances
			}
		}
		x.readersLeft.Store(int32(n))
		if n == 0 {
			close(x.allAtEnd)
		}
	}
	if cfg.CheckpointInterval > 0 {
		if err := pl.checkpointable(g); err != nil {
			return err
		}
		x.coord = newCoordinator(x)
		pl.join(x.coord)
		if err := pl.restore(cfg.Backend); err != nil {
			return err
		}
		x.commits.n = map[int64]int{}
		for _, s := range pl.sinks {
			if s.port.senders > 0 {
				x.commits.want++
			}
		}
	}
	tables, err := x.loadTables()
	if err != nil {
		return err
	}
	err = x.run()
	tables.stop()
	if err == nil {
		err = x.err() // a follower that failed once the stages had ended
	}
	return err
}

type executor struct {
	cfg    *Config
	plan   *plan
	coord  *coordinator // nil without checkpoints
	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		err error // first error; guarded by mu
	}

	// commits counts, by checkpoint, the sink writers that committed it.
	commits struct {
		sync.Mutex
		n    map[int64]int
		want int // the sink writers that take part in checkpoints
	}

	// With StopAtEnd: the source readers still reading, and what closes
	// when none is.
	readersLeft atomic.Int32
	allAtEnd    chan struct{}

	// batches recycles the shuffle's batches: a batch is BatchSize
	// elements, tens of KiB, which the heap would otherwise allocate and
	// zero per batch as a large object.
	batches sync.Pool
}

// newBatch returns an empty batch of capacity BatchSize.
func (x *executor) newBatch() []shuffled {
	if b, ok := x.batches.Get().(*[]shuffled); ok {
		return *b
	}
	return make([]shuffled, 0, x.cfg.BatchSize)
}

// freeBatch takes back a batch its receiver is done with. Only batches
// sent to one receiver come back (a broadcast's is shared).
func (x *executor) freeBatch(b []shuffled) {
	if cap(b) != x.cfg.BatchSize {
		return
	}
	clear(b)
	b = b[:0]
	x.batches.Put(&b)
}

// sinkCommitted records that a sink writer committed checkpoint id.
func (x *executor) sinkCommitted(id int64) {
	x.commits.Lock()
	x.commits.n[id]++
	all := x.commits.n[id] == x.commits.want
	if all {
		delete(x.commits.n, id)
	}
	x.commits.Unlock()
	if all && x.cfg.OnCommitted != nil {
		x.cfg.OnCommitted(id)
	}
}

// readerAtEnd records that a source reader has read all its splits.
func (x *executor) readerAtEnd() {
	if x.readersLeft.Add(-1) == 0 {
		close(x.allAtEnd)
	}
}

// fail records the first error and cancels the run.
func (x *executor) fail(err error) {
	x.mu.Lock()
	if x.mu.err == nil {
		x.mu.err = err
	}
	x.mu.Unlock()
	x.cancel(err)
}

func (x *executor) err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.mu.err
}

// goStage runs fn in a goroutine that turns panics into errors.
func (x *executor) goStage(name string, fn func() error) {
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(abort); ok {
					return
				}
				// Pipeline code's panics are caught where it runs and name
				// the transform; one that reaches here is the engine's.
				x.cfg.Logger.Error("panic in the engine", "stage", name, "panic", r, "stack", string(debug.Stack()))
				x.fail(fmt.Errorf("engine: %s: internal error: panic: %v", name, r))
			}
		}()
		if err := fn(); err != nil && !errors.Is(err, context.Canceled) {
			x.fail(err)
		}
	}()
}

func (x *executor) run() error {
	pl := x.plan
	if x.coord != nil {
		x.goStage("checkpoint coordinator", x.coord.run)
	}
	for _, s := range pl.sinks {
		s := s
		x.goStage("sink "+s.binding, func() error { return s.run(x) })
	}
	for _, st := range pl.stages {
		for i := 0; i < st.instances; i++ {
			st, i := st, i
			x.goStage(fmt.Sprintf("%s[%d]", st.name, i), func() error { return st.runInstance(x, i) })
		}
	}
	x.wg.Wait()
	if err := x.err(); err != nil {
		return err
	}
	if err := context.Cause(x.ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return x.ctx.Err()
}

// Metrics are the counters of a run. They are safe for concurrent use.
type Metrics struct {
	mu struct {
		sync.Mutex
		read    map[string]*atomic.Int64 // by source binding; guarded by mu
		written map[string]*atomic.Int64 // by sink binding
		late    map[string]*atomic.Int64 // by transform
	}
	DeadLettered atomic.Int64
	// OutOfRange counts records dropped for an event time outside
	// Config.Range.
	OutOfRange atomic.Int64
	// MaxEventTime is the highest event time read.
	MaxEventTime atomic.Int64
	// SourceWatermark is the lowest output watermark of the sources' readers
	// that are still running.
	SourceWatermark atomic.Int64
	readerWM        sync.Map // reader id -> *atomic.Int64
	cached          sync.Map // keyed instance -> *atomic.Int64: its cache's bytes
}

// CachedBytes is the state the keyed instances hold in their write-back
// caches, not yet in the backend: with the backend's size, the state.
func (m *Metrics) CachedBytes() int64 {
	var n int64
	m.cached.Range(func(_, v any) bool {
		n += v.(*atomic.Int64).Load()
		return true
	})
	return n
}

// cacheGauge returns the gauge of a keyed instance's cache bytes.
func (m *Metrics) cacheGauge(instance any) *atomic.Int64 {
	v, _ := m.cached.LoadOrStore(instance, &atomic.Int64{})
	return v.(*atomic.Int64)
}

// NewMetrics returns zeroed counters.
func NewMetrics() *Metrics {
	m := &Metrics{}
	m.mu.read = map[string]*atomic.Int64{}
	m.mu.written = map[string]*atomic.Int64{}
	m.mu.late = map[string]*atomic.Int64{}
	m.MaxEventTime.Store(int64(windowing.MinTime))
	m.SourceWatermark.Store(int64(windowing.MinTime))
	return m
}

func (m *Metrics) counter(tab map[string]*atomic.Int64, name string) *atomic.Int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := tab[name]
	if !ok {
		c = &atomic.Int64{}
		tab[name] = c
	}
	return c
}

// Read returns the counter of records read from a binding.
func (m *Metrics) Read(binding string) *atomic.Int64 { return m.counter(m.mu.read, binding) }

// Written returns the counter of records written to a binding.
func (m *Metrics) Written(binding string) *atomic.Int64 { return m.counter(m.mu.written, binding) }

// Late returns the counter of late records dropped at a transform.
func (m *Metrics) Late(transform string) *atomic.Int64 { return m.counter(m.mu.late, transform) }

// Snapshot returns the counters by name.
func (m *Metrics) Snapshot() (read, written, late map[string]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := func(t map[string]*atomic.Int64) map[string]int64 {
		r := make(map[string]int64, len(t))
		for k, v := range t {
			r[k] = v.Load()
		}
		return r
	}
	return cp(m.mu.read), cp(m.mu.written), cp(m.mu.late)
}

func (m *Metrics) observeEventTime(t windowing.Time) {
	for {
		cur := m.MaxEventTime.Load()
		if int64(t) <= cur || m.MaxEventTime.CompareAndSwap(cur, int64(t)) {
			return
		}
	}
}

func (m *Metrics) setReaderWatermark(id string, wm windowing.Time) {
	v, _ := m.readerWM.LoadOrStore(id, &atomic.Int64{})
	v.(*atomic.Int64).Store(int64(wm))
	min := int64(windowing.MaxTime)
	m.readerWM.Range(func(_, v any) bool {
		if x := v.(*atomic.Int64).Load(); x < min {
			min = x
		}
		return true
	})
	m.SourceWatermark.Store(min)
}
