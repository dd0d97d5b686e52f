package runner_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
)

type profile struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type lookupFn struct{ profiles sdk.Table[string, profile] }

func (f lookupFn) ProcessElement(c *sdk.Context, e ev, emit sdk.Emitter[string]) error {
	p, ok, err := f.profiles.Get(c, e.Key)
	switch {
	case err != nil:
		return err
	case !ok:
		emit.Emit(e.Key + "@" + fmt.Sprint(e.At) + " unknown")
	default:
		emit.Emit(e.Key + "@" + fmt.Sprint(e.At) + " " + p.Name)
	}
	return nil
}

func tablePipeline() *sdk.Pipeline {
	p := sdk.NewPipeline()
	profiles := sdk.NewTable(p, "profiles", func(p profile) string { return p.ID })
	sdk.Write(sdk.ParDo(sdk.Read[ev](p, "in", sdk.EventTime(at)), lookupFn{profiles}), "out")
	return p
}

func writeSink(t *testing.T, uri string, typ reflect.Type, vs ...any) {
	t.Helper()
	u, _ := connector.ParseURI(uri)
	s, err := connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "seed", URI: u, Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), vs); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestTableFromASnapshot: a backfill looks keys up in a table loaded from
// a Parquet snapshot; a key that comes twice keeps its last value.
func TestTableFromASnapshot(t *testing.T) {
	snap := filepath.Join(t.TempDir(), "profiles.parquet")
	writeSink(t, "file://"+snap, reflect.TypeFor[profile](), profile{"a", "Ann"}, profile{"b", "Bo"}, profile{"a", "Anna"})
	out, c := memOut()
	if _, err := runner.Run(context.Background(), tablePipeline(), runner.Options{Progress: -1, Logger: slog.New(slog.DiscardHandler),
		StateDir: filepath.Join(t.TempDir(), "state"),
		Bindings: map[string]string{"in": memIn(ev{"a", 1, 0}, ev{"b", 2, 0}, ev{"z", 3, 0}), "profiles": "file://" + snap, "out": out}}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sortedStrings(c.Values())); got != "[a@1 Anna b@2 Bo z@3 unknown]" {
		t.Fatalf("got %s", got)
	}
	_, err := runner.Run(context.Background(), tablePipeline(), runner.Options{Progress: -1,
		Bindings: map[string]string{"in": memIn(), "out": out}})
	if !errors.Is(err, runner.ErrBinding) || !strings.Contains(err.Error(), `"profiles"`) {
		t.Fatalf("an unbound table: %v", err)
	}
}

// TestTableFollowsItsTopic: in stream mode a table bound to a topic is
// loaded to the topic's end and then kept current: a profile changed while
// the job runs is seen by the lookups that come after.
func TestTableFollowsItsTopic(t *testing.T) {
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "profiles"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := "kafka://" + strings.Join(cl.ListenAddrs(), ",") + "/profiles"
	writeSink(t, topic+"?key=id", reflect.TypeFor[profile](), profile{"a", "Ann"}, profile{"b", "Bo"})
	r := tableStream(t, topic)
	if got := r.lookUp("a"); got != "[a Ann]" {
		t.Fatalf("before the update: %s, want [a Ann]", got)
	}
	writeSink(t, topic+"?key=id", reflect.TypeFor[profile](), profile{"a", "Anna"}, profile{"c", "Cy"})
	r.lookUpUntil("[a Anna c Cy]", "a", "c")
	r.stop()
}

// TestTableTopicTombstone: a message with a key and no value deletes the
// key, whether it is in the topic at load or comes while the job runs.
func TestTableTopicTombstone(t *testing.T) {
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "profiles"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	addrs := cl.ListenAddrs()
	topic := "kafka://" + strings.Join(addrs, ",") + "/profiles"
	writeSink(t, topic+"?key=id", reflect.TypeFor[profile](), profile{"a", "Ann"}, profile{"b", "Bo"})
	tombstone := func(key string) {
		t.Helper()
		p, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("profiles"))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := p.ProduceSync(context.Background(), &kgo.Record{Key: []byte(key)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tombstone("b")
	r := tableStream(t, topic)
	if got := r.lookUp("a", "b"); got != "[a Ann b unknown]" {
		t.Fatalf("after the load: %s, want [a Ann b unknown] (b deleted)", got)
	}
	tombstone("a")
	r.lookUpUntil("[a unknown]", "a")
	r.stop()
}

// TestTableSnapshotThenTopic: --table-topic continues a snapshot with the
// topic's records (a later value, a deletion, a new key).
func TestTableSnapshotThenTopic(t *testing.T) {
	cl, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "profiles"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	addrs := cl.ListenAddrs()
	topic := "kafka://" + strings.Join(addrs, ",") + "/profiles"
	snap := filepath.Join(t.TempDir(), "profiles.jsonl")
	writeSink(t, "file://"+snap, reflect.TypeFor[profile](), profile{"a", "Ann"}, profile{"b", "Bo"})
	writeSink(t, topic+"?key=id", reflect.TypeFor[profile](), profile{"a", "Anna"}, profile{"c", "Cy"})
	p, err := kgo.NewClient(kgo.SeedBrokers(addrs...), kgo.DefaultProduceTopic("profiles"))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(context.Background(), &kgo.Record{Key: []byte("b")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p.Close()
	out, c := memOut()
	if _, err := runner.Run(context.Background(), tablePipeline(), runner.Options{Progress: -1, Logger: slog.New(slog.DiscardHandler),
		StateDir:    filepath.Join(t.TempDir(), "state"),
		TableTopics: map[string]string{"profiles": topic},
		Bindings:    map[string]string{"in": memIn(ev{"a", 1, 0}, ev{"b", 2, 0}, ev{"c", 3, 0}), "profiles": "file://" + snap, "out": out}}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sortedStrings(c.Values())); got != "[a@1 Anna b@2 unknown c@3 Cy]" {
		t.Fatalf("got %s", got)
	}
}

// tableRun is tablePipeline running in stream mode with its table bound to
// a topic: the test looks keys up and reads the answers as they are
// written.
type tableRun struct {
	t       *testing.T
	src     *memory.Stream
	out     *liveSink
	stopped chan struct{}
	done    chan error
	at      int64 // event time of the next lookup
}

func tableStream(t *testing.T, topic string) *tableRun {
	t.Helper()
	in := fmt.Sprintf("table-in-%d", names.Add(1))
	out := fmt.Sprintf("table-out-%d", names.Add(1))
	r := &tableRun{t: t, src: memory.NewStream(in), out: &liveSink{}, stopped: make(chan struct{}), done: make(chan error, 1)}
	liveSinks.Store(out, r.out)
	go func() {
		_, err := runner.Run(context.Background(), tablePipeline(), runner.Options{Mode: runner.Stream, Progress: -1, StateBackend: "memory",
			Logger: slog.New(slog.DiscardHandler), Stop: r.stopped,
			Bindings: map[string]string{"in": "mem://" + in, "profiles": topic, "out": "live://" + out}})
		r.done <- err
	}()
	return r
}

// lookUp looks keys up and waits for the answers: "key name" each, sorted.
func (r *tableRun) lookUp(keys ...string) string {
	r.t.Helper()
	n := len(r.out.values())
	for _, k := range keys {
		r.at++
		r.src.Send(ev{k, r.at, 0})
	}
	waitUntil(r.t, fmt.Sprintf("the lookups of %v", keys), func() bool { return len(r.out.values()) >= n+len(keys) || len(r.done) > 0 })
	if len(r.done) > 0 {
		r.t.Fatalf("the run ended: %v", <-r.done)
	}
	var got []any
	for _, v := range r.out.values()[n:] {
		key, rest, _ := strings.Cut(v.(string), "@")
		_, name, _ := strings.Cut(rest, " ")
		got = append(got, key+" "+name)
	}
	return fmt.Sprint(sortedStrings(got))
}

// lookUpUntil looks keys up again and again until the answers are want: a
// table follows its topic from a goroutine of its own, so an update is
// seen some time after it is written, not at once.
func (r *tableRun) lookUpUntil(want string, keys ...string) {
	r.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for got := r.lookUp(keys...); got != want; got = r.lookUp(keys...) {
		if time.Now().After(deadline) {
			r.t.Fatalf("a minute after the update, the lookups of %v answer %s, want %s", keys, got, want)
		}
	}
}

func (r *tableRun) stop() {
	r.t.Helper()
	close(r.stopped)
	if err := <-r.done; err != nil {
		r.t.Fatal(err)
	}
}

// live:// is a sink whose values a test reads as they are written, while
// the run goes on, by name (liveSinks).
type liveConn struct{}

var liveSinks sync.Map

func init() { connector.Register("live", liveConn{}) }

func (liveConn) OpenSource(context.Context, connector.SourceSpec) (connector.Source, error) {
	return nil, connector.ErrUnsupported
}

func (liveConn) OpenSink(_ context.Context, spec connector.SinkSpec) (connector.Sink, error) {
	s, ok := liveSinks.Load(spec.URI.Host)
	if !ok {
		return nil, fmt.Errorf("no live sink %q", spec.URI.Host)
	}
	return s.(*liveSink), nil
}

type liveSink struct {
	mu struct {
		sync.Mutex
		vs []any // guarded by mu
	}
}

func (s *liveSink) Write(_ context.Context, vs []any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.vs = append(s.mu.vs, vs...)
	return nil
}

func (s *liveSink) values() []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]any(nil), s.mu.vs...)
}

func (s *liveSink) Commit(context.Context) error { return nil }
func (s *liveSink) Abort() error                 { return nil }
