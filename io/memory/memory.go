// Package memory is the mem:// connector: sources and sinks that live in the
// process, for tests and for programs that embed Weir. A Stream is an
// unbounded source fed by the program (the stream-mode path without a
// broker); a Collector is a sink whose committed values the program reads
// back.
//
// Streams and collectors are found by name in a process-wide table, as the
// URI mem://NAME names them.
//
// Dependency direction: memory imports connector only.
package memory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/windowing"
)

func init() { connector.Register("mem", memConnector{}) }

var table struct {
	mu         sync.Mutex
	streams    map[string]*Stream    // guarded by mu
	collectors map[string]*Collector // guarded by mu
}

// ErrNoSuchName is returned for a mem:// URI whose name was never created.
var ErrNoSuchName = errors.New("memory: no stream or collector of that name")

// PollInterval is how long a stream reader waits for a value before it
// returns empty-handed.
const PollInterval = 20 * time.Millisecond

// Stream is an in-memory source with one split. Values are read in the order
// they were sent. It is unbounded until Close, after which readers see the
// end of input once they have read everything.
type Stream struct {
	name string
	mu   struct {
		sync.Mutex
		values   []Value // guarded by mu
		closed   bool
		consumed int // values handed to readers
	}
	notify chan struct{}
	bound  bool
}

// Value is a value with an optional source timestamp.
type Value struct {
	V            any
	Timestamp    windowing.Time
	HasTimestamp bool
}

// NewStream creates (or replaces) the stream mem://name.
func NewStream(name string) *Stream {
	s := &Stream{name: name, notify: make(chan struct{}, 1)}
	table.mu.Lock()
	defer table.mu.Unlock()
	if table.streams == nil {
		table.streams = map[string]*Stream{}
	}
	table.streams[name] = s
	return s
}

// NewBounded creates a bounded source mem://name holding values.
func NewBounded(name string, values ...any) *Stream {
	s := NewStream(name)
	s.bound = true
	s.Send(values...)
	s.Close()
	return s
}

// Send appends values to the stream.
func (s *Stream) Send(values ...any) {
	s.mu.Lock()
	for _, v := range values {
		s.mu.values = append(s.mu.values, Value{V: v})
	}
	s.mu.Unlock()
	s.wake()
}

// SendAt appends a value with a source timestamp.
func (s *Stream) SendAt(v any, ts windowing.Time) {
	s.mu.Lock()
	s.mu.values = append(s.mu.values, Value{V: v, Timestamp: ts, HasTimestamp: true})
	s.mu.Unlock()
	s.wake()
}

// Consumed returns how many values readers have taken from the stream.
func (s *Stream) Consumed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.consumed
}

// Close ends the stream: readers reach the end of input after the values
// sent so far.
func (s *Stream) Close() {
	s.mu.Lock()
	s.mu.closed = true
	s.mu.Unlock()
	s.wake()
}

func (s *Stream) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Collector is an in-memory sink. Values become visible to Values only when
// the run commits.
type Collector struct {
	written atomic.Int64
	mu      struct {
		sync.Mutex
		committed []any // guarded by mu
		commits   int
		// staged holds pre-committed output by checkpoint id: it
		// survives a run (as a transaction in a broker would) until a
		// run commits or discards it.
		staged map[int64][]any
		// published is the newest checkpoint whose staged output was
		// committed.
		published int64
	}
}

// NewCollector creates (or replaces) the sink mem://name.
func NewCollector(name string) *Collector {
	c := &Collector{}
	table.mu.Lock()
	defer table.mu.Unlock()
	if table.collectors == nil {
		table.collectors = map[string]*Collector{}
	}
	table.collectors[name] = c
	return c
}

// Values returns the committed values.
func (c *Collector) Values() []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]any(nil), c.mu.committed...)
}

// Written returns how many values were written, committed or not: a test can
// see output appear while a stream runs.
func (c *Collector) Written() int64 { return c.written.Load() }

// Commits returns how many times a run committed to the collector.
func (c *Collector) Commits() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.commits
}

type memConnector struct{}

func name(u interface{ String() string }, host, path string) string {
	if host != "" {
		return host + path
	}
	return path
}

func (memConnector) OpenSource(_ context.Context, spec connector.SourceSpec) (connector.Source, error) {
	n := name(spec.URI, spec.URI.Host, spec.URI.Path)
	table.mu.Lock()
	s, ok := table.streams[n]
	table.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: mem://%s", ErrNoSuchName, n)
	}
	return &source{s: s, t: spec.Type}, nil
}

func (memConnector) OpenSink(_ context.Context, spec connector.SinkSpec) (connector.Sink, error) {
	n := name(spec.URI, spec.URI.Host, spec.URI.Path)
	table.mu.Lock()
	c, ok := table.collectors[n]
	table.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w: mem://%s", ErrNoSuchName, n)
	}
	return &sink{c: c}, nil
}

type source struct {
	s *Stream
	t reflect.Type
}

func (s *source) Splits(context.Context) ([]connector.Split, error) {
	return []connector.Split{split{s}}, nil
}
func (s *source) Bounded() bool { return s.s.bound }
func (s *source) Close() error  { return nil }

type split struct{ s *source }

func (sp split) ID() string { return "mem://" + sp.s.s.name }
func (sp split) Open(context.Context) (connector.Reader, error) {
	return &reader{s: sp.s}, nil
}

// OpenAt opens the stream at a position a reader reported: the index of the
// next value.
func (sp split) OpenAt(_ context.Context, pos []byte) (connector.Reader, error) {
	r := &reader{s: sp.s}
	if len(pos) > 0 {
		n, err := strconv.Atoi(string(pos))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("memory: bad position %q for mem://%s", pos, sp.s.s.name)
		}
		r.pos = n
	}
	return r, nil
}

type reader struct {
	s   *source
	pos int
}

func (r *reader) Read(ctx context.Context, buf []connector.Record) (int, error) {
	st := r.s.s
	deadline := time.NewTimer(PollInterval)
	defer deadline.Stop()
	for {
		st.mu.Lock()
		avail := st.mu.values[r.pos:]
		closed := st.mu.closed
		n := copy(make([]Value, min(len(avail), len(buf))), avail)
		for i := 0; i < n; i++ {
			v := avail[i]
			rec := connector.Record{Value: v.V, Pos: fmt.Sprintf("mem://%s#%d", st.name, r.pos+i), Timestamp: v.Timestamp, HasTimestamp: v.HasTimestamp}
			if v.V == nil || !reflect.TypeOf(v.V).AssignableTo(r.s.t) {
				rec.Value = nil
				rec.Err = fmt.Errorf("memory: value of type %T, want %s", v.V, r.s.t)
				rec.Raw = []byte(fmt.Sprint(v.V))
			}
			buf[i] = rec
		}
		st.mu.Unlock()
		if n > 0 {
			r.pos += n
			st.mu.Lock()
			st.mu.consumed += n
			st.mu.Unlock()
			return n, nil
		}
		if closed {
			return 0, io.EOF
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-deadline.C:
			return 0, nil
		case <-st.notify:
		}
	}
}

func (r *reader) Close() error { return nil }

// Position is the index of the next value.
func (r *reader) Position() []byte { return []byte(strconv.Itoa(r.pos)) }

type sink struct {
	c       *Collector
	pending []any
}

func (s *sink) Write(_ context.Context, values []any) error {
	s.pending = append(s.pending, values...)
	s.c.written.Add(int64(len(values)))
	return nil
}

// PreCommit stages what was written since the last checkpoint as the output
// of checkpoint id.
func (s *sink) PreCommit(_ context.Context, id int64) ([]byte, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if s.c.mu.staged == nil {
		s.c.mu.staged = map[int64][]any{}
	}
	s.c.mu.staged[id] = append(s.c.mu.staged[id], s.pending...)
	s.pending = nil
	return nil, nil
}

// CommitCheckpoint makes the output staged for id and earlier visible.
func (s *sink) CommitCheckpoint(_ context.Context, id int64) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.c.commitStagedLocked(id)
	return nil
}

// Recover commits what was staged up to id and discards what was staged
// after it.
func (s *sink) Recover(_ context.Context, id int64, _ []byte) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if p := s.c.mu.published; p > id {
		return fmt.Errorf("memory: recovering at checkpoint %d: %w: checkpoint %d's", id, connector.ErrPublishedAhead, p)
	}
	s.c.commitStagedLocked(id)
	for k := range s.c.mu.staged {
		if k > id {
			delete(s.c.mu.staged, k)
		}
	}
	return nil
}

// Published returns the newest checkpoint whose output was committed.
func (s *sink) Published(context.Context) (int64, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.c.mu.published, nil
}

func (c *Collector) commitStagedLocked(id int64) {
	var ids []int64
	for k := range c.mu.staged {
		if k <= id {
			ids = append(ids, k)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, k := range ids {
		c.mu.committed = append(c.mu.committed, c.mu.staged[k]...)
		delete(c.mu.staged, k)
		c.mu.published = max(c.mu.published, k)
	}
}

func (s *sink) Commit(context.Context) error {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.c.mu.committed = append(s.c.mu.committed, s.pending...)
	s.c.mu.commits++
	s.pending = nil
	return nil
}

func (s *sink) Abort() error {
	s.pending = nil
	return nil
}
