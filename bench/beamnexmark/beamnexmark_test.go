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
	"github.com/weir-dev/weir/examples/nexmark/nexmarktest"
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

// fingerprints returns the number of rows and the sum of their
// fingerprints, the digest of a multiset of rows that Run reports.
func fingerprints(t *testing.T, rows []any) (n, sum int64) {
	t.Helper()
	for _, r := range rows {
		fp, err := beamnexmark.Fingerprint(r)
		if err != nil {
			t.Fatal(err)
		}
		n++
		sum += fp
	}
	return n, sum
}

// weir runs Weir's query over the events, as weir bench does (stream mode,
// here with memory state), and returns its results.
func weir(t *testing.T, name string, events, rate int64) []any {
	t.Helper()
	q, err := nexmark.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := q(nexmark.Config{})
	if err != nil {
		t.Fatal(err)
	}
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
	return col.Values()
}

// TestAgainstTruth runs each query on Weir and on prism over the same
// events, and holds each runner's results to the truth: the query computed
// by a plain loop over the events (nexmarktest), never to the other
// runner's answer. Weir's rows are compared one by one; prism's results
// are counted in its pipeline, so they are compared as a multiset by their
// number and the sum of their fingerprints.
//
// Q3 runs on prism without dynamic splits (Options.NoSplits). Its join is
// a stateful DoFn keyed by seller, whose answer does not depend on the
// order of a key's elements as long as they run one bundle at a time; but
// when prism splits a running bundle of it, the rest of a key's elements
// can run in a second bundle at once, on a stale copy of the key's state,
// and the joins of one of the two are lost. Prism splits a bundle that made
// no progress between two of its progress reports, so how many are lost
// depends on the load: this is why the test once saw 82 results against
// 117. Without splits, prism's answer is the truth.
func TestAgainstTruth(t *testing.T) {
	for _, name := range beamnexmark.Names() {
		t.Run(name, func(t *testing.T) {
			if testing.Short() && name == "q7" {
				t.Skip("slow on prism (a stateful DoFn, a side input)")
			}
			events, rate := size(name)
			cfg := model.Config{Events: events, Rate: float64(rate), Seed: seed}
			evs, err := model.Generate(cfg)
			if err != nil {
				t.Fatal(err)
			}
			want, err := nexmarktest.Rows(name, evs, nexmark.Config{})
			if err != nil {
				t.Fatal(err)
			}
			wantN, wantSum := fingerprints(t, want)
			if wantN == 0 {
				t.Fatal("the truth has no rows: the test data is too small")
			}

			nexmarktest.Same(t, weir(t, name, events, rate), want)

			start := time.Now()
			r, err := beamnexmark.Run(context.Background(), name, beamnexmark.Input{Generator: cfg, Splits: splits},
				beamnexmark.Config{}, beamnexmark.Options{Fingerprint: true, NoSplits: name == "q3"})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %d results; prism %s", name, r.Results, time.Since(start).Round(time.Millisecond))
			if r.Events != events {
				t.Errorf("prism: %d events, want %d", r.Events, events)
			}
			if r.Results != wantN || r.Fingerprint != wantSum {
				t.Errorf("prism: %d results (fingerprint %d), want %d (%d)", r.Results, r.Fingerprint, wantN, wantSum)
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
	}, beamnexmark.Config{}, beamnexmark.Options{})
	if !errors.Is(err, beamnexmark.ErrTimeout) {
		t.Fatalf("error %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("returned after %s", d)
	}
}

func TestRunErrors(t *testing.T) {
	in := beamnexmark.Input{Generator: model.Config{Events: 10}, Splits: 1}
	if _, err := beamnexmark.Run(context.Background(), "q99", in, beamnexmark.Config{}, beamnexmark.Options{}); err == nil {
		t.Error("no error for q99")
	}
	in.Splits = 0
	if _, err := beamnexmark.Run(context.Background(), "q0", in, beamnexmark.Config{}, beamnexmark.Options{}); err == nil {
		t.Error("no error for 0 splits")
	}
}
