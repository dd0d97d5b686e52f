package pipelines

import (
	"time"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/sdk"
)

// EnrichFromTable joins each page view with the viewer's current profile,
// looked up in a table (sdk.NewTable) bound as "profiles": Samza's side
// inputs. Bound to a snapshot of profiles computed offline (the latest
// edit of each member, as Parquet or JSON Lines) or to a compacted topic
// of edits, the table is loaded before the views are read and, from a
// topic, kept current. Unlike Enrich, the profile is the one known when the
// view is processed, not the one as of the view's event time: a backfill
// joins with the snapshot. It reads "pageviews" and writes "enriched".
func EnrichFromTable(outOfOrderness time.Duration) *sdk.Pipeline {
	if outOfOrderness == 0 {
		outOfOrderness = 5 * time.Minute
	}
	p := sdk.NewPipeline()
	profiles := sdk.NewTable(p, "profiles", func(e events.ProfileEditEvent) int64 { return e.ProfileID })
	views := sdk.Read[events.PageViewEvent](p, "pageviews", sdk.EventTime(viewTime), sdk.OutOfOrderness(outOfOrderness))
	sdk.Write(sdk.ParDo(views, lookupProfile{profiles}, sdk.Named("LookUpViewer")), "enriched")
	return p
}

type lookupProfile struct {
	profiles sdk.Table[int64, events.ProfileEditEvent]
}

func (f lookupProfile) ProcessElement(c *sdk.Context, v events.PageViewEvent, emit sdk.Emitter[EnrichedPageView]) error {
	e, ok, err := f.profiles.Get(c, v.ViewerID)
	if err != nil {
		return err
	}
	out := EnrichedPageView{PageViewEvent: v}
	if ok {
		out.ViewerProfile = &e.Profile
	}
	emit.Emit(out)
	return nil
}
