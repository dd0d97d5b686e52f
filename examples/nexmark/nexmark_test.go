package nexmark_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-dev/weir/examples/nexmark"
	"github.com/weir-dev/weir/examples/nexmark/nexmarktest"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/io/nexmark/model"
	"github.com/weir-dev/weir/runner"
)

// The data every test reads: 6,000 events at 200 events/s, half a minute of
// event time, so that windows of 10s hold a few hundred events.
const (
	events = 6000
	rate   = 200
	seed   = 11
	uri    = "nexmark://?events=6000&rate=200&seed=11&splits=3"
)

func dataset(t *testing.T) []model.Event {
	t.Helper()
	evs, err := model.Generate(model.Config{Events: events, Rate: rate, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

var seq atomic.Int64

// run runs a query as a backfill over the nexmark:// source (or the given
// source URI) and returns what it wrote.
func run[T any](t *testing.T, q nexmark.Query, c nexmark.Config, source string, backend string) []T {
	t.Helper()
	p, err := q(c)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("%s-%d", t.Name(), seq.Add(1))
	col := memory.NewCollector(name)
	res, err := runner.Run(context.Background(), p, runner.Options{
		Mode:         runner.Backfill,
		Bindings:     map[string]string{nexmark.Input: source, nexmark.Output: "mem://" + name},
		Parallelism:  2,
		StateBackend: backend,
		Progress:     -1,
		Logger:       slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	late := int64(0)
	for _, n := range res.Late {
		late += n
	}
	if res.DeadLettered != 0 || late != 0 {
		t.Fatalf("%d dead letters, late %v", res.DeadLettered, res.Late)
	}
	var out []T
	for _, v := range col.Values() {
		x, ok := v.(T)
		if !ok {
			t.Fatalf("output of type %T, want %T", v, x)
		}
		out = append(out, x)
	}
	return out
}

// same is nexmarktest.Same.
func same[T any](t *testing.T, got, want []T) {
	t.Helper()
	nexmarktest.Same(t, got, want)
}

func TestQ0(t *testing.T) {
	same(t, run[model.Event](t, nexmark.Q0, nexmark.Config{}, uri, "memory"), nexmarktest.Q0(dataset(t), nexmark.Config{}))
}

// Q0 over an in-memory source with out-of-order ids reads the same.
func TestQ0FromMemory(t *testing.T) {
	evs, err := model.Generate(model.Config{Events: 2000, Seed: 4, OutOfOrderGroupSize: 50})
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]any, len(evs))
	for i, e := range evs {
		vals[i] = e
	}
	name := fmt.Sprintf("%s-in", t.Name())
	memory.NewBounded(name, vals...)
	same(t, run[model.Event](t, nexmark.Q0, nexmark.Config{}, "mem://"+name, "memory"), evs)
}

func TestQ1(t *testing.T) {
	same(t, run[model.Bid](t, nexmark.Q1, nexmark.Config{}, uri, "memory"), nexmarktest.Q1(dataset(t), nexmark.Config{}))
}

func TestQ2(t *testing.T) {
	for _, skip := range []int64{0, 7} {
		c := nexmark.Config{AuctionSkip: skip}
		same(t, run[nexmark.AuctionPrice](t, nexmark.Q2, c, uri, "memory"), nexmarktest.Q2(dataset(t), c))
	}
}

func TestQ3(t *testing.T) {
	want := nexmarktest.Q3(dataset(t), nexmark.Config{})
	same(t, run[nexmark.LocalItem](t, nexmark.Q3, nexmark.Config{}, uri, "pebble"), want)
	// Out-of-order ids (the same events, at other times): auctions come
	// before their sellers more often.
	got := run[nexmark.LocalItem](t, nexmark.Q3, nexmark.Config{}, uri+"&group=500", "memory")
	same(t, got, want)
}

// distinct counts the distinct values of a field of the rows: the windows
// (or the keys) the truth has rows for.
func distinct[T any](rows []T, field func(T) int64) int {
	seen := map[int64]bool{}
	for _, r := range rows {
		seen[field(r)] = true
	}
	return len(seen)
}

func TestQ5(t *testing.T) {
	want := nexmarktest.Q5(dataset(t), nexmark.Config{})
	got := run[nexmark.HotItem](t, nexmark.Q5, nexmark.Config{}, uri, "pebble")
	same(t, got, want)
	if n := distinct(want, func(h nexmark.HotItem) int64 { return h.WindowStart }); n < 10 {
		t.Errorf("only %d windows", n)
	}
}

func TestQ7(t *testing.T) {
	want := nexmarktest.Q7(dataset(t), nexmark.Config{})
	got := run[model.Bid](t, nexmark.Q7, nexmark.Config{}, uri, "pebble")
	same(t, got, want)
	window := (10 * time.Second).Milliseconds()
	if n := distinct(want, func(b model.Bid) int64 { return b.DateTime - b.DateTime%window }); n < 3 {
		t.Errorf("only %d windows", n)
	}
}

func TestQ8(t *testing.T) {
	got := run[nexmark.NewUser](t, nexmark.Q8, nexmark.Config{}, uri, "pebble")
	same(t, got, nexmarktest.Q8(dataset(t), nexmark.Config{}))
}

// Q11 with a gap of 1s, so that bidders have several sessions in the half
// minute of data.
func TestQ11(t *testing.T) {
	c := nexmark.Config{Window: time.Second}
	want := nexmarktest.Q11(dataset(t), c)
	got := run[nexmark.BidderSession](t, nexmark.Q11, c, uri, "pebble")
	same(t, got, want)
	if bidders := distinct(want, func(s nexmark.BidderSession) int64 { return s.Bidder }); len(want) <= bidders {
		t.Errorf("%d sessions of %d bidders: no bidder has two", len(want), bidders)
	}
}

func TestLookup(t *testing.T) {
	for _, name := range nexmark.Names() {
		q, err := nexmark.Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := q(nexmark.Config{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := p.Graph().Sources(); len(got) != 1 || got[0] != nexmark.Input {
			t.Errorf("%s reads %v", name, got)
		}
	}
	if _, err := nexmark.Lookup("q99"); err == nil || err.Error()[:8] != "nexmark:" {
		t.Errorf("q99: %v", err)
	}
	if got := nexmark.Names(); got[0] != "q0" || got[len(got)-1] != "q11" {
		t.Errorf("names %v", got)
	}
}
