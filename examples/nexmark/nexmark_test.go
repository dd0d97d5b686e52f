package nexmark_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-dev/weir/examples/nexmark"
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

// same compares rows as multisets, by their JSON, and fails on an empty
// expectation: a test whose reference finds nothing checks nothing.
func same[T any](t *testing.T, got, want []T) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the reference has no rows: the test data is too small")
	}
	key := func(vs []T) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			b, _ := json.Marshal(v)
			out[i] = string(b)
		}
		sort.Strings(out)
		return out
	}
	g, w := key(got), key(want)
	if len(g) != len(w) {
		t.Errorf("%d rows, want %d", len(g), len(w))
	}
	shown := 0
	for i, j := 0, 0; (i < len(g) || j < len(w)) && shown < 5; {
		switch {
		case j >= len(w) || i < len(g) && g[i] < w[j]:
			t.Errorf("unexpected row %s", g[i])
			i++
			shown++
		case i >= len(g) || w[j] < g[i]:
			t.Errorf("missing row %s", w[j])
			j++
			shown++
		default:
			i, j = i+1, j+1
		}
	}
}

func bids(evs []model.Event) []model.Bid {
	var out []model.Bid
	for _, e := range evs {
		if e.Bid != nil {
			out = append(out, *e.Bid)
		}
	}
	return out
}

func TestQ0(t *testing.T) {
	same(t, run[model.Event](t, nexmark.Q0, nexmark.Config{}, uri, "memory"), dataset(t))
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
	var want []model.Bid
	for _, b := range bids(dataset(t)) {
		b.Price = b.Price * 89 / 100
		want = append(want, b)
	}
	same(t, run[model.Bid](t, nexmark.Q1, nexmark.Config{}, uri, "memory"), want)
}

func TestQ2(t *testing.T) {
	for _, skip := range []int64{0, 7} {
		c := nexmark.Config{AuctionSkip: skip}
		if skip == 0 {
			skip = 123
		}
		var want []nexmark.AuctionPrice
		for _, b := range bids(dataset(t)) {
			if b.Auction%skip == 0 {
				want = append(want, nexmark.AuctionPrice{Auction: b.Auction, Price: b.Price})
			}
		}
		same(t, run[nexmark.AuctionPrice](t, nexmark.Q2, c, uri, "memory"), want)
	}
}

func TestQ3(t *testing.T) {
	evs := dataset(t)
	persons := map[int64]model.Person{}
	for _, e := range evs {
		if e.Person != nil {
			persons[e.Person.ID] = *e.Person
		}
	}
	var want []nexmark.LocalItem
	for _, e := range evs {
		if a := e.Auction; a != nil && a.Category == 10 {
			if p, ok := persons[a.Seller]; ok && (p.State == "OR" || p.State == "ID" || p.State == "CA") {
				want = append(want, nexmark.LocalItem{Name: p.Name, City: p.City, State: p.State, Auction: a.ID})
			}
		}
	}
	same(t, run[nexmark.LocalItem](t, nexmark.Q3, nexmark.Config{}, uri, "pebble"), want)
	// Out-of-order ids (the same events, at other times): auctions come
	// before their sellers more often.
	got := run[nexmark.LocalItem](t, nexmark.Q3, nexmark.Config{}, uri+"&group=500", "memory")
	same(t, got, want)
}

const (
	window = int64(10 * time.Second / time.Millisecond)
	period = int64(2 * time.Second / time.Millisecond)
)

func TestQ5(t *testing.T) {
	type wa struct{ start, auction int64 }
	counts := map[wa]int64{}
	for _, b := range bids(dataset(t)) {
		for s := b.DateTime - b.DateTime%period; s > b.DateTime-window; s -= period {
			counts[wa{s, b.Auction}]++
		}
	}
	most := map[int64]int64{}
	for k, n := range counts {
		most[k.start] = max(most[k.start], n)
	}
	var want []nexmark.HotItem
	for k, n := range counts {
		if n == most[k.start] {
			want = append(want, nexmark.HotItem{WindowStart: k.start, WindowEnd: k.start + window, Auction: k.auction, Bids: n})
		}
	}
	got := run[nexmark.HotItem](t, nexmark.Q5, nexmark.Config{}, uri, "pebble")
	same(t, got, want)
	if len(most) < 10 {
		t.Errorf("only %d windows", len(most))
	}
}

func TestQ7(t *testing.T) {
	highest := map[int64]int64{}
	all := bids(dataset(t))
	for _, b := range all {
		s := b.DateTime - b.DateTime%window
		if p, ok := highest[s]; !ok || b.Price > p {
			highest[s] = b.Price
		}
	}
	var want []model.Bid
	for _, b := range all {
		if b.Price == highest[b.DateTime-b.DateTime%window] {
			want = append(want, b)
		}
	}
	got := run[model.Bid](t, nexmark.Q7, nexmark.Config{}, uri, "pebble")
	same(t, got, want)
	if len(highest) < 3 {
		t.Errorf("only %d windows", len(highest))
	}
}

func TestQ8(t *testing.T) {
	type wk struct{ start, person int64 }
	persons := map[wk]model.Person{}
	auctions := map[wk][]model.Auction{}
	for _, e := range dataset(t) {
		switch {
		case e.Person != nil:
			persons[wk{e.Person.DateTime - e.Person.DateTime%window, e.Person.ID}] = *e.Person
		case e.Auction != nil:
			k := wk{e.Auction.DateTime - e.Auction.DateTime%window, e.Auction.Seller}
			auctions[k] = append(auctions[k], *e.Auction)
		}
	}
	var want []nexmark.NewUser
	for k, p := range persons {
		for _, a := range auctions[k] {
			want = append(want, nexmark.NewUser{ID: p.ID, Name: p.Name, Reserve: a.Reserve})
		}
	}
	got := run[nexmark.NewUser](t, nexmark.Q8, nexmark.Config{}, uri, "pebble")
	same(t, got, want)
}

// Q11 with a gap of 1s, so that bidders have several sessions in the half
// minute of data.
func TestQ11(t *testing.T) {
	const gap = 1000
	times := map[int64][]int64{}
	for _, b := range bids(dataset(t)) {
		times[b.Bidder] = append(times[b.Bidder], b.DateTime)
	}
	var want []nexmark.BidderSession
	for bidder, ts := range times {
		slices.Sort(ts)
		cur := nexmark.BidderSession{Bidder: bidder, SessionStart: ts[0], SessionEnd: ts[0] + gap}
		for _, x := range ts {
			if x >= cur.SessionEnd {
				want = append(want, cur)
				cur = nexmark.BidderSession{Bidder: bidder, SessionStart: x}
			}
			cur.SessionEnd = x + gap
			cur.Bids++
		}
		want = append(want, cur)
	}
	got := run[nexmark.BidderSession](t, nexmark.Q11, nexmark.Config{Window: gap * time.Millisecond}, uri, "pebble")
	same(t, got, want)
	if len(want) <= len(times) {
		t.Errorf("%d sessions of %d bidders: no bidder has two", len(want), len(times))
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
