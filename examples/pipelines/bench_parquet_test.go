package pipelines_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/io/codec"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/runner"
)

// writeDays writes views over days days into one Parquet file per day (row
// groups of 16384 rows), under dir/<folder(day)>/views.parquet.
func writeDays(b *testing.B, dir string, views, days int, folder func(time.Time) string) {
	b.Helper()
	sinks := map[string]connector.Sink{}
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	err := events.GenConfig{Seed: 3, PageViews: views, Profiles: 5000, ProfileEdits: -1, LateFraction: -1,
		Start: start, Span: time.Duration(days) * 24 * time.Hour}.Each(func(v events.PageViewEvent) error {
		day := time.UnixMilli(v.Timestamp).UTC().Format(time.DateOnly)
		s, ok := sinks[day]
		if !ok {
			t, _ := time.Parse(time.DateOnly, day)
			u, _ := connector.ParseURI("file://" + filepath.Join(dir, folder(t), "views.parquet") + "?rowgroup=16384")
			var err error
			if s, err = connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "views", URI: u, Type: reflect.TypeFor[events.PageViewEvent]()}); err != nil {
				return err
			}
			sinks[day] = s
		}
		return s.Write(context.Background(), []any{v})
	}, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range sinks {
		if err := s.Commit(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProfileViewsParquet is the profileviews backfill from Parquet
// beside its ceiling, a plain read of the same files with pqarrow (through
// io/codec) counting views per profile and hour in a map, in one run.
func BenchmarkProfileViewsParquet(b *testing.B) {
	dir := b.TempDir()
	const views, days = 400000, 4
	writeDays(b, dir, views, days, func(t time.Time) string { return "date=" + t.Format(time.DateOnly) })
	files, _ := filepath.Glob(filepath.Join(dir, "*", "views.parquet"))
	b.Run("plain-pqarrow-read", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			counts := map[[2]int64]int64{}
			for _, f := range files {
				fh, err := os.Open(f)
				if err != nil {
					b.Fatal(err)
				}
				fi, _ := fh.Stat()
				r, err := codec.NewParquetReader(fh, fi.Size(), f, reflect.TypeFor[events.PageViewEvent](), codec.ParquetReaderOptions{})
				if err != nil {
					b.Fatal(err)
				}
				for {
					batch, err := r.Next(context.Background())
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					for _, v := range batch.Values {
						pv := v.(events.PageViewEvent)
						counts[[2]int64{pv.ViewedProfileID, pv.Timestamp / 3600000}]++
					}
				}
				r.Close()
				fh.Close()
			}
		}
		b.ReportMetric(float64(views*b.N)/b.Elapsed().Seconds(), "records/s")
	})
	for _, backend := range []string{"pebble", "memory"} {
		b.Run("pipeline/"+backend+"/p2", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p, err := pipelines.ProfileViews(pipelines.ProfileViewsConfig{Window: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				res, err := runner.Run(context.Background(), p, runner.Options{
					Bindings:     map[string]string{"pageviews": "file://" + dir + "/?time=timestamp", "counts": "discard://", "late": "discard://"},
					StateBackend: backend, Progress: -1, Parallelism: 2, Logger: slog.New(slog.DiscardHandler),
				})
				if err != nil {
					b.Fatal(err)
				}
				if res.Read["pageviews"] != views {
					b.Fatalf("read %d", res.Read["pageviews"])
				}
			}
			b.ReportMetric(float64(views*b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkBackfillOrder backfills 30 days of views from daily Parquet
// files twice: with the files in date= folders, whose splits are read in
// time order and each holds the watermark only at its first event time,
// and with the same files in folders that say nothing of time, whose
// unread splits hold the watermark at the start of time until the end. It
// reports the peak state of each (memory backend: bytes in the backend and
// in the keyed instances' caches).
func BenchmarkBackfillOrder(b *testing.B) {
	dir := b.TempDir()
	const views, days = 300000, 30
	writeDays(b, filepath.Join(dir, "hive"), views, days, func(t time.Time) string { return "date=" + t.Format(time.DateOnly) })
	writeDays(b, filepath.Join(dir, "flat"), views, days, func(t time.Time) string { return "d" + t.Format("20060102") })
	for _, c := range []struct{ name, uri string }{
		{"event-time-order", "file://" + dir + "/hive/"},
		{"unordered", "file://" + dir + "/flat/"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var peak int64
			for i := 0; i < b.N; i++ {
				p, err := pipelines.ProfileViews(pipelines.ProfileViewsConfig{Window: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				res, err := runner.Run(context.Background(), p, runner.Options{
					Bindings:     map[string]string{"pageviews": c.uri, "counts": "discard://", "late": "discard://"},
					StateBackend: "memory", Progress: -1, Parallelism: 2, Logger: slog.New(slog.DiscardHandler),
				})
				if err != nil {
					b.Fatal(err)
				}
				if res.Read["pageviews"] != views {
					b.Fatalf("read %d", res.Read["pageviews"])
				}
				peak = max(peak, res.PeakStateBytes)
			}
			b.ReportMetric(float64(views*b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(peak)/(1<<20), "peak-state-MB")
		})
	}
}
