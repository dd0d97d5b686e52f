// Package model is the data of the Nexmark benchmark — an online auction
// site's people, auctions and bids — and a deterministic generator of it that
// follows the definition of Apache Beam's Nexmark suite: persons, auctions
// and bids in the proportion 1:3:46 by event id, hot sellers, hot auctions
// and hot bidders, log-uniform prices, event times spaced by a rate, and an
// optional out-of-order grouping of event ids.
//
// Every event is a pure function of the configuration and its position in
// the sequence, so any range or stride of positions can be generated on its
// own (the nexmark:// connector's splits do that) and the whole sequence is
// the same however it is divided.
//
// Times are milliseconds since the Unix epoch, as in Beam's model; prices
// are in cents.
//
// Dependency direction: model imports only the standard library. The
// nexmark:// connector (io/nexmark), the Nexmark queries
// (examples/nexmark) and cmd/weir import it.
package model

import "errors"

// Person is a new user of the auction site.
type Person struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	EmailAddress string `json:"emailAddress"`
	CreditCard   string `json:"creditCard"`
	City         string `json:"city"`
	State        string `json:"state"`
	// DateTime is when the person registered, in ms since the epoch.
	DateTime int64 `json:"dateTime"`
	// Extra pads the record to its configured average size.
	Extra string `json:"extra"`
}

// Auction is an item put up for auction by a seller (a Person).
type Auction struct {
	ID          int64  `json:"id"`
	ItemName    string `json:"itemName"`
	Description string `json:"description"`
	// InitialBid and Reserve are prices in cents; Reserve >= InitialBid.
	InitialBid int64 `json:"initialBid"`
	Reserve    int64 `json:"reserve"`
	// DateTime is when the auction opened and Expires when it closes
	// (exclusive), in ms since the epoch.
	DateTime int64 `json:"dateTime"`
	Expires  int64 `json:"expires"`
	// Seller is the ID of the Person selling the item.
	Seller int64 `json:"seller"`
	// Category is in [FirstCategoryID, FirstCategoryID+NumCategories).
	Category int64  `json:"category"`
	Extra    string `json:"extra"`
}

// Bid is a bid by a Person (Bidder) on an Auction.
type Bid struct {
	Auction int64 `json:"auction"`
	Bidder  int64 `json:"bidder"`
	// Price is in cents.
	Price   int64  `json:"price"`
	Channel string `json:"channel"`
	URL     string `json:"url"`
	// DateTime is when the bid was made, in ms since the epoch.
	DateTime int64  `json:"dateTime"`
	Extra    string `json:"extra"`
}

// Event is one event of the stream: exactly one of its fields is set.
type Event struct {
	Person  *Person  `json:"person,omitempty"`
	Auction *Auction `json:"auction,omitempty"`
	Bid     *Bid     `json:"bid,omitempty"`
}

// Kind says which field of an Event is set.
type Kind uint8

// The kinds of event.
const (
	KindNone Kind = iota // no field set: not a valid event
	KindPerson
	KindAuction
	KindBid
)

func (k Kind) String() string {
	switch k {
	case KindPerson:
		return "person"
	case KindAuction:
		return "auction"
	case KindBid:
		return "bid"
	}
	return "none"
}

// Kind returns which field is set, or KindNone when none is (or more than
// one is).
func (e Event) Kind() Kind {
	switch {
	case e.Person != nil && e.Auction == nil && e.Bid == nil:
		return KindPerson
	case e.Auction != nil && e.Person == nil && e.Bid == nil:
		return KindAuction
	case e.Bid != nil && e.Person == nil && e.Auction == nil:
		return KindBid
	}
	return KindNone
}

// ErrNoEvent is returned by Event.Time for an Event with no field (or more
// than one) set.
var ErrNoEvent = errors.New("model: event has no person, auction or bid (or more than one)")

// Time returns the event's time in ms since the epoch: the DateTime of the
// person, auction or bid it carries.
func (e Event) Time() (int64, error) {
	switch e.Kind() {
	case KindPerson:
		return e.Person.DateTime, nil
	case KindAuction:
		return e.Auction.DateTime, nil
	case KindBid:
		return e.Bid.DateTime, nil
	}
	return 0, ErrNoEvent
}
