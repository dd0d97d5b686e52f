package model

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Proportions of the event kinds: of every ProportionDenominator consecutive
// event ids, PersonProportion are persons, then AuctionProportion auctions,
// then BidProportion bids.
const (
	PersonProportion      = 1
	AuctionProportion     = 3
	BidProportion         = 46
	ProportionDenominator = PersonProportion + AuctionProportion + BidProportion
)

// Ids and categories start here, so that queries find matches even in small
// data sets.
const (
	FirstPersonID   = 1000
	FirstAuctionID  = 1000
	FirstCategoryID = 10
	NumCategories   = 5
)

// Hot entities: a hot seller is the first person of the latest batch of
// hotBatch people, a hot bidder the second, a hot auction the first of the
// latest batch of hotBatch auctions.
const hotBatch = 100

// Defaults of Config, filled in by EnsureDefaults. They are those of Beam's
// NexmarkConfiguration.
const (
	DefaultEvents           = 100000
	DefaultRate             = 10000
	DefaultHotAuctionRatio  = 2
	DefaultHotSellersRatio  = 4
	DefaultHotBiddersRatio  = 4
	DefaultInFlightAuctions = 100
	DefaultActivePeople     = 1000
	DefaultAvgPersonBytes   = 200
	DefaultAvgAuctionBytes  = 500
	DefaultAvgBidBytes      = 100
	DefaultIDLead           = 10
)

// DefaultStart is the default Config.Start, Beam's base time:
// 2015-07-15T00:00:00Z.
var DefaultStart = time.Date(2015, time.July, 15, 0, 0, 0, 0, time.UTC)

// Config configures a Generator. The zero value is Beam's default data set
// (100,000 events at 10,000 events/s). A zero field means its default; for
// the fields whose doc says so, a negative value means none.
type Config struct {
	// Seed selects the data set: the same configuration gives the same
	// events (with one Go release on one architecture: prices use
	// math.Pow). Every value is a valid seed, 0 included.
	Seed uint64
	// Events is the number of events. Default 100000.
	Events int64
	// Rate is the number of events per second of event time: event n is at
	// Start + floor(n·1000/Rate) ms. Default 10000.
	Rate float64
	// Start is the event time of the first event, truncated to the
	// millisecond. Default 2015-07-15T00:00:00Z.
	Start time.Time
	// OutOfOrderGroupSize, when above 1, permutes the event ids within
	// each group of that many consecutive positions, as Beam's
	// outOfOrderGroupSize does: event times still follow the positions, so
	// an entity can appear before the events it refers to are generated.
	// Default 1: ids in order.
	OutOfOrderGroupSize int64
	// HotAuctionRatio, HotSellersRatio and HotBiddersRatio make one bid in
	// N go to a random recent auction and the others to the hot auction;
	// one auction in N be sold by a random active person and the others by
	// the hot seller; one bid in N be made by a random active person and
	// the others by the hot bidder. 1 means nothing is hot. Defaults 2, 4
	// and 4.
	HotAuctionRatio, HotSellersRatio, HotBiddersRatio int
	// InFlightAuctions is how many of the latest auctions a bid that is not
	// for the hot auction picks from; it also sets the auctions' lengths,
	// which average the time it takes to open that many auctions. Default
	// 100.
	InFlightAuctions int
	// ActivePeople is how many of the latest people a random seller or
	// bidder is picked from. Default 1000.
	ActivePeople int
	// AvgPersonBytes, AvgAuctionBytes and AvgBidBytes are the average sizes
	// the Extra fields pad records to. Defaults 200, 500 and 100.
	AvgPersonBytes, AvgAuctionBytes, AvgBidBytes int
	// IDLead is how far beyond the latest person or auction a random
	// seller, bidder or auction may be, as in Beam (whose lead is 10): such
	// a reference names an entity that comes later in the sequence.
	// Negative means none: every reference is to an entity with a smaller
	// event id. Default 10.
	IDLead int
}

// EnsureDefaults sets zero fields to their defaults. It is idempotent.
func (c *Config) EnsureDefaults() {
	setInt := func(p *int, d int) {
		if *p == 0 {
			*p = d
		}
	}
	if c.Events == 0 {
		c.Events = DefaultEvents
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.OutOfOrderGroupSize == 0 {
		c.OutOfOrderGroupSize = 1
	}
	setInt(&c.HotAuctionRatio, DefaultHotAuctionRatio)
	setInt(&c.HotSellersRatio, DefaultHotSellersRatio)
	setInt(&c.HotBiddersRatio, DefaultHotBiddersRatio)
	setInt(&c.InFlightAuctions, DefaultInFlightAuctions)
	setInt(&c.ActivePeople, DefaultActivePeople)
	setInt(&c.AvgPersonBytes, DefaultAvgPersonBytes)
	setInt(&c.AvgAuctionBytes, DefaultAvgAuctionBytes)
	setInt(&c.AvgBidBytes, DefaultAvgBidBytes)
	setInt(&c.IDLead, DefaultIDLead)
}

// maxEvents bounds Config.Events so that positions and ids stay exact in
// float64 and their products in int64.
const maxEvents = 1 << 50

// Validate reports every problem of the configuration at once, as one error
// whose message lists them separated by "; ". Zero fields are taken as their
// defaults.
func (c Config) Validate() error {
	c.EnsureDefaults()
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if c.Events < 0 || c.Events > maxEvents {
		bad("Events is %d, want it in [1, 2^50]", c.Events)
	}
	if !(c.Rate > 0) || math.IsInf(c.Rate, 0) {
		bad("Rate is %v, want a positive number of events per second", c.Rate)
	}
	if c.OutOfOrderGroupSize < 0 || c.OutOfOrderGroupSize > 1<<30 {
		bad("OutOfOrderGroupSize is %d, want it in [1, 2^30]", c.OutOfOrderGroupSize)
	}
	for _, r := range []struct {
		name string
		v    int
	}{
		{"HotAuctionRatio", c.HotAuctionRatio}, {"HotSellersRatio", c.HotSellersRatio}, {"HotBiddersRatio", c.HotBiddersRatio},
		{"InFlightAuctions", c.InFlightAuctions}, {"ActivePeople", c.ActivePeople},
		{"AvgPersonBytes", c.AvgPersonBytes}, {"AvgAuctionBytes", c.AvgAuctionBytes}, {"AvgBidBytes", c.AvgBidBytes},
	} {
		if r.v < 0 {
			bad("%s is %d, want at least 1", r.name, r.v)
		}
	}
	if ms := c.Start.UnixMilli(); ms < -(1<<50) || ms > 1<<50 {
		bad("Start is %v, too far from 1970", c.Start)
	}
	if len(p) > 0 {
		return errors.New("model: invalid Config: " + strings.Join(p, "; "))
	}
	return nil
}

// Generator makes the events of a Config. A Generator is not safe for
// concurrent use; make one per goroutine.
type Generator struct {
	c        Config
	start    int64 // ms
	msPerEv  float64
	lead     int64
	seedHash uint64
	oooMul   int64 // multiplier permuting a full out-of-order group
	r        rng
	buf      []byte
	// Tables made once per process, held here to keep sync.Once off the
	// per-event path.
	pow10    []float64
	text     string
	extra    string
	hotURLs  []string
	channels string // channelText
	bidExtra extraSize
}

// NewGenerator returns a generator of the events of c.
func NewGenerator(c Config) (*Generator, error) {
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{
		c:        c,
		start:    c.Start.UnixMilli(),
		msPerEv:  1000 / c.Rate,
		lead:     int64(max(c.IDLead, 0)),
		seedHash: mix64(c.Seed),
	}
	g.pow10, g.text, g.extra = pow10Steps(), textPool(), extraPool()
	g.hotURLs, g.channels = hotChannelURLs(), channelText()
	g.oooMul = coprimeMultiplier(c.OutOfOrderGroupSize)
	g.bidExtra = newExtraSize(8+8+8+8, c.AvgBidBytes)
	return g, nil
}

// Config returns the generator's configuration, with defaults filled in.
func (g *Generator) Config() Config { return g.c }

// Generate returns every event of c, in order. It holds all of them in
// memory: use a Generator for large data sets.
func Generate(c Config) ([]Event, error) {
	g, err := NewGenerator(c)
	if err != nil {
		return nil, err
	}
	out := make([]Event, g.c.Events)
	for n := range out {
		out[n] = g.Event(int64(n))
	}
	return out, nil
}

// Timestamp returns the event time of the event at position n, in ms since
// the epoch.
func (g *Generator) Timestamp(n int64) int64 {
	return g.start + int64(math.Floor(float64(n)*g.msPerEv))
}

// ID returns the event id of the event at position n: n itself, unless
// OutOfOrderGroupSize permutes the ids within groups of positions.
func (g *Generator) ID(n int64) int64 {
	size := g.c.OutOfOrderGroupSize
	if size <= 1 {
		return n
	}
	base := n / size * size
	length, mul := size, g.oooMul
	if rest := g.c.Events - base; rest < size {
		// The last group is shorter: permute within what there is.
		length, mul = rest, coprimeMultiplier(rest)
	}
	return base + (n-base)*mul%length
}

// coprimeMultiplier returns a multiplier coprime with n, from 953 up (Beam
// multiplies by 953), so that i -> i·m mod n permutes [0, n); for n > 2 it
// is not 1 modulo n, so that the permutation moves ids.
func coprimeMultiplier(n int64) int64 {
	m := int64(953)
	for n > 1 && (gcd(m, n) != 1 || n > 2 && m%n == 1) {
		m++
	}
	return m
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Event returns the event at position n, in [0, Events). It depends only on
// the configuration and n.
func (g *Generator) Event(n int64) Event {
	e, _ := g.generate(n, false)
	return e
}

// Boxed returns Event(n) as an interface value holding an Event. The Event
// and its person, auction or bid are one allocation, where converting
// Event(n) to an interface would make two: a source of events hands out
// interface values, and half its time went to allocating them.
func (g *Generator) Boxed(n int64) any {
	_, box := g.generate(n, true)
	return boxEvent(box)
}

// generate makes the event at position n; boxed, in one allocation with
// the Event it returns a pointer to (nil otherwise).
func (g *Generator) generate(n int64, boxed bool) (Event, *Event) {
	id, ts := g.ID(n), g.Timestamp(n)
	g.r.Seed(mix64(g.seedHash^uint64(id)), mix64(uint64(id)+0x6a09e667f3bcc909))
	switch rem := id % ProportionDenominator; {
	case rem < PersonProportion:
		box, p := alloc[Person](boxed)
		g.person(p, id, ts)
		return withBox(box, Event{Person: p})
	case rem < PersonProportion+AuctionProportion:
		box, a := alloc[Auction](boxed)
		g.auction(a, n, id, ts)
		return withBox(box, Event{Auction: a})
	default:
		box, b := alloc[Bid](boxed)
		g.bid(b, id, ts)
		return withBox(box, Event{Bid: b})
	}
}

// alloc allocates a T; boxed, with an Event beside it.
func alloc[T any](boxed bool) (*Event, *T) {
	if !boxed {
		return nil, new(T)
	}
	x := new(struct {
		e Event
		v T
	})
	return &x.e, &x.v
}

// withBox stores e in box, if there is one, and returns both.
func withBox(box *Event, e Event) (Event, *Event) {
	if box != nil {
		*box = e
	}
	return e, box
}

// eface is the layout of an interface value of an empty interface type.
type eface struct {
	typ, data unsafe.Pointer
}

// eventType is the type word of an interface holding an Event.
var eventType = func() unsafe.Pointer {
	var x any = Event{}
	return (*eface)(unsafe.Pointer(&x)).typ
}()

// boxEvent returns an interface value holding *e, pointing to e, as
// converting *e to an interface would point to a copy: Event is not
// pointer-shaped, so an interface holding one points to it. Nothing may
// change *e after.
func boxEvent(e *Event) any {
	var x any
	f := (*eface)(unsafe.Pointer(&x))
	f.typ, f.data = eventType, unsafe.Pointer(e)
	return x
}

// LastBase0PersonID is the 0-based id of the latest person at or before
// event id (0-based): event 0 is a person, so there always is one.
func LastBase0PersonID(id int64) int64 {
	epoch, offset := id/ProportionDenominator, id%ProportionDenominator
	if offset >= PersonProportion {
		offset = PersonProportion - 1
	}
	return epoch*PersonProportion + offset
}

// LastBase0AuctionID is the 0-based id of the latest auction generated at or
// before event id (0-based); -1 before the first auction.
func LastBase0AuctionID(id int64) int64 {
	epoch, offset := id/ProportionDenominator, id%ProportionDenominator
	switch {
	case offset < PersonProportion:
		epoch--
		offset = AuctionProportion - 1
	case offset >= PersonProportion+AuctionProportion:
		offset = AuctionProportion - 1
	default:
		offset -= PersonProportion
	}
	return epoch*AuctionProportion + offset
}

// randomPerson picks a 0-based person id among the latest ActivePeople, or
// up to IDLead beyond the latest.
func (g *Generator) randomPerson(id int64) int64 {
	num := LastBase0PersonID(id) + 1
	active := min(num, int64(g.c.ActivePeople))
	return num - active + g.r.Int64N(active+g.lead)
}

// randomAuction picks a 0-based auction id among the latest
// InFlightAuctions, or up to IDLead beyond the latest.
func (g *Generator) randomAuction(id int64) int64 {
	last := LastBase0AuctionID(id)
	lo := max(last-int64(g.c.InFlightAuctions), 0)
	return lo + g.r.Int64N(last-lo+1+g.lead)
}

var (
	usStates   = []string{"AZ", "CA", "ID", "OR", "WA", "WY"}
	usCities   = []string{"Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland", "Bend", "Redmond", "Seattle", "Kent", "Cheyenne"}
	firstNames = []string{"Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"}
	lastNames  = []string{"Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"}
)

func (g *Generator) person(p *Person, id, ts int64) {
	r := &g.r
	*p = Person{ID: LastBase0PersonID(id) + FirstPersonID, DateTime: ts}
	p.Name = firstNames[r.IntN(len(firstNames))] + " " + lastNames[r.IntN(len(lastNames))]
	p.EmailAddress = g.nextString(7) + "@" + g.nextString(5) + ".com"
	g.buf = g.buf[:0]
	for i := range 4 {
		if i > 0 {
			g.buf = append(g.buf, ' ')
		}
		v := r.IntN(10000)
		g.buf = append(g.buf, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
	}
	p.CreditCard = string(g.buf)
	p.City = usCities[r.IntN(len(usCities))]
	p.State = usStates[r.IntN(len(usStates))]
	size := 8 + len(p.Name) + len(p.EmailAddress) + len(p.CreditCard) + len(p.City) + len(p.State)
	p.Extra = g.nextExtra(newExtraSize(size, g.c.AvgPersonBytes))
}

func (g *Generator) auction(a *Auction, n, id, ts int64) {
	r := &g.r
	*a = Auction{ID: LastBase0AuctionID(id) + FirstAuctionID, DateTime: ts}
	if r.IntN(g.c.HotSellersRatio) > 0 {
		a.Seller = LastBase0PersonID(id) / hotBatch * hotBatch
	} else {
		a.Seller = g.randomPerson(id)
	}
	a.Seller += FirstPersonID
	a.Category = FirstCategoryID + int64(r.IntN(NumCategories))
	a.InitialBid = g.nextPrice()
	// Lengths average the time until InFlightAuctions more auctions have
	// opened, so that about that many are open at any time.
	ahead := int64(g.c.InFlightAuctions) * ProportionDenominator / AuctionProportion
	horizon := g.Timestamp(n+ahead) - ts
	a.Expires = ts + 1 + r.Int64N(max(2*horizon, 1))
	a.ItemName = g.nextString(20)
	a.Description = g.nextString(100)
	a.Reserve = a.InitialBid + g.nextPrice()
	size := 8 + len(a.ItemName) + len(a.Description) + 8 + 8 + 8 + 8 + 8
	a.Extra = g.nextExtra(newExtraSize(size, g.c.AvgAuctionBytes))
}

func (g *Generator) bid(b *Bid, id, ts int64) {
	r := &g.r
	*b = Bid{DateTime: ts}
	if r.IntN(g.c.HotAuctionRatio) > 0 {
		b.Auction = LastBase0AuctionID(id) / hotBatch * hotBatch
	} else {
		b.Auction = g.randomAuction(id)
	}
	b.Auction += FirstAuctionID
	if r.IntN(g.c.HotBiddersRatio) > 0 {
		// The second person of the batch, so that hot bidders are not
		// hot sellers; without a lead, the first while there is no
		// second yet.
		last := LastBase0PersonID(id)
		b.Bidder = min(last/hotBatch*hotBatch+1, last+g.lead)
	} else {
		b.Bidder = g.randomPerson(id)
	}
	b.Bidder += FirstPersonID
	b.Price = g.nextPrice()
	if r.IntN(hotChannelsRatio) > 0 {
		i := r.IntN(len(hotChannels))
		b.Channel, b.URL = hotChannels[i], g.hotURLs[i]
	} else {
		b.Channel, b.URL = ordinaryChannel(g.channels, r.IntN(numChannels))
	}
	b.Extra = g.nextExtra(g.bidExtra)
}

// nextPrice is a price in cents, log-uniform between $1 and $1,000,000:
// 100·10^(6u) for a uniform u. 10^x is taken from a table at steps of
// 1/1024 and a second-order Taylor term for the rest (relative error under
// 1e-8): math.Pow was a third of a bid's cost.
func (g *Generator) nextPrice() int64 {
	x := g.r.Float64() * 6 * priceSteps
	i := int(x)
	d := (x - float64(i)) * (math.Ln10 / priceSteps)
	return int64(math.Round(g.pow10[i] * (1 + d + d*d/2) * 100))
}

const priceSteps = 1024

// pow10Steps holds 10^(i/priceSteps) for i in [0, 6·priceSteps].
var pow10Steps = sync.OnceValue(func() []float64 {
	t := make([]float64, 6*priceSteps+1)
	for i := range t {
		t[i] = math.Pow(10, float64(i)/priceSteps)
	}
	return t
})

// nextString is a string of 3 to maxLength-1 characters: lowercase letters
// with about one space in 13, trimmed. Like an extra, it is cut from a
// fixed pool of such text at a random offset.
func (g *Generator) nextString(maxLength int) string {
	n := 3 + g.r.IntN(maxLength-3)
	pool := g.text
	n = min(n, len(pool))
	off := g.r.IntN(len(pool) - n + 1)
	return strings.TrimSpace(pool[off : off+n])
}

// textPool is the text names and descriptions are cut from: 64 KiB of
// lowercase letters with about one space in 13, drawn once from a fixed
// seed.
var textPool = sync.OnceValue(func() string {
	r := rand.New(rand.NewPCG(0x7e47, 0x5eed))
	b := make([]byte, 64<<10)
	for i := range b {
		// 26 of 338 values are a space, the others 12 each per letter.
		if x := r.IntN(13 * 26); x < 26 {
			b[i] = ' '
		} else {
			b[i] = byte('a' + x%26)
		}
	}
	return string(b)
})

// extraSize is how long an extra is: min bytes plus a draw in [0, spread)
// when spread is positive; none at all for a record already above the
// average.
type extraSize struct {
	min, spread int
	none        bool
}

// newExtraSize is the extraSize that pads a record of currentSize bytes
// towards an average of avg: avg-currentSize bytes, give or take 20%.
// Bids all have the same size, so theirs is worked out once per generator.
func newExtraSize(currentSize, avg int) extraSize {
	if currentSize > avg {
		return extraSize{none: true}
	}
	want := avg - currentSize
	delta := int(math.Round(float64(want) * 0.2))
	return extraSize{min: want - delta, spread: 2 * delta}
}

// nextExtra is an extra of size s: random lowercase letters.
//
// The padding is a slice of a fixed pool of random letters at a random
// offset: it is filler that no query reads, and drawing every byte of it
// afresh (about 70 per bid) was a third of the generator's time and an
// allocation per event. Which bytes a record gets still depends only on
// the seed and the event.
func (g *Generator) nextExtra(s extraSize) string {
	if s.none {
		return ""
	}
	size := s.min
	if s.spread > 0 {
		size += g.r.IntN(s.spread)
	}
	pool := g.extra
	size = min(size, len(pool))
	off := g.r.IntN(len(pool) - size + 1)
	return pool[off : off+size]
}

// extraPool is the letters extras are cut from: 64 KiB, enough for any
// average record size a configuration is likely to ask for, drawn once from
// a fixed seed.
var extraPool = sync.OnceValue(func() string {
	r := rand.New(rand.NewPCG(0x5eed, 0xe47a))
	b := make([]byte, 64<<10)
	for i := range b {
		b[i] = byte('a' + r.IntN(26))
	}
	return string(b)
})

// Channels of bids: one bid in hotChannelsRatio comes through one of
// numChannels ordinary channels, the others through a hot one.
const (
	hotChannelsRatio = 2
	numChannels      = 10000
)

var hotChannels = []string{"Google", "Facebook", "Baidu", "Apple"}

// hotChannelURLs are the URLs of hotChannels, made once.
var hotChannelURLs = sync.OnceValue(func() []string {
	urls := make([]string, len(hotChannels))
	for i, h := range hotChannels {
		urls[i] = "https://www.nexmark.com/" + strings.ToLower(h) + "/item.htm?query=1"
	}
	return urls
})

// Ordinary channel i is named channelName+i and has the URL channelURL+i.
const (
	channelName = "channel-"
	channelURL  = "https://www.nexmark.com/item.htm?query=1&channel_id="
	// channelStride is the room for one channel's name and URL, numbers
	// of up to 4 digits included, in channelText.
	channelStride = len(channelName) + len(channelURL) + 2*4
)

// Channel numbers have at most 4 digits: this does not compile otherwise.
const _ = uint(10000 - numChannels)

// channelText holds the name and then the URL of every ordinary channel,
// channel i's from byte i·channelStride, made once.
var channelText = sync.OnceValue(func() string {
	b := make([]byte, 0, numChannels*channelStride)
	for i := range numChannels {
		at := len(b)
		b = strconv.AppendInt(append(b, channelName...), int64(i), 10)
		b = strconv.AppendInt(append(b, channelURL...), int64(i), 10)
		for len(b) < at+channelStride {
			b = append(b, ' ')
		}
	}
	return string(b)
})

// ordinaryChannel returns the name and URL of ordinary channel i, sliced
// out of text, the channelText, at offsets it works out: bids pick one of
// the numChannels channels at random, and a table of them does not stay in
// cache.
func ordinaryChannel(text string, i int) (name, url string) {
	digits := 4
	switch {
	case i < 10:
		digits = 1
	case i < 100:
		digits = 2
	case i < 1000:
		digits = 3
	}
	at := i * channelStride
	name = text[at : at+len(channelName)+digits]
	at += len(name)
	return name, text[at : at+len(channelURL)+digits]
}

// mix64 is the SplitMix64 finalizer.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}
