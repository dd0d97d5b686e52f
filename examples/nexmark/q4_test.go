package nexmark_test

import (
	"testing"

	"github.com/weir-dev/weir/examples/nexmark"
	"github.com/weir-dev/weir/examples/nexmark/nexmarktest"
	"github.com/weir-dev/weir/io/nexmark/model"
	"github.com/weir-dev/weir/sdk"
)

// winners is the reference of WinningBids: for each auction, the highest bid
// at or above its reserve placed in [DateTime, Expires), the earliest of the
// highest, then the one of the smallest bidder. It also returns how many of
// the auctions with a winner were still open at the end of the input.
func winners(evs []model.Event) (map[int64]nexmark.WinningBid, int) {
	auctions := map[int64]model.Auction{}
	last := int64(0)
	for _, e := range evs {
		t, _ := e.Time()
		last = max(last, t)
		if e.Auction != nil {
			auctions[e.Auction.ID] = *e.Auction
		}
	}
	out := map[int64]nexmark.WinningBid{}
	for _, b := range nexmarktest.Bids(evs) {
		a, ok := auctions[b.Auction]
		if !ok || b.DateTime < a.DateTime || b.DateTime >= a.Expires || b.Price < a.Reserve {
			continue
		}
		w, ok := out[a.ID]
		if ok && (b.Price < w.Price ||
			b.Price == w.Price && (b.DateTime > w.DateTime || b.DateTime == w.DateTime && b.Bidder >= w.Bidder)) {
			continue
		}
		out[a.ID] = nexmark.WinningBid{Auction: a.ID, Category: a.Category, Bidder: b.Bidder, Price: b.Price, DateTime: b.DateTime}
	}
	open := 0
	for id := range out {
		if auctions[id].Expires > last {
			open++
		}
	}
	return out, open
}

// winningBidsQuery writes what WinningBids finds.
func winningBidsQuery(c nexmark.Config) (*sdk.Pipeline, error) {
	p := sdk.NewPipeline()
	sdk.Write(nexmark.WinningBids(nexmark.ReadEvents(p, c)), nexmark.Output)
	return p, p.Validate()
}

// Q4 over the test data, and over the same data with out-of-order ids (so
// that bids often come before their auction), against a loop over the
// events: the winning bids themselves, then each category's final average;
// the running rows before the final one must count up to it.
func TestQ4(t *testing.T) {
	for _, tc := range []struct {
		uri, backend string
		group        int64
	}{
		{uri, "pebble", 0},
		{uri + "&group=500", "memory", 500},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			evs, err := model.Generate(model.Config{Events: events, Rate: rate, Seed: seed, OutOfOrderGroupSize: tc.group})
			if err != nil {
				t.Fatal(err)
			}
			won, open := winners(evs)
			if open == 0 || open == len(won) {
				t.Fatalf("%d of %d winning auctions open at the end: the data does not test both closings", open, len(won))
			}
			var wantBids []nexmark.WinningBid
			type sum struct{ sum, n int64 }
			sums := map[int64]sum{}
			for _, w := range won {
				wantBids = append(wantBids, w)
				s := sums[w.Category]
				sums[w.Category] = sum{s.sum + w.Price, s.n + 1}
			}
			same(t, run[nexmark.WinningBid](t, winningBidsQuery, nexmark.Config{}, tc.uri, tc.backend), wantBids)

			var want []nexmark.CategoryPrice
			for c, s := range sums {
				want = append(want, nexmark.CategoryPrice{Category: c, Average: float64(s.sum) / float64(s.n), Auctions: s.n, Final: true})
			}
			got := run[nexmark.CategoryPrice](t, nexmark.Q4, nexmark.Config{}, tc.uri, tc.backend)
			var final []nexmark.CategoryPrice
			running := map[int64][]nexmark.CategoryPrice{}
			for _, r := range got {
				if r.Final {
					final = append(final, r)
				} else {
					running[r.Category] = append(running[r.Category], r)
				}
			}
			same(t, final, want)
			for _, f := range want {
				rows := running[f.Category]
				seen := map[int64]bool{}
				var top nexmark.CategoryPrice
				for _, r := range rows {
					if seen[r.Auctions] || r.Auctions < 1 || r.Auctions > f.Auctions {
						t.Errorf("category %d: running row %+v (final %+v)", f.Category, r, f)
					}
					seen[r.Auctions] = true
					if r.Auctions > top.Auctions {
						top = r
					}
				}
				if top.Auctions != f.Auctions || top.Average != f.Average {
					t.Errorf("category %d: last running row %+v, final %+v", f.Category, top, f)
				}
			}
		})
	}
}
