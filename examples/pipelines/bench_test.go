package pipelines_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/runner"
)

const benchViews = 200000

var benchInput struct {
	once sync.Once
	path string
	err  error
}

var enrichInput struct {
	once         sync.Once
	views, edits string
	err          error
}

// TestMain removes the benchmark inputs when the benchmarks are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if benchInput.path != "" {
		os.RemoveAll(filepath.Dir(benchInput.path))
	}
	if enrichInput.views != "" {
		os.RemoveAll(filepath.Dir(enrichInput.views))
	}
	os.Exit(code)
}

// input writes the benchmark's page views once per process.
func input(b *testing.B) string {
	benchInput.once.Do(func() {
		dir, err := os.MkdirTemp("", "weir-bench-")
		if err != nil {
			benchInput.err = err
			return
		}
		benchInput.path = filepath.Join(dir, "pageviews.jsonl")
		f, err := os.Create(benchInput.path)
		if err != nil {
			benchInput.err = err
			return
		}
		w := bufio.NewWriter(f)
		enc := json.NewEncoder(w)
		benchInput.err = events.GenConfig{Seed: 1, PageViews: benchViews, Profiles: 5000, ProfileEdits: -1}.Each(
			func(v events.PageViewEvent) error { return enc.Encode(v) }, nil)
		if err := w.Flush(); benchInput.err == nil {
			benchInput.err = err
		}
		if err := f.Close(); benchInput.err == nil {
			benchInput.err = err
		}
	})
	if benchInput.err != nil {
		b.Fatal(benchInput.err)
	}
	return benchInput.path
}

// inputsForEnrich writes the enrich benchmark's page views and profile edits
// once per process.
func inputsForEnrich(b *testing.B) (views, edits string) {
	enrichInput.once.Do(func() {
		dir, err := os.MkdirTemp("", "weir-bench-")
		if err != nil {
			enrichInput.err = err
			return
		}
		enrichInput.views = filepath.Join(dir, "pageviews.jsonl")
		enrichInput.edits = filepath.Join(dir, "profiles.jsonl")
		var files []*os.File
		var encs []*json.Encoder
		var bufs []*bufio.Writer
		for _, path := range []string{enrichInput.views, enrichInput.edits} {
			f, err := os.Create(path)
			if err != nil {
				enrichInput.err = err
				return
			}
			w := bufio.NewWriter(f)
			files, bufs, encs = append(files, f), append(bufs, w), append(encs, json.NewEncoder(w))
		}
		enrichInput.err = events.GenConfig{Seed: 1, PageViews: benchViews, Profiles: 5000}.Each(
			func(v events.PageViewEvent) error { return encs[0].Encode(v) },
			func(e events.ProfileEditEvent) error { return encs[1].Encode(e) })
		for i, f := range files {
			if err := bufs[i].Flush(); enrichInput.err == nil {
				enrichInput.err = err
			}
			if err := f.Close(); enrichInput.err == nil {
				enrichInput.err = err
			}
		}
	})
	if enrichInput.err != nil {
		b.Fatal(enrichInput.err)
	}
	return enrichInput.views, enrichInput.edits
}

// BenchmarkProfileViewsBackfill runs the profileviews backfill over 200k
// page views (JSON Lines) with each state backend and parallelism, next to a
// plain loop that decodes the same file and counts into a map: the ceiling
// for this input format on this machine.
func BenchmarkProfileViewsBackfill(b *testing.B) {
	in := input(b)
	b.Run("plain-loop", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			f, err := os.Open(in)
			if err != nil {
				b.Fatal(err)
			}
			counts := map[[2]int64]int64{}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var v events.PageViewEvent
				if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
					b.Fatal(err)
				}
				if v.PageKey == events.PageKeyProfileView {
					counts[[2]int64{v.ViewedProfileID, v.Timestamp / 3600000}]++
				}
			}
			f.Close()
		}
		b.ReportMetric(float64(benchViews*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	for _, c := range []struct {
		name        string
		backend     string
		parallelism int
	}{
		{"pebble/p1", "pebble", 1},
		{"pebble/p2", "pebble", 2},
		{"memory/p2", "memory", 2},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p, err := pipelines.ProfileViews(pipelines.ProfileViewsConfig{Window: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				res, err := runner.Run(context.Background(), p, runner.Options{
					Bindings:     map[string]string{"pageviews": "file://" + in, "counts": "discard://", "late": "discard://"},
					StateBackend: c.backend, Parallelism: c.parallelism, Progress: -1,
					Logger: slog.New(slog.DiscardHandler),
				})
				if err != nil {
					b.Fatal(err)
				}
				if res.Read["pageviews"] != benchViews {
					b.Fatalf("read %d", res.Read["pageviews"])
				}
			}
			b.ReportMetric(float64(benchViews*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkEnrichBackfill runs the enrich backfill over 200k page views and
// 10k profile edits (JSON Lines): its stateful ParDo reads and writes user
// state (a map, a bag and a value per member) for every element and timer.
func BenchmarkEnrichBackfill(b *testing.B) {
	views, edits := inputsForEnrich(b)
	for _, c := range []struct {
		name        string
		backend     string
		parallelism int
	}{
		{"pebble/p2", "pebble", 2},
		{"memory/p2", "memory", 2},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p, err := pipelines.Enrich(pipelines.EnrichConfig{})
				if err != nil {
					b.Fatal(err)
				}
				res, err := runner.Run(context.Background(), p, runner.Options{
					Bindings:     map[string]string{"pageviews": "file://" + views, "profiles": "file://" + edits, "enriched": "discard://"},
					StateBackend: c.backend, Parallelism: c.parallelism, Progress: -1,
					Logger: slog.New(slog.DiscardHandler),
				})
				if err != nil {
					b.Fatal(err)
				}
				if res.Read["pageviews"] != benchViews {
					b.Fatalf("read %d", res.Read["pageviews"])
				}
			}
			b.ReportMetric(float64(benchViews*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkProfileViewsKafka runs profileviews in stream mode from a
// 4-partition topic on the in-process kfake broker, bounded at the end
// offsets, to a counts topic: source-to-sink throughput over the Kafka
// protocol on loopback. Three ways: at-least-once without checkpoints;
// exactly-once (a transaction per checkpoint, every second); and that with
// the state's changes also written to a changelog.
func BenchmarkProfileViewsKafka(b *testing.B) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "pageviews"), kfake.SeedTopics(1, "counts", "late"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	k := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/"
	u, _ := connector.ParseURI(k + "pageviews?key=viewerId")
	sink, err := connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "seed", URI: u, Type: reflect.TypeFor[events.PageViewEvent]()})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]any, 0, 1000)
	err = events.GenConfig{Seed: 1, PageViews: benchViews, Profiles: 5000, ProfileEdits: -1}.Each(func(v events.PageViewEvent) error {
		if batch = append(batch, v); len(batch) == cap(batch) {
			err := sink.Write(context.Background(), batch)
			batch = batch[:0]
			return err
		}
		return nil
	}, nil)
	if err == nil {
		err = sink.Write(context.Background(), batch)
	}
	if err == nil {
		err = sink.Commit(context.Background())
	}
	if err != nil {
		b.Fatal(err)
	}
	runs := 0
	for _, c := range []struct {
		name        string
		exactlyOnce bool
		changelog   bool
	}{{"at-least-once", false, false}, {"exactly-once", true, false}, {"exactly-once+changelog", true, true}} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				runs++
				p, err := pipelines.ProfileViews(pipelines.ProfileViewsConfig{Window: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				o := runner.Options{
					Mode:     runner.Stream,
					Bindings: map[string]string{"pageviews": k + "pageviews?until=latest", "counts": k + "counts?key=profileId", "late": k + "late"},
					Progress: -1, Parallelism: 2, Logger: slog.New(slog.DiscardHandler),
				}
				if c.exactlyOnce {
					txn := fmt.Sprintf("&delivery=exactly-once&txn-id=bench-%d", runs)
					o.Bindings["counts"] += txn
					o.Bindings["late"] += "?" + txn[1:] + "-late"
					o.CheckpointDir, o.CheckpointInterval = b.TempDir(), time.Second
				}
				if c.changelog {
					o.Changelog = fmt.Sprintf("%sbench-%d", k, runs)
				}
				res, err := runner.Run(context.Background(), p, o)
				if err != nil {
					b.Fatal(err)
				}
				if res.Read["pageviews"] != benchViews {
					b.Fatalf("read %d", res.Read["pageviews"])
				}
			}
			b.ReportMetric(float64(benchViews*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
