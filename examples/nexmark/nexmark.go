// Package nexmark holds the queries of the Nexmark benchmark, written with
// Weir's SDK as a user would write them, after the definitions of Apache
// Beam's Nexmark suite: Q0 (pass-through), Q1 (currency conversion), Q2
// (selection), Q3 (local item suggestion: a join in keyed state), Q4
// (average price per category: winning bids by a join in keyed state with
// timers, then a running mean), Q5 (hot items), Q7 (highest bid), Q8 (new
// users) and Q11 (user sessions).
//
// Each query reads the logical input "events" (model.Event values: bind it
// to nexmark://?events=N for generated events, or to files or a topic that
// weir gen nexmark or weir cp wrote) and writes the logical output
// "results". Queries(name) finds one by name, for weir bench.
//
// Dependency direction: nexmark imports sdk, windowing and io/nexmark/model;
// it never imports the runner nor a connector: a query does not know where
// it runs. cmd/weir and the tests import it.
package nexmark

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/weir-dev/weir/io/nexmark/model"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

// The logical names every query reads and writes.
const (
	Input  = "events"
	Output = "results"
)

// Config configures the queries. The zero value is the configuration of the
// Nexmark benchmark.
type Config struct {
	// Window is the size of the windows of Q5, Q7 and Q8, and the session
	// gap of Q11. Default 10s.
	Window time.Duration
	// Period is how often Q5's sliding windows start. Default 2s.
	Period time.Duration
	// AuctionSkip: Q2 keeps the bids on auctions whose id is a multiple of
	// it. Default 123.
	AuctionSkip int64
	// OutOfOrderness is the watermark delay of the input. The generator's
	// event times never go back within a split, so the default is 0.
	OutOfOrderness time.Duration
}

// WithDefaults returns c with its unset fields at their defaults: the
// parameters every implementation of the queries (Weir's here, Beam's in
// the bench module's beamnexmark) runs with.
func (c Config) WithDefaults() Config {
	c.ensureDefaults()
	return c
}

func (c *Config) ensureDefaults() {
	if c.Window == 0 {
		c.Window = 10 * time.Second
	}
	if c.Period == 0 {
		c.Period = 2 * time.Second
	}
	if c.AuctionSkip == 0 {
		c.AuctionSkip = 123
	}
}

// Query builds the pipeline of one query.
type Query func(Config) (*sdk.Pipeline, error)

// Queries lists the queries by name ("q0", "q1", ...).
var Queries = map[string]Query{
	"q0":  Q0,
	"q1":  Q1,
	"q2":  Q2,
	"q3":  Q3,
	"q4":  Q4,
	"q5":  Q5,
	"q7":  Q7,
	"q8":  Q8,
	"q11": Q11,
}

// Lookup returns the query of a name, case-insensitively.
func Lookup(name string) (Query, error) {
	q, ok := Queries[strings.ToLower(name)]
	if !ok {
		return nil, fmt.Errorf("nexmark: no query %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	return q, nil
}

// Names returns the names of the queries, in numeric order.
func Names() []string { return SortedNames(Queries) }

// SortedNames returns the keys of a set of queries by name ("q0" ... "q11"),
// in numeric order.
func SortedNames[Q any](queries map[string]Q) []string {
	var n []string
	for k := range queries {
		n = append(n, k)
	}
	sort.Slice(n, func(i, j int) bool {
		if len(n[i]) != len(n[j]) {
			return len(n[i]) < len(n[j])
		}
		return n[i] < n[j]
	})
	return n
}

// eventTime is an event's time. An event with nothing in it is
// dead-lettered.
func eventTime(e model.Event) (sdk.Time, error) {
	t, err := e.Time()
	return sdk.Time(t), err
}

// ReadEvents declares the input of the queries.
func ReadEvents(p *sdk.Pipeline, c Config) sdk.PCollection[model.Event] {
	return sdk.Read[model.Event](p, Input, sdk.EventTime(eventTime), sdk.OutOfOrderness(c.OutOfOrderness))
}

// pick emits what get finds in an event, if anything.
type pick[T any] struct{ get func(model.Event) *T }

func (f pick[T]) ProcessElement(_ *sdk.Context, e model.Event, emit sdk.Emitter[T]) error {
	if v := f.get(e); v != nil {
		emit.Emit(*v)
	}
	return nil
}

// Persons, Auctions and Bids select one kind of event.
func Persons(events sdk.PCollection[model.Event]) sdk.PCollection[model.Person] {
	return sdk.ParDo(events, pick[model.Person]{func(e model.Event) *model.Person { return e.Person }}, sdk.Named("Persons"))
}

// Auctions selects the auctions of events.
func Auctions(events sdk.PCollection[model.Event]) sdk.PCollection[model.Auction] {
	return sdk.ParDo(events, pick[model.Auction]{func(e model.Event) *model.Auction { return e.Auction }}, sdk.Named("Auctions"))
}

// Bids selects the bids of events.
func Bids(events sdk.PCollection[model.Event]) sdk.PCollection[model.Bid] {
	return sdk.ParDo(events, pick[model.Bid]{func(e model.Event) *model.Bid { return e.Bid }}, sdk.Named("Bids"))
}

// Q0 passes every event through unchanged: the cost of reading, decoding
// and writing alone.
func Q0(c Config) (*sdk.Pipeline, error) {
	c.ensureDefaults()
	p := sdk.NewPipeline()
	events := ReadEvents(p, c)
	sdk.Write(sdk.Map(events, func(e model.Event) model.Event { return e }, sdk.Named("PassThrough")), Output)
	return p, p.Validate()
}

// Q1's exchange rate, euros per dollar, as a fraction.
const (
	eurosPerDollarNum = 89
	eurosPerDollarDen = 100
)

// Q1 converts the price of every bid from dollars to euros.
func Q1(c Config) (*sdk.Pipeline, error) {
	c.ensureDefaults()
	p := sdk.NewPipeline()
	bids := Bids(ReadEvents(p, c))
	euros := sdk.Map(bids, func(b model.Bid) model.Bid {
		b.Price = b.Price * eurosPerDollarNum / eurosPerDollarDen
		return b
	}, sdk.Named("ToEuros"))
	sdk.Write(euros, Output)
	return p, p.Validate()
}

// AuctionPrice is a row of Q2.
type AuctionPrice struct {
	Auction int64 `json:"auction"`
	Price   int64 `json:"price"`
}

// Q2 selects the bids on some auctions: those whose id is a multiple of
// AuctionSkip.
func Q2(c Config) (*sdk.Pipeline, error) {
	c.ensureDefaults()
	p := sdk.NewPipeline()
	bids := Bids(ReadEvents(p, c))
	skip := c.AuctionSkip
	chosen := sdk.Filter(bids, func(b model.Bid) bool { return b.Auction%skip == 0 }, sdk.Named("SomeAuctions"))
	sdk.Write(sdk.Map(chosen, func(b model.Bid) AuctionPrice {
		return AuctionPrice{Auction: b.Auction, Price: b.Price}
	}, sdk.Named("ToAuctionPrice")), Output)
	return p, p.Validate()
}

// HotItem is a row of Q5: an auction with the most bids of a window.
type HotItem struct {
	WindowStart int64 `json:"windowStart"`
	WindowEnd   int64 `json:"windowEnd"`
	Auction     int64 `json:"auction"`
	Bids        int64 `json:"bids"`
}

// AuctionCount is an auction and its number of bids in a window.
type AuctionCount struct {
	Auction int64
	Bids    int64
}

// MostBids is the accumulator of Q5's last step: the greatest number of
// bids seen, and the auctions that have it.
type MostBids struct {
	Bids     int64
	Auctions []int64
}

type mostBidsFn struct{}

func (mostBidsFn) CreateAccumulator() MostBids { return MostBids{} }

func (f mostBidsFn) AddInput(a MostBids, v AuctionCount) MostBids {
	return f.MergeAccumulators(a, MostBids{Bids: v.Bids, Auctions: []int64{v.Auction}})
}

func (mostBidsFn) MergeAccumulators(a, b MostBids) MostBids {
	switch {
	case b.Bids > a.Bids:
		return b
	case b.Bids < a.Bids:
		return a
	}
	// A new array: a's may be shared with an accumulator kept elsewhere.
	return MostBids{Bids: a.Bids, Auctions: append(slices.Clip(a.Auctions), b.Auctions...)}
}

func (mostBidsFn) ExtractOutput(a MostBids) MostBids {
	slices.Sort(a.Auctions)
	return a
}

// Q5 finds the hot items: in sliding windows of Window every Period, the
// auctions with the most bids (all of them, when several tie).
func Q5(c Config) (*sdk.Pipeline, error) {
	c.ensureDefaults()
	p := sdk.NewPipeline()
	bids := Bids(ReadEvents(p, c))
	windowed := sdk.WindowInto(bids, windowing.Sliding(c.Window, c.Period), sdk.Named("SlidingWindows"))
	counts := sdk.Count(sdk.KeyBy(windowed, func(b model.Bid) int64 { return b.Auction }, sdk.Named("ByAuction")), sdk.Named("CountBids"))
	// One key for the whole window: the comparison is across auctions.
	all := sdk.Map(counts, func(kv sdk.KV[int64, int64]) sdk.KV[int64, AuctionCount] {
		return sdk.KV[int64, AuctionCount]{Value: AuctionCount{Auction: kv.Key, Bids: kv.Value}}
	}, sdk.Named("AllAuctions"))
	most := sdk.CombinePerKey(all, mostBidsFn{}, sdk.Named("MostBids"))
	sdk.Write(sdk.ParDo(most, hotItemRows{}, sdk.Named("ToRows")), Output)
	return p, p.Validate()
}

type hotItemRows struct{}

func (hotItemRows) ProcessElement(ctx *sdk.Context, kv sdk.KV[int64, MostBids], emit sdk.Emitter[HotItem]) error {
	w := ctx.Window()
	for _, a := range kv.Value.Auctions {
		emit.Emit(HotItem{WindowStart: int64(w.Start), WindowEnd: int64(w.End), Auction: a, Bids: kv.Value.Bids})
	}
	return nil
}

// HighestBids is the accumulator of Q7: the highest price seen, and the bids
// at that price.
type HighestBids struct {
	Price int64
	Bids  []model.Bid
}

type highestBidsFn struct{}

func (highestBidsFn) CreateAccumulator() HighestBids { return HighestBids{Price: -1} }

func (highestBidsFn) AddInput(a HighestBids, b model.Bid) HighestBids {
	switch {
	case b.Price < a.Price:
		return a // most bids: nothing to keep
	case b.Price > a.Price:
		return HighestBids{Price: b.Price, Bids: []model.Bid{b}}
	}
	return HighestBids{Price: a.Price, Bids: append(slices.Clip(a.Bids), b)}
}

func (highestBidsFn) MergeAccumulators(a, b HighestBids) HighestBids {
	switch {
	case b.Price > a.Price:
		return b
	case b.Price < a.Price:
		return a
	}
	return HighestBids{Price: a.Price, Bids: append(slices.Clip(a.Bids), b.Bids...)}
}

func (highestBidsFn) ExtractOutput(a HighestBids) []model.Bid { return a.Bids }

// Q7 finds the highest bids of each fixed window of Window: every bid at
// the window's highest price.
func Q7(c Config) (*sdk.Pipeline, error) {
	c.ensureDefaults()
	p := sdk.NewPipeline()
	bids := Bids(ReadEvents(p, c))
	windowed := sdk.WindowInto(bids, windowing.Fixed(c.Window), sdk.Named("FixedWindows"))
	all := sdk.Map(windowed, func(b model.Bid) sdk.KV[int64, model.Bid] {
		return sdk.KV[int64, model.Bid]{Value: b}
	}, sdk.Named("AllBids"))
	highest := sdk.CombinePerKey(all, highestBidsFn{}, sdk.Named("HighestBids"))
	sdk.Write(sdk.FlatMap(highest, func(kv sdk.KV[int64, []model.Bid]) []model.Bid { return kv.Value }, sdk.Named("ToBids")), Output)
	return p, p.Validate()
}

// NewUser is a row of Q8: a person who opened an auction in the fixed
// window in which they registered.
type NewUser struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Reserve int64  `json:"reserve"`
}

// Q8 finds new users: the people who registered and opened auctions in the
// same fixed window of Window, one row per such auction.
func Q8(c Config) (*sdk.Pipeline, error) {
	c.ensureDefaults()
	p := sdk.NewPipeline()
	events := ReadEvents(p, c)
	persons := sdk.WindowInto(Persons(events), windowing.Fixed(c.Window), sdk.Named("PersonWindows"))
	auctions := sdk.WindowInto(Auctions(events), windowing.Fixed(c.Window), sdk.Named("AuctionWindows"))
	byID := sdk.KeyBy(persons, func(p model.Person) int64 { return p.ID }, sdk.Named("ByPerson"))
	bySeller := sdk.KeyBy(auctions, func(a model.Auction) int64 { return a.Seller }, sdk.Named("BySeller"))
	joined := sdk.CoGroupByKey2(byID, bySeller, sdk.Named("Join"))
	sdk.Write(sdk.ParDo(joined, newUserRows{}, sdk.Named("ToRows")), Output)
	return p, p.Validate()
}

type newUserRows struct{}

func (newUserRows) ProcessElement(_ *sdk.Context, kv sdk.KV[int64, sdk.CoGroup2[model.Person, model.Auction]], emit sdk.Emitter[NewUser]) error {
	for _, p := range kv.Value.A {
		for _, a := range kv.Value.B {
			emit.Emit(NewUser{ID: p.ID, Name: p.Name, Reserve: a.Reserve})
		}
	}
	return nil
}

// BidderSession is a row of Q11: a bidder's session and its number of bids.
// SessionEnd is the last bid's time plus the gap.
type BidderSession struct {
	Bidder       int64 `json:"bidder"`
	SessionStart int64 `json:"sessionStart"`
	SessionEnd   int64 `json:"sessionEnd"`
	Bids         int64 `json:"bids"`
}

// Q11 counts the bids of each bidder's sessions: runs of bids with less
// than Window between consecutive ones.
func Q11(c Config) (*sdk.Pipeline, error) {
	c.ensureDefaults()
	p := sdk.NewPipeline()
	bids := Bids(ReadEvents(p, c))
	sessions := sdk.WindowInto(bids, windowing.Sessions(c.Window), sdk.Named("Sessions"))
	counts := sdk.Count(sdk.KeyBy(sessions, func(b model.Bid) int64 { return b.Bidder }, sdk.Named("ByBidder")), sdk.Named("CountBids"))
	sdk.Write(sdk.ParDo(counts, sessionRows{}, sdk.Named("ToRows")), Output)
	return p, p.Validate()
}

type sessionRows struct{}

func (sessionRows) ProcessElement(ctx *sdk.Context, kv sdk.KV[int64, int64], emit sdk.Emitter[BidderSession]) error {
	w := ctx.Window()
	emit.Emit(BidderSession{Bidder: kv.Key, SessionStart: int64(w.Start), SessionEnd: int64(w.End), Bids: kv.Value})
	return nil
}
