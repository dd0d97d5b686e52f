package pipelines_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/runner"
)

const benchViews = 200000

var benchInput struct {
	once sync.Once
	path string
	err  error
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
