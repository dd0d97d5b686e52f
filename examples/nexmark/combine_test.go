package nexmark

import (
	"reflect"
	"testing"

	"github.com/weir-dev/weir/io/nexmark/model"
)

// Ties keep every auction (Q5) and every bid (Q7) at the top, in any order
// of inputs and merges.
func TestCombineTies(t *testing.T) {
	var f mostBidsFn
	a := f.AddInput(f.AddInput(f.CreateAccumulator(), AuctionCount{Auction: 3, Bids: 5}), AuctionCount{Auction: 1, Bids: 2})
	b := f.AddInput(f.AddInput(f.CreateAccumulator(), AuctionCount{Auction: 2, Bids: 5}), AuctionCount{Auction: 7, Bids: 4})
	for _, m := range []MostBids{f.MergeAccumulators(a, b), f.MergeAccumulators(b, a)} {
		if got := f.ExtractOutput(m); !reflect.DeepEqual(got, MostBids{Bids: 5, Auctions: []int64{2, 3}}) {
			t.Errorf("most bids: %+v", got)
		}
	}
	if got := f.ExtractOutput(f.MergeAccumulators(a, f.CreateAccumulator())); !reflect.DeepEqual(got.Auctions, []int64{3}) {
		t.Errorf("merge with empty: %+v", got)
	}

	var h highestBidsFn
	x := h.AddInput(h.AddInput(h.CreateAccumulator(), model.Bid{Auction: 1, Price: 9}), model.Bid{Auction: 2, Price: 3})
	y := h.AddInput(h.CreateAccumulator(), model.Bid{Auction: 4, Price: 9})
	if got := h.ExtractOutput(h.MergeAccumulators(x, y)); len(got) != 2 || got[0].Auction != 1 || got[1].Auction != 4 {
		t.Errorf("highest bids: %+v", got)
	}
	// A zero-priced bid is still a bid.
	if got := h.ExtractOutput(h.AddInput(h.CreateAccumulator(), model.Bid{Auction: 5})); len(got) != 1 {
		t.Errorf("zero price: %+v", got)
	}
}
