package integration

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
)

func kafkaCluster(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(),
		kfake.SeedTopics(4, "pageviews"), kfake.SeedTopics(2, "profiles"), kfake.SeedTopics(1, "counts", "late", "enriched"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

func produce[T any](t *testing.T, uri string, vs []T) {
	t.Helper()
	u, _ := connector.ParseURI(uri)
	s, err := connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "seed", URI: u, Type: reflect.TypeFor[T]()})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(vs); i += 1000 {
		if err := s.Write(context.Background(), anys(vs[i:min(i+1000, len(vs))])); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// consume reads a topic to its current end.
func consume[T any](t *testing.T, uri string) []T {
	t.Helper()
	var out []T
	for _, v := range readAllURI(t, uri+"?until=latest", reflect.TypeFor[T]()) {
		out = append(out, v.(T))
	}
	return out
}

// TestExamplesOverKafka runs profileviews and enrich in stream mode on
// topics of several partitions (each partition its own split and
// watermark), bounded at the end offsets so that the run drains itself, and
// checks the topics they write against the plain-loop answers.
func TestExamplesOverKafka(t *testing.T) {
	addr := kafkaCluster(t)
	k := "kafka://" + addr + "/"
	// Disordered within the watermark's bound and without very late views:
	// which views are very late depends on how the partitions' reads
	// interleave (a partition not yet read holds the watermark back), so
	// only data within the bound has one answer whatever the interleaving.
	views, edits, err := events.Generate(events.GenConfig{Seed: 7, PageViews: 20000, Profiles: 300, Span: 12 * 3600 * 1e9, LateFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, k+"pageviews?key=viewerId", views)
	produce(t, k+"profiles?key=profileId", edits)

	cfg := pipelines.ProfileViewsConfig{}
	p, err := pipelines.ProfileViews(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runner.Run(context.Background(), p, quietOptions(runner.Options{Mode: runner.Stream, Bindings: map[string]string{
		"pageviews": k + "pageviews?until=latest", "counts": k + "counts?key=profileId", "late": k + "late",
	}}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Read["pageviews"] != int64(len(views)) {
		t.Errorf("read %d of %d views", res.Read["pageviews"], len(views))
	}
	cfg.Window, cfg.OutOfOrderness = 60*60*1000*1e6, 5*60*1000*1e6
	wantRows, wantLate := refProfileViews(views, cfg)
	sameRows(t, "counts over kafka", consume[pipelines.ProfileViewCount](t, k+"counts"), wantRows)
	if len(wantLate) != 0 {
		t.Fatalf("the data set has %d late views", len(wantLate))
	}
	sameRows(t, "late over kafka", consume[events.PageViewEvent](t, k+"late"), wantLate)

	p, err = pipelines.Enrich(pipelines.EnrichConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Run(context.Background(), p, quietOptions(runner.Options{Mode: runner.Stream, Bindings: map[string]string{
		"pageviews": k + "pageviews?until=latest", "profiles": k + "profiles?until=latest", "enriched": k + "enriched",
	}})); err != nil {
		t.Fatal(err)
	}
	sameRows(t, "enriched over kafka", consume[pipelines.EnrichedPageView](t, k+"enriched"), refEnrich(views, edits))
}

// TestIdleKafkaPartition runs a stream over a topic of two partitions of
// which only one ever gets data: with an idleness timeout, the empty
// partition stops holding the watermark back, and windows fire while the
// stream runs (a known trap of other runners: an empty partition pinning
// the watermark for ever).
func TestIdleKafkaPartition(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "ticks"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/"
	var ticks []tick
	for i := 0; i < 300; i++ {
		ticks = append(ticks, tick{Src: "a", At: int64(i) * 1000})
	}
	// One key: every record lands in the same partition.
	produce(t, k+"ticks?key=Src", ticks)

	n := seq.Add(1)
	b := memory.NewStream(fmt.Sprintf("kidle-b-%d", n))
	defer b.Close()
	col := memory.NewCollector(fmt.Sprintf("kidle-out-%d", n))
	drain := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := runner.Run(context.Background(), idlePipeline(300*time.Millisecond), quietOptions(runner.Options{
			Mode: runner.Stream, StateBackend: "memory", Drain: drain,
			Bindings: map[string]string{"a": k + "ticks", "b": fmt.Sprintf("mem://kidle-b-%d", n), "counts": fmt.Sprintf("mem://kidle-out-%d", n)},
		}))
		done <- err
	}()
	deadline := time.Now().Add(time.Minute)
	for col.Written() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if col.Written() < 4 {
		t.Errorf("%d windows fired while running; want the 4 the data closes", col.Written())
	}
	close(drain)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sortedAny(col.Values())); got != "[{all 60} {all 60} {all 60} {all 60} {all 60}]" {
		t.Errorf("after the drain: %s", got)
	}
}

// TestBrokerUnavailableForAWhile cuts every fetch for a while (the broker
// closes the connection): the job keeps retrying, resumes when the broker
// answers again, and its output is complete.
func TestBrokerUnavailableForAWhile(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "pageviews"), kfake.SeedTopics(1, "counts"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/"
	views, _, err := events.Generate(events.GenConfig{Seed: 9, PageViews: 5000, Profiles: 100, Span: 6 * time.Hour, LateFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, k+"pageviews?key=viewerId", views)
	want, _ := refProfileViews(views, pipelines.ProfileViewsConfig{Window: time.Hour, OutOfOrderness: 5 * time.Minute})

	// The outage starts with the job's first fetch, however long the job
	// takes to get there, and lasts 1.5s.
	const outage = 1500 * time.Millisecond
	var began, cut atomic.Int64 // began: Unix ns
	c.ControlKey(int16(kmsg.Fetch), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		began.CompareAndSwap(0, time.Now().UnixNano())
		if time.Since(time.Unix(0, began.Load())) < outage {
			cut.Add(1)
			return nil, errors.New("broker unavailable"), true
		}
		return nil, nil, false
	})
	p, err := pipelines.ProfileViews(pipelines.ProfileViewsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Run(context.Background(), p, quietOptions(runner.Options{Mode: runner.Stream, Bindings: map[string]string{
		"pageviews": k + "pageviews?until=latest", "counts": k + "counts", "late": "discard://",
	}})); err != nil {
		t.Fatal(err)
	}
	if cut.Load() == 0 {
		t.Fatal("the outage did not happen (no fetch cut)")
	}
	t.Logf("%d fetches cut during the outage", cut.Load())
	sameRows(t, "counts after an outage", consume[pipelines.ProfileViewCount](t, k+"counts"), want)
}
