package nexmark

import (
	"github.com/weir-dev/weir/io/nexmark/model"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

// CategoryPrice is a row of Q4: the running average of the winning prices of
// the closed auctions of a category.
type CategoryPrice struct {
	Category int64 `json:"category"`
	// Average is the mean winning price, in cents, of the Auctions closed
	// auctions of the category that had a winning bid so far.
	Average  float64 `json:"average"`
	Auctions int64   `json:"auctions"`
	// Final marks the category's last row, written when the input ends
	// (never, for an unbounded input). It repeats the values of the row
	// before it.
	Final bool `json:"final"`
}

// WinningBid is an output of WinningBids: the winning bid of an auction, with
// the auction's category.
type WinningBid struct {
	Auction  int64 `json:"auction"`
	Category int64 `json:"category"`
	Bidder   int64 `json:"bidder"`
	Price    int64 `json:"price"`
	DateTime int64 `json:"dateTime"`
}

// AuctionTerms is what WinningBids keeps of an auction while it is open,
// with its best valid bid so far if it has one.
type AuctionTerms struct {
	Category, DateTime, Expires, Reserve int64
	HasBid                               bool
	Best                                 BidOffer
}

// BidOffer is what WinningBids keeps of a bid.
type BidOffer struct {
	Bidder, Price, DateTime int64
}

// AuctionOrBid is an input of WinningBids' join: an auction's terms or a
// bid, keyed by the auction's id.
type AuctionOrBid struct {
	IsBid   bool
	Auction AuctionTerms // when !IsBid
	Bid     BidOffer     // when IsBid
}

// Q4 computes the average price per category: the running average, per
// auction category, of the winning prices of the auctions closed so far (see
// WinningBids), in the global window. A pane fires at every winning bid the
// category's combine receives: one row each time, except that the runner
// pre-combines a worker's winning bids of a category before the shuffle
// (combiner lifting), so that one row may count several new auctions. When
// the input ends, every category writes one more row, Final, with its
// average over all auctions: those still open then close at the end of the
// input (see WinningBids), so the Final rows count every auction that has a
// valid bid.
//
// This is the SQL form of Nexmark's Q4 (an average over all closed auctions,
// updated as they close). Beam's Java Query4 instead averages over sliding
// windows of the winning bids' times and rounds to whole cents; Weir keeps the
// running average, unrounded, and uses none of Config's windows.
func Q4(c Config) (*sdk.Pipeline, error) {
	c.ensureDefaults()
	p := sdk.NewPipeline()
	winners := WinningBids(ReadEvents(p, c))
	prices := sdk.Map(winners, func(w WinningBid) sdk.KV[int64, int64] {
		return sdk.KV[int64, int64]{Key: w.Category, Value: w.Price}
	}, sdk.Named("ByCategory"))
	running := sdk.WindowInto(prices, windowing.Global(),
		sdk.Trigger(windowing.Repeatedly(windowing.AfterCount(1))), sdk.Accumulating(), sdk.Named("EveryWinner"))
	means := sdk.CombinePerKey(running, meanPriceFn{}, sdk.Named("MeanPrice"))
	sdk.Write(sdk.ParDo(means, categoryPriceRows{}, sdk.Named("ToRows")), Output)
	return p, p.Validate()
}

// PriceSum is the accumulator of Q4's mean: a sum of prices in cents and how
// many there are. Integers, so that the mean does not depend on the order
// in which accumulators merge.
type PriceSum struct {
	Sum, Count int64
}

type meanPriceFn struct{}

func (meanPriceFn) CreateAccumulator() PriceSum { return PriceSum{} }

func (meanPriceFn) AddInput(a PriceSum, price int64) PriceSum {
	return PriceSum{Sum: a.Sum + price, Count: a.Count + 1}
}

func (meanPriceFn) MergeAccumulators(a, b PriceSum) PriceSum {
	return PriceSum{Sum: a.Sum + b.Sum, Count: a.Count + b.Count}
}

func (meanPriceFn) ExtractOutput(a PriceSum) PriceSum { return a }

type categoryPriceRows struct{}

func (categoryPriceRows) ProcessElement(ctx *sdk.Context, kv sdk.KV[int64, PriceSum], emit sdk.Emitter[CategoryPrice]) error {
	s := kv.Value
	if s.Count == 0 {
		return nil
	}
	emit.Emit(CategoryPrice{
		Category: kv.Key,
		Average:  float64(s.Sum) / float64(s.Count),
		Auctions: s.Count,
		Final:    ctx.Pane().IsLast,
	})
	return nil
}

// WinningBids finds the winning bid of every auction, as Beam's Nexmark
// WinningBids transform does: the highest bid at or above the auction's
// reserve placed while the auction was open, from its DateTime (included) to
// its Expires (excluded, as the model says and as Beam checks; the BETWEEN of
// Nexmark's SQL form would include it). Of bids at the same price the
// earliest wins, then the one of the smallest bidder id. An auction without
// such a bid has no winner and no output. The winner is written when the
// watermark passes the auction's expiry, stamped with its last millisecond
// (Expires-1). At the end of a bounded input the watermark reaches the end of
// time, so the auctions still open then close with the best bid they had, as
// in Beam, where the final watermark of a bounded input fires every auction
// window still open.
//
// Beam's Java transform accepts bids placed before the auction opened (the
// generator names auctions a little ahead of their creation); Weir follows
// the SQL definition of Nexmark (the bid's time between the auction's
// DateTime and Expires) and does not.
//
// The join is held in keyed state per auction id, in the global window: the
// auction's terms and best bid while it is open, released by an event-time
// timer at its expiry; and the bids that arrive before their auction is
// known (from another split, or named ahead of the auction), with the time
// of the earliest of them, kept until the watermark passes their own time,
// after which no auction they could be valid for can come (an auction
// opening later than the bid rejects it). So a bid for an auction that has
// closed waits only until the watermark passes it, and no state outlives the
// auctions it is for. Input that is late (more out of order than
// Config.OutOfOrderness allows) may miss its match.
func WinningBids(events sdk.PCollection[model.Event]) sdk.PCollection[WinningBid] {
	keyed := sdk.ParDo(events, winningBidsKey{}, sdk.Named("KeyByAuction"))
	fn := &winningBidsJoin{
		open:     sdk.NewValueState[AuctionTerms]("open"),
		early:    sdk.NewBagState[BidOffer]("early"),
		earliest: sdk.NewValueState[int64]("earliest"),
		close:    sdk.EventTimer("close"),
		drop:     sdk.EventTimer("drop"),
	}
	return sdk.ParDo(keyed, fn, sdk.State(fn.open, fn.early, fn.earliest, fn.close, fn.drop), sdk.Named("WinningBids"))
}

// winningBidsKey keys auctions by their id and bids by their auction, keeping
// only what the join needs of them, and drops persons.
type winningBidsKey struct{}

func (winningBidsKey) ProcessElement(_ *sdk.Context, e model.Event, emit sdk.Emitter[sdk.KV[int64, AuctionOrBid]]) error {
	switch {
	case e.Auction != nil:
		a := e.Auction
		emit.Emit(sdk.KV[int64, AuctionOrBid]{Key: a.ID, Value: AuctionOrBid{Auction: AuctionTerms{
			Category: a.Category, DateTime: a.DateTime, Expires: a.Expires, Reserve: a.Reserve,
		}}})
	case e.Bid != nil:
		b := e.Bid
		emit.Emit(sdk.KV[int64, AuctionOrBid]{Key: b.Auction, Value: AuctionOrBid{IsBid: true, Bid: BidOffer{
			Bidder: b.Bidder, Price: b.Price, DateTime: b.DateTime,
		}}})
	}
	return nil
}

type winningBidsJoin struct {
	open     sdk.ValueState[AuctionTerms]
	early    sdk.BagState[BidOffer]
	earliest sdk.ValueState[int64] // the time of the earliest early bid; unset when there are none
	close    sdk.TimerDecl         // the auction's expiry
	drop     sdk.TimerDecl         // at earliest: when early bids may go
}

// offer makes b the auction's best bid if it is valid and beats the best so
// far, and reports whether it did.
func (a *AuctionTerms) offer(b BidOffer) bool {
	if b.DateTime < a.DateTime || b.DateTime >= a.Expires || b.Price < a.Reserve {
		return false
	}
	if a.HasBid {
		x := a.Best
		switch {
		case b.Price != x.Price:
			if b.Price < x.Price {
				return false
			}
		case b.DateTime != x.DateTime:
			if b.DateTime > x.DateTime {
				return false
			}
		case b.Bidder >= x.Bidder:
			return false
		}
	}
	a.HasBid, a.Best = true, b
	return true
}

func (f *winningBidsJoin) ProcessElement(ctx *sdk.Context, kv sdk.KV[int64, AuctionOrBid], _ sdk.Emitter[WinningBid]) error {
	if !kv.Value.IsBid {
		return f.opened(ctx, kv.Value.Auction)
	}
	b := kv.Value.Bid
	a, open, err := f.open.Read(ctx)
	switch {
	case err != nil:
		return err
	case open:
		if a.offer(b) {
			return f.open.Write(ctx, a)
		}
		return nil
	case sdk.Time(b.DateTime) < ctx.Watermark():
		// Every auction that opened by the bid's time has been seen,
		// and this one is closed (or opens later): the bid cannot win.
		return nil
	}
	if err := f.early.Add(ctx, b); err != nil {
		return err
	}
	first, waiting, err := f.earliest.Read(ctx)
	if err != nil || waiting && first <= b.DateTime {
		return err
	}
	if err := f.earliest.Write(ctx, b.DateTime); err != nil {
		return err
	}
	return f.drop.Set(ctx, sdk.Time(b.DateTime))
}

// opened starts an auction: it takes the bids that came before it and sets
// the timer of its expiry.
func (f *winningBidsJoin) opened(ctx *sdk.Context, a AuctionTerms) error {
	_, waiting, err := f.earliest.Read(ctx)
	if err != nil {
		return err
	}
	if waiting {
		early, err := f.early.Read(ctx)
		if err != nil {
			return err
		}
		for _, b := range early {
			a.offer(b)
		}
		for _, err := range []error{f.early.Clear(ctx), f.earliest.Clear(ctx), f.drop.Clear(ctx)} {
			if err != nil {
				return err
			}
		}
	}
	if err := f.open.Write(ctx, a); err != nil {
		return err
	}
	return f.close.Set(ctx, sdk.Time(a.Expires-1))
}

func (f *winningBidsJoin) OnTimer(ctx *sdk.Context, t sdk.Timer, emit sdk.Emitter[WinningBid]) error {
	if t.Name == "drop" {
		return f.dropEarly(ctx)
	}
	a, open, err := f.open.Read(ctx)
	if err != nil || !open {
		return err
	}
	if a.HasBid {
		b := a.Best
		emit.Emit(WinningBid{Auction: sdk.Key[int64](ctx), Category: a.Category, Bidder: b.Bidder, Price: b.Price, DateTime: b.DateTime})
	}
	return f.open.Clear(ctx)
}

// dropEarly forgets the early bids the watermark has passed, and sets the
// timer again for the others.
func (f *winningBidsJoin) dropEarly(ctx *sdk.Context) error {
	early, err := f.early.Read(ctx)
	if err != nil {
		return err
	}
	wm := ctx.Watermark()
	var kept []BidOffer
	for _, b := range early {
		if sdk.Time(b.DateTime) >= wm {
			kept = append(kept, b)
		}
	}
	if err := f.early.Clear(ctx); err != nil {
		return err
	}
	if len(kept) == 0 {
		return f.earliest.Clear(ctx)
	}
	for _, b := range kept {
		if err := f.early.Add(ctx, b); err != nil {
			return err
		}
	}
	first := f.first(kept)
	if err := f.earliest.Write(ctx, first); err != nil {
		return err
	}
	return f.drop.Set(ctx, sdk.Time(first))
}

// first returns the time of the earliest of bids, which must not be empty.
func (*winningBidsJoin) first(bids []BidOffer) int64 {
	t := bids[0].DateTime
	for _, b := range bids[1:] {
		t = min(t, b.DateTime)
	}
	return t
}
