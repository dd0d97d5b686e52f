package runner_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
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
	send, waitFor, stop := tableStream(t, topic)
	send(ev{"a", 1, 0})
	waitFor(1)
	writeSink(t, topic+"?key=id", reflect.TypeFor[profile](), profile{"a", "Anna"}, profile{"c", "Cy"})
	// The table's reader polls every 50ms: the update is in well before
	// this.
	time.Sleep(500 * time.Millisecond)
	send(ev{"a", 100, 0}, ev{"c", 101, 0})
	waitFor(3)
	got := stop()
	if got != "[a@1 Ann a@100 Anna c@101 Cy]" {
		t.Fatalf("got %s: want a@1 before the update (Ann), and after it a@100 Anna and c@101 Cy", got)
	}
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
	send, wait, stop := tableStream(t, topic)
	send(ev{"a", 1, 0}, ev{"b", 2, 0})
	wait(2)
	tombstone("a")
	time.Sleep(500 * time.Millisecond)
	send(ev{"a", 3, 0})
	wait(3)
	if got := stop(); got != "[a@1 Ann a@3 unknown b@2 unknown]" {
		t.Fatalf("got %s, want b deleted at load and a while following", got)
	}
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

// tableStream runs tablePipeline in stream mode with its table bound to
// topic, and returns how to feed it, to wait until it has written n
// values, and to stop it and get its output, sorted.
func tableStream(t *testing.T, topic string) (send func(...any), wait func(int64), stop func() string) {
	t.Helper()
	in := fmt.Sprintf("table-in-%d", names.Add(1))
	src := memory.NewStream(in)
	out, c := memOut()
	stopCh := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := runner.Run(context.Background(), tablePipeline(), runner.Options{Mode: runner.Stream, Progress: -1, StateBackend: "memory",
			Logger: slog.New(slog.DiscardHandler), Stop: stopCh,
			Bindings: map[string]string{"in": "mem://" + in, "profiles": topic, "out": out}})
		done <- err
	}()
	wait = func(n int64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); c.Written() < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d written, want %d", c.Written(), n)
			}
		}
	}
	stop = func() string {
		t.Helper()
		close(stopCh)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(sortedStrings(c.Values()))
	}
	return func(vs ...any) { src.Send(vs...) }, wait, stop
}
