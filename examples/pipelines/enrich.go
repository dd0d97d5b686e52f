package pipelines

import (
	"time"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/sdk"
)

// EnrichConfig configures the enrich pipeline.
type EnrichConfig struct {
	// OutOfOrderness is the watermark delay of both inputs. Default 5m.
	OutOfOrderness time.Duration
	// HistoryRetention is how long a superseded profile version is kept
	// after the watermark passes its successor: late views older than that
	// see the oldest version kept. Default 7 days.
	HistoryRetention time.Duration
}

// EnrichedPageView is a page view with the viewer's profile as of the view.
// The view's fields are embedded, so they sit at the top level of the JSON
// record and the Parquet schema, next to viewerProfile.
type EnrichedPageView struct {
	events.PageViewEvent
	// ViewerProfile is the viewer's profile as of the view's event time:
	// the latest edit at or before it; nil if there was none.
	ViewerProfile *events.Profile `json:"viewerProfile"`
}

// MemberEvent is a page view or a profile edit, keyed by the member it is
// about (the viewer, or the profile's owner).
type MemberEvent struct {
	View *events.PageViewEvent    `json:"view,omitempty"`
	Edit *events.ProfileEditEvent `json:"edit,omitempty"`
}

// Enrich joins each page view with the viewer's profile as of the view's
// event time (a stream-table join in event time). Profile history lives in
// keyed state; each view waits until the watermark of both inputs passes its
// timestamp, so the answer does not depend on arrival order. It reads
// "pageviews" and "profiles" and writes "enriched".
func Enrich(c EnrichConfig) (*sdk.Pipeline, error) {
	if c.OutOfOrderness == 0 {
		c.OutOfOrderness = 5 * time.Minute
	}
	if c.HistoryRetention == 0 {
		c.HistoryRetention = 7 * 24 * time.Hour
	}
	p := sdk.NewPipeline()
	views := sdk.Read[events.PageViewEvent](p, "pageviews", sdk.EventTime(viewTime), sdk.OutOfOrderness(c.OutOfOrderness))
	edits := sdk.Read[events.ProfileEditEvent](p, "profiles", sdk.EventTime(editTime), sdk.OutOfOrderness(c.OutOfOrderness))
	byViewer := sdk.Map(views, func(v events.PageViewEvent) sdk.KV[int64, MemberEvent] {
		return sdk.KV[int64, MemberEvent]{Key: v.ViewerID, Value: MemberEvent{View: &v}}
	}, sdk.Named("KeyViewsByViewer"))
	byOwner := sdk.Map(edits, func(e events.ProfileEditEvent) sdk.KV[int64, MemberEvent] {
		return sdk.KV[int64, MemberEvent]{Key: e.ProfileID, Value: MemberEvent{Edit: &e}}
	}, sdk.Named("KeyEditsByOwner"))
	fn := &enrichFn{
		history:   sdk.NewMapState[int64, events.Profile]("history"),
		waiting:   sdk.NewBagState[events.PageViewEvent]("waiting"),
		next:      sdk.NewValueState[int64]("next"),
		ready:     sdk.EventTimer("ready"),
		retention: sdk.Time(c.HistoryRetention / time.Millisecond),
	}
	out := sdk.ParDo(sdk.Flatten(byViewer, byOwner), fn,
		sdk.State(fn.history, fn.waiting, fn.next, fn.ready), sdk.Named("JoinProfileAsOfView"))
	sdk.Write(out, "enriched")
	return p, p.Validate()
}

type enrichFn struct {
	history   sdk.MapState[int64, events.Profile] // edit time -> profile
	waiting   sdk.BagState[events.PageViewEvent]
	next      sdk.ValueState[int64] // time of the ready timer
	ready     sdk.TimerDecl
	retention sdk.Time
}

func (f *enrichFn) ProcessElement(ctx *sdk.Context, kv sdk.KV[int64, MemberEvent], emit sdk.Emitter[EnrichedPageView]) error {
	if e := kv.Value.Edit; e != nil {
		return f.history.Put(ctx, e.Timestamp, e.Profile)
	}
	v := kv.Value.View
	if err := f.waiting.Add(ctx, *v); err != nil {
		return err
	}
	// One timer per member, at the earliest waiting view: setting it again
	// moves it, so move it only earlier.
	next, set, err := f.next.Read(ctx)
	if err != nil {
		return err
	}
	if set && next <= v.Timestamp {
		return nil
	}
	if err := f.next.Write(ctx, v.Timestamp); err != nil {
		return err
	}
	return f.ready.Set(ctx, sdk.Time(v.Timestamp))
}

// OnTimer releases every waiting view the watermark has passed, joined with
// the latest profile at or before it, and sets the timer for the rest.
func (f *enrichFn) OnTimer(ctx *sdk.Context, _ sdk.Timer, emit sdk.Emitter[EnrichedPageView]) error {
	wm := ctx.Watermark()
	vs, err := f.waiting.Read(ctx)
	if err != nil {
		return err
	}
	type version struct {
		at int64
		p  events.Profile
	}
	var history []version
	if err := f.history.Range(ctx, func(at int64, p events.Profile) bool {
		history = append(history, version{at, p})
		return true
	}); err != nil {
		return err
	}
	if err := f.waiting.Clear(ctx); err != nil {
		return err
	}
	next := sdk.Time(0)
	hasNext := false
	for _, v := range vs {
		if sdk.Time(v.Timestamp) >= wm {
			if err := f.waiting.Add(ctx, v); err != nil {
				return err
			}
			if !hasNext || sdk.Time(v.Timestamp) < next {
				next, hasNext = sdk.Time(v.Timestamp), true
			}
			continue
		}
		out := EnrichedPageView{PageViewEvent: v}
		for i := len(history) - 1; i >= 0; i-- {
			if history[i].at <= v.Timestamp {
				p := history[i].p
				out.ViewerProfile = &p
				break
			}
		}
		emit.Emit(out)
	}
	if hasNext {
		if err := f.next.Write(ctx, int64(next)); err != nil {
			return err
		}
		if err := f.ready.Set(ctx, next); err != nil {
			return err
		}
	} else if err := f.next.Clear(ctx); err != nil {
		return err
	}
	// Prune versions superseded long enough ago: keep the newest version at
	// or before wm-retention, and everything after it.
	cut := int64(wm - f.retention)
	for i := len(history) - 2; i >= 0; i-- {
		if history[i+1].at <= cut {
			for _, old := range history[:i+1] {
				if err := f.history.Delete(ctx, old.at); err != nil {
					return err
				}
			}
			break
		}
	}
	return nil
}
