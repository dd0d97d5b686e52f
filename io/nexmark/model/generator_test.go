package model

import (
	"encoding/json"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

func generate(t *testing.T, c Config) []Event {
	t.Helper()
	evs, err := Generate(c)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// The kinds come in the proportion 1:3:46 by event id, and persons and
// auctions are numbered consecutively from their first ids.
func TestProportionsAndIDs(t *testing.T) {
	for _, group := range []int64{1, 7, 1000} {
		c := Config{Events: 50 * 400, OutOfOrderGroupSize: group}
		evs := generate(t, c)
		g, _ := NewGenerator(c)
		var counts [4]int
		persons, auctions := map[int64]bool{}, map[int64]bool{}
		for n, e := range evs {
			k := e.Kind()
			counts[k]++
			id := g.ID(int64(n))
			want := KindBid
			switch {
			case id%50 == 0:
				want = KindPerson
			case id%50 < 4:
				want = KindAuction
			}
			if k != want {
				t.Fatalf("group %d: event %d (id %d) is a %s, want a %s", group, n, id, k, want)
			}
			switch k {
			case KindPerson:
				persons[e.Person.ID] = true
			case KindAuction:
				auctions[e.Auction.ID] = true
			}
		}
		if counts[KindPerson] != 400 || counts[KindAuction] != 1200 || counts[KindBid] != 18400 || counts[KindNone] != 0 {
			t.Errorf("group %d: counts %v, want 400 persons, 1200 auctions, 18400 bids", group, counts)
		}
		for i := int64(0); i < 400; i++ {
			if !persons[FirstPersonID+i] {
				t.Fatalf("group %d: no person %d", group, FirstPersonID+i)
			}
		}
		for i := int64(0); i < 1200; i++ {
			if !auctions[FirstAuctionID+i] {
				t.Fatalf("group %d: no auction %d", group, FirstAuctionID+i)
			}
		}
	}
}

// Out-of-order groups permute the ids within each group, the last (short)
// one included, and leave the event times in order.
func TestOutOfOrderGroups(t *testing.T) {
	for _, c := range []Config{{Events: 1000, OutOfOrderGroupSize: 953 * 2}, {Events: 10000, OutOfOrderGroupSize: 953}, {Events: 1003, OutOfOrderGroupSize: 10}} {
		g, err := NewGenerator(c)
		if err != nil {
			t.Fatal(err)
		}
		seen := make([]bool, c.Events)
		moved := 0
		for n := int64(0); n < c.Events; n++ {
			id := g.ID(n)
			base := n / c.OutOfOrderGroupSize * c.OutOfOrderGroupSize
			if id < base || id >= min(base+c.OutOfOrderGroupSize, c.Events) {
				t.Fatalf("%+v: position %d has id %d, outside its group", c, n, id)
			}
			if seen[id] {
				t.Fatalf("%+v: id %d twice", c, id)
			}
			seen[id] = true
			if id != n {
				moved++
			}
			if n > 0 && g.Timestamp(n) < g.Timestamp(n-1) {
				t.Fatalf("%+v: event times go back at %d", c, n)
			}
		}
		if moved < int(c.Events)/2 {
			t.Errorf("%+v: only %d of %d ids moved", c, moved, c.Events)
		}
	}
}

func TestDeterministic(t *testing.T) {
	c := Config{Seed: 42, Events: 3000, OutOfOrderGroupSize: 100}
	a, b := generate(t, c), generate(t, c)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("two runs with one seed differ")
	}
	// Any event can be made alone, in any order.
	g, _ := NewGenerator(c)
	for n := len(a) - 1; n >= 0; n -= 7 {
		if e := g.Event(int64(n)); !reflect.DeepEqual(e, a[n]) {
			t.Fatalf("event %d made alone differs: %+v, want %+v", n, e, a[n])
		}
	}
	c.Seed = 43
	other := generate(t, c)
	same := 0
	for i := range a {
		if reflect.DeepEqual(a[i], other[i]) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("seeds 42 and 43 give %d identical events", same)
	}
}

func TestEventTimesFromRate(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		rate float64
		n    int64
		want time.Duration
	}{
		{1000, 0, 0}, {1000, 1, time.Millisecond}, {1000, 999, 999 * time.Millisecond},
		{10000, 9, 0}, {10000, 10, time.Millisecond}, {10000, 123456, 12345 * time.Millisecond},
		{3, 1, 333 * time.Millisecond}, {3, 3, time.Second}, {0.5, 1, 2 * time.Second},
	} {
		evs := generate(t, Config{Events: tc.n + 1, Rate: tc.rate, Start: start})
		got, err := evs[tc.n].Time()
		if err != nil {
			t.Fatal(err)
		}
		if want := start.Add(tc.want).UnixMilli(); got != want {
			t.Errorf("rate %v: event %d at %d, want %d (start + %v)", tc.rate, tc.n, got, want, tc.want)
		}
	}
	// The default: Beam's base time and 10,000 events per second.
	evs := generate(t, Config{Events: 20001})
	first, _ := evs[0].Time()
	last, _ := evs[20000].Time()
	if first != DefaultStart.UnixMilli() || last-first != 2000 {
		t.Errorf("default times %d..%d, want %d and 2s later", first, last, DefaultStart.UnixMilli())
	}
}

// Without a lead, every seller, bidder and auction a record names has a
// smaller event id; with the default lead, at most 10 beyond the latest.
func TestReferences(t *testing.T) {
	for _, tc := range []struct {
		lead, want int64
	}{{-1, 0}, {0, 10}, {25, 25}} {
		c := Config{Seed: 3, Events: 30000, IDLead: int(tc.lead)}
		g, _ := NewGenerator(c)
		lastPerson, lastAuction := int64(-1), int64(-1)
		beyond := int64(math.MinInt64)
		check := func(n int64, what string, ref, last int64) {
			if ref < FirstPersonID || ref < FirstAuctionID {
				t.Fatalf("lead %d: event %d: %s %d is before the first id", tc.lead, n, what, ref)
			}
			beyond = max(beyond, ref-last)
			if ref-last > tc.want {
				t.Fatalf("lead %d: event %d: %s %d, but the latest is %d", tc.lead, n, what, ref, last)
			}
		}
		for n := int64(0); n < c.Events; n++ {
			e := g.Event(n)
			switch e.Kind() {
			case KindPerson:
				lastPerson = e.Person.ID
			case KindAuction:
				check(n, "seller", e.Auction.Seller, lastPerson)
				lastAuction = e.Auction.ID
			case KindBid:
				check(n, "bidder", e.Bid.Bidder, lastPerson)
				check(n, "auction", e.Bid.Auction, lastAuction)
			}
		}
		if tc.want > 0 && beyond < tc.want/2 {
			t.Errorf("lead %d: references reach at most %d beyond the latest, want up to %d", tc.lead, beyond, tc.want)
		}
	}
}

// Hot auctions, sellers and bidders get the share the ratios give them, and
// the values lie in their ranges.
func TestHotEntitiesAndValues(t *testing.T) {
	c := Config{Seed: 9, Events: 100000}
	g, _ := NewGenerator(c)
	var bids, hotAuction, hotBidder, auctions, hotSeller int
	var extra, extraN float64
	cats := map[int64]int{}
	for n := int64(0); n < c.Events; n++ {
		e := g.Event(n)
		id := g.ID(n)
		switch e.Kind() {
		case KindAuction:
			a := e.Auction
			auctions++
			if a.Seller == LastBase0PersonID(id)/100*100+FirstPersonID {
				hotSeller++
			}
			cats[a.Category]++
			if a.Reserve < a.InitialBid || a.InitialBid < 100 || a.Reserve > 2e8 {
				t.Fatalf("auction %+v: bad prices", a)
			}
			if a.Expires <= a.DateTime {
				t.Fatalf("auction %+v expires before it opens", a)
			}
			if a.ItemName == "" || strings.TrimSpace(a.ItemName) != a.ItemName {
				t.Fatalf("auction %+v: bad item name", a)
			}
		case KindBid:
			b := e.Bid
			bids++
			if b.Auction == LastBase0AuctionID(id)/100*100+FirstAuctionID {
				hotAuction++
			}
			if b.Bidder == LastBase0PersonID(id)/100*100+1+FirstPersonID {
				hotBidder++
			}
			if b.Price < 100 || b.Price > 1e8 {
				t.Fatalf("bid %+v: price out of range", b)
			}
			if b.Channel == "" || !strings.HasPrefix(b.URL, "https://") {
				t.Fatalf("bid %+v: no channel", b)
			}
			extra += float64(len(b.Extra))
			extraN++
		case KindPerson:
			p := e.Person
			if !strings.Contains(p.EmailAddress, "@") || len(p.CreditCard) != 19 || p.State == "" {
				t.Fatalf("person %+v: bad fields", p)
			}
		}
	}
	share := func(name string, got, of int, lo, hi float64) {
		if f := float64(got) / float64(of); f < lo || f > hi {
			t.Errorf("%s: %.3f, want it in [%v, %v]", name, f, lo, hi)
		}
	}
	// A random pick may hit the hot entity too, so the shares are a little
	// above 1-1/ratio.
	share("bids on the hot auction", hotAuction, bids, 0.49, 0.53)
	share("bids by the hot bidder", hotBidder, bids, 0.74, 0.77)
	share("auctions by the hot seller", hotSeller, auctions, 0.73, 0.78)
	if len(cats) != NumCategories {
		t.Errorf("categories %v, want %d of them", cats, NumCategories)
	}
	// Bids pad to 100 bytes: 32 of fields, 68 of Extra on average.
	if m := extra / extraN; math.Abs(m-68) > 1 {
		t.Errorf("bids' Extra is %.1f bytes on average, want about 68", m)
	}
}

func TestValidate(t *testing.T) {
	err := Config{Events: -1, Rate: -2, HotAuctionRatio: -1}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"model: invalid Config", "Events is -1", "Rate is -2", "HotAuctionRatio is -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config: %v", err)
	}
}

func BenchmarkEvent(b *testing.B) {
	g, _ := NewGenerator(Config{Events: math.MaxInt32})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_ = g.Event(int64(i))
	}
}

// Boxed's interface values behave as ones made by converting Event(n):
// they hold what Event(n) holds when made and keep it (through a GC and
// the making of later events), assert, compare and reflect as Events, and
// cost one allocation for a bid, as Event(n) does.
func TestBoxed(t *testing.T) {
	c := Config{Events: 2000, Seed: 7}
	g, err := NewGenerator(c)
	if err != nil {
		t.Fatal(err)
	}
	boxed := make([]any, c.Events)
	made := make([]string, c.Events)
	for n := range boxed {
		boxed[n] = g.Boxed(int64(n))
		b, err := json.Marshal(g.Event(int64(n)))
		if err != nil {
			t.Fatal(err)
		}
		made[n] = string(b)
	}
	runtime.GC()
	kinds := map[Kind]int{}
	for n, v := range boxed {
		e, ok := v.(Event)
		if !ok {
			t.Fatalf("event %d: boxed as %T, want Event", n, v)
		}
		if b, _ := json.Marshal(e); string(b) != made[n] {
			t.Fatalf("event %d: boxed %s, want %s", n, b, made[n])
		}
		var converted any = e
		if v != converted || reflect.TypeOf(v) != reflect.TypeFor[Event]() {
			t.Fatalf("event %d: the box does not compare or reflect as a converted Event", n)
		}
		kinds[e.Kind()]++
	}
	if len(kinds) != 3 {
		t.Fatalf("kinds %v, want persons, auctions and bids", kinds)
	}
	bid := int64(PersonProportion + AuctionProportion) // the first bid
	if a, b := testing.AllocsPerRun(100, func() { g.Boxed(bid) }), testing.AllocsPerRun(100, func() { g.Event(bid) }); a != 1 || b != 1 {
		t.Errorf("a bid costs %v allocations boxed and %v as an Event, want 1 and 1", a, b)
	}
}
