package beamnexmark_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/weir-dev/weir/bench/beamnexmark"
	"github.com/weir-dev/weir/examples/nexmark"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/io/nexmark/model"
	"github.com/weir-dev/weir/runner"
)

// The data: 20,000 events at 400 events/s, 50 s of event time, so that the
// windowed queries have several windows; two splits, as on two cores. Q7
// reads 4,000 at 100 events/s (four windows): prism takes seconds over it
// even so.
const (
	seed   = 5
	splits = 2
)

func size(query string) (events, rate int64) {
	if query == "q7" {
		return 4000, 100
	}
	return 20000, 400
}

func TestMain(m *testing.M) {
	// Prism and the Beam SDK log every job's progress through slog's
	// default logger: warnings and errors only.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}

// weir runs Weir's query over the same events, as weir bench does (stream
// mode, memory state), and returns its number of results and the sum of
// their fingerprints.
func weir(t *testing.T, name string) (n, sum int64) {
	t.Helper()
	q, err := nexmark.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := q(nexmark.Config{})
	if err != nil {
		t.Fatal(err)
	}
	events, rate := size(name)
	col := memory.NewCollector("beamnexmark-" + name)
	res, err := runner.Run(context.Background(), p, runner.Options{
		Mode: runner.Stream,
		Bindings: map[string]string{
			nexmark.Input:  fmt.Sprintf("nexmark://?events=%d&rate=%d&seed=%d&splits=%d", events, rate, seed, splits),
			nexmark.Output: "mem://beamnexmark-" + name,
		},
		StateBackend: "memory",
		Parallelism:  splits,
		Progress:     -1,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Read[nexmark.Input] != events {
		t.Fatalf("Weir read %d events, want %d", res.Read[nexmark.Input], events)
	}
	for _, v := range col.Values() {
		fp, err := beamnexmark.Fingerprint(v)
		if err != nil {
			t.Fatal(err)
		}
		n++
		sum += fp
	}
	return n, sum
}

// TestSameResults runs each query on prism and on Weir over the same
// events, and compares their results as multisets: their numbers, and the
// sums of their fingerprints.
func TestSameResults(t *testing.T) {
	for _, name := range beamnexmark.Names() {
		t.Run(name, func(t *testing.T) {
			if testing.Short() && name == "q7" {
				t.Skip("slow on prism (a stateful DoFn, a side input)")
			}
			events, rate := size(name)
			wantN, wantSum := weir(t, name)
			if wantN == 0 {
				t.Fatal("Weir has no results: the test data is too small")
			}
			start := time.Now()
			r, err := beamnexmark.Run(context.Background(), name, beamnexmark.Input{
				Generator: model.Config{Events: events, Rate: float64(rate), Seed: seed},
				Splits:    splits,
			}, beamnexmark.Config{}, true)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d results; prism %s", name, r.Results, time.Since(start).Round(time.Millisecond))
			if r.Events != events {
				t.Errorf("prism: %d events, want %d", r.Events, events)
			}
			if r.Results != wantN || r.Fingerprint != wantSum {
				t.Errorf("prism: %d results (fingerprint %d), Weir: %d (%d)", r.Results, r.Fingerprint, wantN, wantSum)
			}
		})
	}
}

// TestTimeout: a run whose context ends first is cancelled and says so.
func TestTimeout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := beamnexmark.Run(ctx, "q0", beamnexmark.Input{
		Generator: model.Config{Events: 50_000_000},
		Splits:    splits,
	}, beamnexmark.Config{}, false)
	if !errors.Is(err, beamnexmark.ErrTimeout) {
		t.Fatalf("error %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("returned after %s", d)
	}
}

func TestRunErrors(t *testing.T) {
	in := beamnexmark.Input{Generator: model.Config{Events: 10}, Splits: 1}
	if _, err := beamnexmark.Run(context.Background(), "q99", in, beamnexmark.Config{}, false); err == nil {
		t.Error("no error for q99")
	}
	in.Splits = 0
	if _, err := beamnexmark.Run(context.Background(), "q0", in, beamnexmark.Config{}, false); err == nil {
		t.Error("no error for 0 splits")
	}
}
