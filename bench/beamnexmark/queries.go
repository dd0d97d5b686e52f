package beamnexmark

import (
	"slices"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/graph/window"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/state"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/transforms/stats"

	"github.com/weir-dev/weir/examples/nexmark"
	"github.com/weir-dev/weir/io/nexmark/model"
)

func init() {
	register.Function2x0[model.Event, func(model.Person)](persons)
	register.Function2x0[model.Event, func(model.Auction)](auctions)
	register.Function2x0[model.Event, func(model.Bid)](bids)
	register.Emitter1[model.Person]()
	register.Emitter1[model.Auction]()
	register.Emitter1[model.Bid]()

	register.Function1x1[model.Event, model.Event](passThrough)
	register.Function1x1[model.Bid, model.Bid](toEuros)
	register.DoFn2x0[model.Bid, func(model.Bid)](&someAuctionsFn{})
	register.Function1x1[model.Bid, AuctionPrice](toAuctionPrice)

	register.Function1x1[model.Bid, int64](bidAuction)
	register.Function2x1[int64, int, MostBids](toMostBids)
	register.Combiner1[MostBids](&mostBidsFn{})
	register.Function3x0[beam.Window, MostBids, func(HotItem)](hotItemRows)
	register.Emitter1[HotItem]()

	register.Function1x1[model.Bid, int64](bidPrice)
	register.Function3x0[model.Bid, int64, func(model.Bid)](highestBids)

	register.Function1x2[model.Person, int64, model.Person](personByID)
	register.Function1x2[model.Auction, int64, model.Auction](auctionBySeller)
	register.Function4x0[int64, func(*model.Person) bool, func(*model.Auction) bool, func(NewUser)](newUserRows)
	register.Iter1[model.Person]()
	register.Iter1[model.Auction]()
	register.Emitter1[NewUser]()

	register.Function1x1[model.Bid, int64](bidBidder)
	register.Function4x0[beam.Window, int64, int, func(BidderSession)](sessionRows)
	register.Emitter1[BidderSession]()

	register.Function2x0[model.Event, func(int64, model.Event)](q3Key)
	register.Emitter2[int64, model.Event]()
	register.DoFn4x1[state.Provider, int64, model.Event, func(LocalItem), error](&q3JoinFn{})
	register.Emitter1[LocalItem]()
}

// Config holds the parameters of the queries: Weir's, so that both run
// the same work (the zero value is the defaults, which are Beam's Nexmark
// suite's but for Q5's period). OutOfOrderness does not apply here.
type Config = nexmark.Config

// Query adds a query's transforms to s, from the events to its results.
type Query func(s beam.Scope, events beam.PCollection, c Config) beam.PCollection

// Queries lists the queries by name, as examples/nexmark names Weir's.
var Queries = map[string]Query{
	"q0":  Q0,
	"q1":  Q1,
	"q2":  Q2,
	"q3":  Q3,
	"q5":  Q5,
	"q7":  Q7,
	"q8":  Q8,
	"q11": Q11,
}

// The rows of the results. Their JSON is that of Weir's rows of the same
// queries.
type (
	// AuctionPrice is a row of Q2.
	AuctionPrice struct {
		Auction int64 `json:"auction"`
		Price   int64 `json:"price"`
	}
	// HotItem is a row of Q5.
	HotItem struct {
		WindowStart int64 `json:"windowStart"`
		WindowEnd   int64 `json:"windowEnd"`
		Auction     int64 `json:"auction"`
		Bids        int64 `json:"bids"`
	}
	// NewUser is a row of Q8.
	NewUser struct {
		ID      int64  `json:"id"`
		Name    string `json:"name"`
		Reserve int64  `json:"reserve"`
	}
	// BidderSession is a row of Q11.
	BidderSession struct {
		Bidder       int64 `json:"bidder"`
		SessionStart int64 `json:"sessionStart"`
		SessionEnd   int64 `json:"sessionEnd"`
		Bids         int64 `json:"bids"`
	}
	// LocalItem is a row of Q3.
	LocalItem struct {
		Name    string `json:"name"`
		City    string `json:"city"`
		State   string `json:"state"`
		Auction int64  `json:"auction"`
	}
)

func persons(e model.Event, emit func(model.Person)) {
	if e.Person != nil {
		emit(*e.Person)
	}
}

func auctions(e model.Event, emit func(model.Auction)) {
	if e.Auction != nil {
		emit(*e.Auction)
	}
}

func bids(e model.Event, emit func(model.Bid)) {
	if e.Bid != nil {
		emit(*e.Bid)
	}
}

// Bids selects the bids of the events.
func Bids(s beam.Scope, events beam.PCollection) beam.PCollection {
	return beam.ParDo(s.Scope("Bids"), bids, events)
}

// Q0 passes every event through unchanged.
func Q0(s beam.Scope, events beam.PCollection, _ Config) beam.PCollection {
	return beam.ParDo(s.Scope("PassThrough"), passThrough, events)
}

func passThrough(e model.Event) model.Event { return e }

// Q1 converts the price of every bid from dollars to euros, at Weir's rate:
// 89 cents a dollar, rounded down.
func Q1(s beam.Scope, events beam.PCollection, _ Config) beam.PCollection {
	return beam.ParDo(s.Scope("ToEuros"), toEuros, Bids(s, events))
}

func toEuros(b model.Bid) model.Bid {
	b.Price = b.Price * 89 / 100
	return b
}

// Q2 selects the bids on the auctions whose id is a multiple of
// AuctionSkip, as (auction, price) rows.
func Q2(s beam.Scope, events beam.PCollection, c Config) beam.PCollection {
	c = c.WithDefaults()
	chosen := beam.ParDo(s.Scope("SomeAuctions"), &someAuctionsFn{Skip: c.AuctionSkip}, Bids(s, events))
	return beam.ParDo(s.Scope("ToAuctionPrice"), toAuctionPrice, chosen)
}

type someAuctionsFn struct {
	Skip int64
}

func (f *someAuctionsFn) ProcessElement(b model.Bid, emit func(model.Bid)) {
	if b.Auction%f.Skip == 0 {
		emit(b)
	}
}

func toAuctionPrice(b model.Bid) AuctionPrice {
	return AuctionPrice{Auction: b.Auction, Price: b.Price}
}

// MostBids is the accumulator of Q5's last step: the greatest number of
// bids, and the auctions that have it.
type MostBids struct {
	Bids     int64
	Auctions []int64
}

// Q5 finds the hot items: in sliding windows of Window every Period, the
// auctions with the most bids (all of them when several tie). As in Beam's
// Nexmark: count the bids per auction, lift each count into a singleton,
// and combine the singletons globally, keeping the largest.
func Q5(s beam.Scope, events beam.PCollection, c Config) beam.PCollection {
	c = c.WithDefaults()
	windowed := beam.WindowInto(s.Scope("SlidingWindows"), window.NewSlidingWindows(c.Period, c.Window), Bids(s, events))
	counts := stats.Count(s, beam.ParDo(s.Scope("ByAuction"), bidAuction, windowed))
	singles := beam.ParDo(s.Scope("ToSingletons"), toMostBids, counts)
	most := beam.Combine(s.Scope("MostBids"), &mostBidsFn{}, singles)
	return beam.ParDo(s.Scope("ToRows"), hotItemRows, most)
}

func bidAuction(b model.Bid) int64 { return b.Auction }

func toMostBids(auction int64, bids int) MostBids {
	return MostBids{Bids: int64(bids), Auctions: []int64{auction}}
}

type mostBidsFn struct{}

func (*mostBidsFn) MergeAccumulators(a, b MostBids) MostBids {
	switch {
	case b.Bids > a.Bids:
		return b
	case b.Bids < a.Bids:
		return a
	}
	// A new array: a's may be held elsewhere.
	return MostBids{Bids: a.Bids, Auctions: append(slices.Clip(a.Auctions), b.Auctions...)}
}

func hotItemRows(w beam.Window, m MostBids, emit func(HotItem)) {
	iw := w.(window.IntervalWindow)
	for _, a := range m.Auctions {
		emit(HotItem{WindowStart: int64(iw.Start), WindowEnd: int64(iw.End), Auction: a, Bids: m.Bids})
	}
}

// Q7 finds the highest bids of each fixed window of Window, as Beam's
// Nexmark does: the maximum price of the window as a side input, and a
// ParDo that keeps the bids at that price.
func Q7(s beam.Scope, events beam.PCollection, c Config) beam.PCollection {
	c = c.WithDefaults()
	windowed := beam.WindowInto(s.Scope("FixedWindows"), window.NewFixedWindows(c.Window), Bids(s, events))
	maxPrice := stats.Max(s, beam.ParDo(s.Scope("BidToPrice"), bidPrice, windowed))
	return beam.ParDo(s.Scope("Select"), highestBids, windowed, beam.SideInput{Input: maxPrice})
}

func bidPrice(b model.Bid) int64 { return b.Price }

func highestBids(b model.Bid, maxPrice int64, emit func(model.Bid)) {
	if b.Price == maxPrice {
		emit(b)
	}
}

// Q8 finds new users: the people who registered and opened auctions in the
// same fixed window of Window, one row per such auction.
func Q8(s beam.Scope, events beam.PCollection, c Config) beam.PCollection {
	c = c.WithDefaults()
	ps := beam.WindowInto(s.Scope("PersonWindows"), window.NewFixedWindows(c.Window), beam.ParDo(s.Scope("Persons"), persons, events))
	as := beam.WindowInto(s.Scope("AuctionWindows"), window.NewFixedWindows(c.Window), beam.ParDo(s.Scope("Auctions"), auctions, events))
	byID := beam.ParDo(s.Scope("ByPerson"), personByID, ps)
	bySeller := beam.ParDo(s.Scope("BySeller"), auctionBySeller, as)
	joined := beam.CoGroupByKey(s.Scope("Join"), byID, bySeller)
	return beam.ParDo(s.Scope("ToRows"), newUserRows, joined)
}

func personByID(p model.Person) (int64, model.Person) { return p.ID, p }

func auctionBySeller(a model.Auction) (int64, model.Auction) { return a.Seller, a }

func newUserRows(_ int64, persons func(*model.Person) bool, auctions func(*model.Auction) bool, emit func(NewUser)) {
	var ps []model.Person
	var p model.Person
	for persons(&p) {
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return
	}
	var a model.Auction
	for auctions(&a) {
		for _, p := range ps {
			emit(NewUser{ID: p.ID, Name: p.Name, Reserve: a.Reserve})
		}
	}
}

// Q11 counts the bids of each bidder's sessions: runs of bids less than
// Window apart.
func Q11(s beam.Scope, events beam.PCollection, c Config) beam.PCollection {
	c = c.WithDefaults()
	sessions := beam.WindowInto(s.Scope("Sessions"), window.NewSessions(c.Window), Bids(s, events))
	counts := stats.Count(s, beam.ParDo(s.Scope("ByBidder"), bidBidder, sessions))
	return beam.ParDo(s.Scope("ToRows"), sessionRows, counts)
}

func bidBidder(b model.Bid) int64 { return b.Bidder }

func sessionRows(w beam.Window, bidder int64, n int, emit func(BidderSession)) {
	iw := w.(window.IntervalWindow)
	emit(BidderSession{Bidder: bidder, SessionStart: int64(iw.Start), SessionEnd: int64(iw.End), Bids: int64(n)})
}

// Q3's selection, as Beam's and Weir's: sellers in Oregon, Idaho or
// California, items in category 10.
var (
	q3States   = []string{"OR", "ID", "CA"}
	q3Category = int64(model.FirstCategoryID)
)

// Seller is what Q3 keeps of a person.
type Seller struct {
	Local             bool
	Name, City, State string
}

// Q3 suggests local items: the auctions of category 10 joined with their
// sellers when those live in OR, ID or CA, in the global window, with a
// stateful DoFn keyed by seller (as Beam's Nexmark does): the seller once
// registered, and until then the auctions waiting for them.
func Q3(s beam.Scope, events beam.PCollection, _ Config) beam.PCollection {
	keyed := beam.ParDo(s.Scope("KeyBySeller"), q3Key, events)
	return beam.ParDo(s.Scope("JoinSellers"), &q3JoinFn{
		Seller:  state.MakeValueState[Seller]("seller"),
		Waiting: state.MakeBagState[int64]("waiting"),
	}, keyed)
}

func q3Key(e model.Event, emit func(int64, model.Event)) {
	switch {
	case e.Person != nil:
		emit(e.Person.ID, e)
	case e.Auction != nil && e.Auction.Category == q3Category:
		emit(e.Auction.Seller, e)
	}
}

type q3JoinFn struct {
	Seller  state.Value[Seller]
	Waiting state.Bag[int64] // auction ids
}

func (f *q3JoinFn) ProcessElement(sp state.Provider, _ int64, e model.Event, emit func(LocalItem)) error {
	if p := e.Person; p != nil {
		s := Seller{Local: slices.Contains(q3States, p.State)}
		if s.Local {
			s.Name, s.City, s.State = p.Name, p.City, p.State
		}
		if err := f.Seller.Write(sp, s); err != nil {
			return err
		}
		waiting, _, err := f.Waiting.Read(sp)
		if err != nil || len(waiting) == 0 {
			return err
		}
		if s.Local {
			for _, id := range waiting {
				emit(LocalItem{Name: s.Name, City: s.City, State: s.State, Auction: id})
			}
		}
		return f.Waiting.Clear(sp)
	}
	s, known, err := f.Seller.Read(sp)
	switch {
	case err != nil:
		return err
	case !known:
		return f.Waiting.Add(sp, e.Auction.ID)
	case s.Local:
		emit(LocalItem{Name: s.Name, City: s.City, State: s.State, Auction: e.Auction.ID})
	}
	return nil
}
