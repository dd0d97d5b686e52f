package nexmark_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/weir-dev/weir/examples/nexmark"
	"github.com/weir-dev/weir/runner"
)

// BenchmarkQuery runs each query over 500k generated events per iteration,
// the way weir bench nexmark does (stream mode, Pebble state, two workers,
// a 1 GiB memory budget, no checkpoints), so that a query's hot path can be profiled with
// go test -bench Query/q5 -cpuprofile.
func BenchmarkQuery(b *testing.B) {
	const n = 500_000
	for _, name := range nexmark.Names() {
		b.Run(name, func(b *testing.B) {
			q, _ := nexmark.Lookup(name)
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				p, err := q(nexmark.Config{})
				if err != nil {
					b.Fatal(err)
				}
				res, err := runner.Run(context.Background(), p, runner.Options{
					Mode: runner.Stream,
					Bindings: map[string]string{
						nexmark.Input:  fmt.Sprintf("nexmark://?events=%d&seed=%d&splits=2", n, seed),
						nexmark.Output: "discard://",
					},
					StateBackend: "pebble",
					StateDir:     filepath.Join(b.TempDir(), fmt.Sprint(i)),
					ResetState:   true,
					Parallelism:  2,
					Memory:       1 << 30,
					Progress:     -1,
					Logger:       slog.New(slog.DiscardHandler),
				})
				if err != nil {
					b.Fatal(err)
				}
				if res.Read[nexmark.Input] != n {
					b.Fatalf("read %d of %d events", res.Read[nexmark.Input], n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}
