package nexmark

import (
	"slices"

	"github.com/weir-dev/weir/io/nexmark/model"
	"github.com/weir-dev/weir/sdk"
)

// LocalItem is a row of Q3: an auction in the chosen category whose seller
// lives in one of the chosen states.
type LocalItem struct {
	Name    string `json:"name"`
	City    string `json:"city"`
	State   string `json:"state"`
	Auction int64  `json:"auction"`
}

// Q3's selection, as in Beam: sellers in Oregon, Idaho or California, items
// in category 10.
var (
	q3States   = []string{"OR", "ID", "CA"}
	q3Category = int64(model.FirstCategoryID)
)

// Seller is what Q3 keeps of a person: whether they live in a chosen state,
// and if so where and who they are.
type Seller struct {
	Local             bool
	Name, City, State string
}

// Q3 suggests local items: it joins the auctions of category 10 with their
// sellers when those live in OR, ID or CA, in the global window. The join
// is held in keyed state per seller: the seller once they have registered,
// and until then (a seller may be named a few events before they
// register) the auctions waiting for them. Every seller's entry stays for
// the run.
func Q3(c Config) (*sdk.Pipeline, error) {
	c.ensureDefaults()
	p := sdk.NewPipeline()
	events := ReadEvents(p, c)
	keyed := sdk.ParDo(events, q3Key{}, sdk.Named("KeyBySeller"))
	fn := &q3Join{
		seller:  sdk.NewValueState[Seller]("seller"),
		waiting: sdk.NewBagState[int64]("waiting"),
	}
	sdk.Write(sdk.ParDo(keyed, fn, sdk.State(fn.seller, fn.waiting), sdk.Named("JoinSellers")), Output)
	return p, p.Validate()
}

// q3Key keys persons by their id and the auctions of the chosen category by
// their seller, and drops the rest.
type q3Key struct{}

func (q3Key) ProcessElement(_ *sdk.Context, e model.Event, emit sdk.Emitter[sdk.KV[int64, model.Event]]) error {
	switch {
	case e.Person != nil:
		emit.Emit(sdk.KV[int64, model.Event]{Key: e.Person.ID, Value: e})
	case e.Auction != nil && e.Auction.Category == q3Category:
		emit.Emit(sdk.KV[int64, model.Event]{Key: e.Auction.Seller, Value: e})
	}
	return nil
}

type q3Join struct {
	seller  sdk.ValueState[Seller]
	waiting sdk.BagState[int64] // auction ids
}

func (f *q3Join) ProcessElement(ctx *sdk.Context, kv sdk.KV[int64, model.Event], emit sdk.Emitter[LocalItem]) error {
	if p := kv.Value.Person; p != nil {
		s := Seller{Local: slices.Contains(q3States, p.State)}
		if s.Local {
			s.Name, s.City, s.State = p.Name, p.City, p.State
		}
		if err := f.seller.Write(ctx, s); err != nil {
			return err
		}
		waiting, err := f.waiting.Read(ctx)
		if err != nil || len(waiting) == 0 {
			return err
		}
		for _, id := range waiting {
			if s.Local {
				emit.Emit(LocalItem{Name: s.Name, City: s.City, State: s.State, Auction: id})
			}
		}
		return f.waiting.Clear(ctx)
	}
	a := kv.Value.Auction
	s, known, err := f.seller.Read(ctx)
	switch {
	case err != nil:
		return err
	case !known:
		return f.waiting.Add(ctx, a.ID)
	case s.Local:
		emit.Emit(LocalItem{Name: s.Name, City: s.City, State: s.State, Auction: a.ID})
	}
	return nil
}
