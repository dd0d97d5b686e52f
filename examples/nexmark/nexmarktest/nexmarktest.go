// Package nexmarktest computes the results of the Nexmark queries with plain
// loops over the events held in memory: the truth that tests hold Weir's
// queries (examples/nexmark) and their Beam versions on prism (the bench
// module's beamnexmark) to, rather than holding one runner to another's
// answer. Each function follows its query's definition in examples/nexmark,
// with the same Config; rows are Weir's row types, whose JSON the Beam
// versions share. Same compares rows as multisets.
//
// Dependency direction: nexmarktest imports examples/nexmark (the rows and
// Config) and io/nexmark/model; only tests import it.
package nexmarktest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/weir-dev/weir/examples/nexmark"
	"github.com/weir-dev/weir/io/nexmark/model"
)

// Rows returns the results of the query of a name ("q0", ..., as
// nexmark.Lookup names them) as values. Q4 has no truth here.
func Rows(name string, evs []model.Event, c nexmark.Config) ([]any, error) {
	switch strings.ToLower(name) {
	case "q0":
		return anys(Q0(evs, c)), nil
	case "q1":
		return anys(Q1(evs, c)), nil
	case "q2":
		return anys(Q2(evs, c)), nil
	case "q3":
		return anys(Q3(evs, c)), nil
	case "q5":
		return anys(Q5(evs, c)), nil
	case "q7":
		return anys(Q7(evs, c)), nil
	case "q8":
		return anys(Q8(evs, c)), nil
	case "q11":
		return anys(Q11(evs, c)), nil
	}
	return nil, fmt.Errorf("nexmarktest: no truth for query %q", name)
}

func anys[T any](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// Bids returns the bids of the events, in their order.
func Bids(evs []model.Event) []model.Bid {
	var out []model.Bid
	for _, e := range evs {
		if e.Bid != nil {
			out = append(out, *e.Bid)
		}
	}
	return out
}

// Q0 is every event.
func Q0(evs []model.Event, _ nexmark.Config) []model.Event {
	return slices.Clone(evs)
}

// Q1 is every bid, its price in euros: 89 cents a dollar, rounded down.
func Q1(evs []model.Event, _ nexmark.Config) []model.Bid {
	out := Bids(evs)
	for i := range out {
		out[i].Price = out[i].Price * 89 / 100
	}
	return out
}

// Q2 is the bids on the auctions whose id is a multiple of AuctionSkip.
func Q2(evs []model.Event, c nexmark.Config) []nexmark.AuctionPrice {
	c = c.WithDefaults()
	var out []nexmark.AuctionPrice
	for _, b := range Bids(evs) {
		if b.Auction%c.AuctionSkip == 0 {
			out = append(out, nexmark.AuctionPrice{Auction: b.Auction, Price: b.Price})
		}
	}
	return out
}

// Q3 is the auctions of category 10 whose seller lives in Oregon, Idaho or
// California, with the seller: a join over all the events, whichever of an
// auction and its seller comes first.
func Q3(evs []model.Event, _ nexmark.Config) []nexmark.LocalItem {
	persons := map[int64]model.Person{}
	for _, e := range evs {
		if e.Person != nil {
			persons[e.Person.ID] = *e.Person
		}
	}
	var out []nexmark.LocalItem
	for _, e := range evs {
		if a := e.Auction; a != nil && a.Category == model.FirstCategoryID {
			if p, ok := persons[a.Seller]; ok && (p.State == "OR" || p.State == "ID" || p.State == "CA") {
				out = append(out, nexmark.LocalItem{Name: p.Name, City: p.City, State: p.State, Auction: a.ID})
			}
		}
	}
	return out
}

// Q5 is, for each sliding window of Window every Period, the auctions with
// the most bids in it (all of them when several tie).
func Q5(evs []model.Event, c nexmark.Config) []nexmark.HotItem {
	c = c.WithDefaults()
	window, period := c.Window.Milliseconds(), c.Period.Milliseconds()
	type wa struct{ start, auction int64 }
	counts := map[wa]int64{}
	for _, b := range Bids(evs) {
		for s := b.DateTime - b.DateTime%period; s > b.DateTime-window; s -= period {
			counts[wa{s, b.Auction}]++
		}
	}
	most := map[int64]int64{}
	for k, n := range counts {
		most[k.start] = max(most[k.start], n)
	}
	var out []nexmark.HotItem
	for k, n := range counts {
		if n == most[k.start] {
			out = append(out, nexmark.HotItem{WindowStart: k.start, WindowEnd: k.start + window, Auction: k.auction, Bids: n})
		}
	}
	return out
}

// Q7 is, for each fixed window of Window, the bids at its highest price.
func Q7(evs []model.Event, c nexmark.Config) []model.Bid {
	window := c.WithDefaults().Window.Milliseconds()
	all := Bids(evs)
	highest := map[int64]int64{}
	for _, b := range all {
		s := b.DateTime - b.DateTime%window
		if p, ok := highest[s]; !ok || b.Price > p {
			highest[s] = b.Price
		}
	}
	var out []model.Bid
	for _, b := range all {
		if b.Price == highest[b.DateTime-b.DateTime%window] {
			out = append(out, b)
		}
	}
	return out
}

// Q8 is, for each fixed window of Window, the people who registered in it
// and the auctions they opened in it: a row per such auction.
func Q8(evs []model.Event, c nexmark.Config) []nexmark.NewUser {
	window := c.WithDefaults().Window.Milliseconds()
	type wk struct{ start, person int64 }
	persons := map[wk]model.Person{}
	auctions := map[wk][]model.Auction{}
	for _, e := range evs {
		switch {
		case e.Person != nil:
			persons[wk{e.Person.DateTime - e.Person.DateTime%window, e.Person.ID}] = *e.Person
		case e.Auction != nil:
			k := wk{e.Auction.DateTime - e.Auction.DateTime%window, e.Auction.Seller}
			auctions[k] = append(auctions[k], *e.Auction)
		}
	}
	var out []nexmark.NewUser
	for k, p := range persons {
		for _, a := range auctions[k] {
			out = append(out, nexmark.NewUser{ID: p.ID, Name: p.Name, Reserve: a.Reserve})
		}
	}
	return out
}

// Q11 is each bidder's sessions, runs of bids less than Window apart, with
// their numbers of bids.
func Q11(evs []model.Event, c nexmark.Config) []nexmark.BidderSession {
	gap := c.WithDefaults().Window.Milliseconds()
	times := map[int64][]int64{}
	for _, b := range Bids(evs) {
		times[b.Bidder] = append(times[b.Bidder], b.DateTime)
	}
	var out []nexmark.BidderSession
	for bidder, ts := range times {
		slices.Sort(ts)
		cur := nexmark.BidderSession{Bidder: bidder, SessionStart: ts[0], SessionEnd: ts[0] + gap}
		for _, x := range ts {
			if x >= cur.SessionEnd {
				out = append(out, cur)
				cur = nexmark.BidderSession{Bidder: bidder, SessionStart: x}
			}
			cur.SessionEnd = x + gap
			cur.Bids++
		}
		out = append(out, cur)
	}
	return out
}

// Same compares rows as multisets, by their JSON, showing the first few
// that differ, and fails on an empty expectation: a test whose truth finds
// nothing checks nothing.
func Same[T any](t testing.TB, got, want []T) {
	t.Helper()
	if len(want) == 0 {
		t.Fatal("the truth has no rows: the test data is too small")
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
