// Package pipelines holds the example pipelines of Weir, as functions that
// build them, so that their main packages (examples/profileviews,
// examples/enrich, examples/sessions) and the integration tests run exactly
// the same pipelines.
//
// Dependency direction: pipelines imports sdk, windowing and examples/events;
// it never imports the runner: a pipeline does not know where it runs.
package pipelines

import (
	"errors"
	"fmt"
	"time"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

// viewTime is the event time of a page view. A record without a usable
// timestamp, or that is not a page view, is dead-lettered with the reason.
func viewTime(v events.PageViewEvent) (sdk.Time, error) {
	if v.EventType != events.EventTypePageView {
		return 0, fmt.Errorf("eventType is %q, want %q", v.EventType, events.EventTypePageView)
	}
	if v.Timestamp <= 0 {
		return 0, errors.New("missing timestamp")
	}
	return sdk.Time(v.Timestamp), nil
}

func editTime(e events.ProfileEditEvent) (sdk.Time, error) {
	if e.EventType != events.EventTypeProfileEdit {
		return 0, fmt.Errorf("eventType is %q, want %q", e.EventType, events.EventTypeProfileEdit)
	}
	if e.Timestamp <= 0 {
		return 0, errors.New("missing timestamp")
	}
	return sdk.Time(e.Timestamp), nil
}

// ProfileViewsConfig configures the "who viewed your profile" pipeline.
type ProfileViewsConfig struct {
	// Window is the size of the windows. Default 1h.
	Window time.Duration
	// Slide, when set, makes the windows sliding, starting every Slide.
	Slide time.Duration
	// AllowedLateness keeps windows open for late views. Default 0. With
	// lateness, panes accumulate: a window's last row has its full count.
	AllowedLateness time.Duration
	// OutOfOrderness is the watermark delay of the input. Default 5m.
	OutOfOrderness time.Duration
}

// ProfileViewCount is one output row of ProfileViews.
type ProfileViewCount struct {
	ProfileID   int64 `json:"profileId"`
	WindowStart int64 `json:"windowStart"`
	WindowEnd   int64 `json:"windowEnd"`
	Count       int64 `json:"count"`
}

// WindowFn returns the window function the configuration asks for.
func (c ProfileViewsConfig) WindowFn() windowing.WindowFn {
	if c.Slide > 0 {
		return windowing.Sliding(c.Window, c.Slide)
	}
	return windowing.Fixed(c.Window)
}

func (c *ProfileViewsConfig) ensureDefaults() {
	if c.Window == 0 {
		c.Window = time.Hour
	}
	if c.OutOfOrderness == 0 {
		c.OutOfOrderness = 5 * time.Minute
	}
}

// ProfileViews counts, per viewed profile and event-time window, the page
// views of that profile. It reads "pageviews", writes "counts" and writes the
// late views, as read, to "late".
func ProfileViews(c ProfileViewsConfig) (*sdk.Pipeline, error) {
	c.ensureDefaults()
	p := sdk.NewPipeline()
	views := sdk.Read[events.PageViewEvent](p, "pageviews",
		sdk.EventTime(viewTime), sdk.OutOfOrderness(c.OutOfOrderness))
	profileViews := sdk.Filter(views, func(v events.PageViewEvent) bool {
		return v.PageKey == events.PageKeyProfileView
	}, sdk.Named("ProfileViewsOnly"))
	opts := []sdk.Option{sdk.AllowedLateness(c.AllowedLateness), sdk.Named("Window")}
	if c.AllowedLateness > 0 {
		opts = append(opts, sdk.Accumulating())
	}
	windowed := sdk.WindowInto(profileViews, c.WindowFn(), opts...)
	sdk.Write(sdk.LateData(windowed), "late")
	byProfile := sdk.KeyBy(windowed, func(v events.PageViewEvent) int64 { return v.ViewedProfileID }, sdk.Named("ByViewedProfile"))
	counts := sdk.Count(byProfile, sdk.Named("CountViews"))
	rows := sdk.ParDo(counts, countRow{}, sdk.Named("ToRow"))
	sdk.Write(rows, "counts")
	return p, p.Validate()
}

type countRow struct{}

func (countRow) ProcessElement(ctx *sdk.Context, kv sdk.KV[int64, int64], emit sdk.Emitter[ProfileViewCount]) error {
	w := ctx.Window()
	emit.Emit(ProfileViewCount{ProfileID: kv.Key, WindowStart: int64(w.Start), WindowEnd: int64(w.End), Count: kv.Value})
	return nil
}

// SessionsConfig configures the sessions pipeline.
type SessionsConfig struct {
	// Gap is the inactivity gap that ends a session. Default 30m.
	Gap time.Duration
	// OutOfOrderness is the watermark delay of the input. Default 5m.
	OutOfOrderness time.Duration
}

// SessionRow is one output row of Sessions: a viewer's activity session.
// SessionEnd is the end of the session window: the last view plus the gap.
type SessionRow struct {
	ViewerID     int64 `json:"viewerId"`
	SessionStart int64 `json:"sessionStart"`
	SessionEnd   int64 `json:"sessionEnd"`
	Views        int64 `json:"views"`
}

// Sessions finds each viewer's activity sessions (session windows) and
// counts their views. It reads "pageviews", writes "sessions", and writes
// late views to "late" when that is bound.
func Sessions(c SessionsConfig) (*sdk.Pipeline, error) {
	if c.Gap == 0 {
		c.Gap = 30 * time.Minute
	}
	if c.OutOfOrderness == 0 {
		c.OutOfOrderness = 5 * time.Minute
	}
	p := sdk.NewPipeline()
	views := sdk.Read[events.PageViewEvent](p, "pageviews",
		sdk.EventTime(viewTime), sdk.OutOfOrderness(c.OutOfOrderness))
	windowed := sdk.WindowInto(views, windowing.Sessions(c.Gap), sdk.Named("Sessions"))
	sdk.Write(sdk.LateData(windowed), "late", sdk.Optional())
	counts := sdk.Count(sdk.KeyBy(windowed, func(v events.PageViewEvent) int64 { return v.ViewerID }, sdk.Named("ByViewer")), sdk.Named("CountViews"))
	rows := sdk.ParDo(counts, sessionRow{}, sdk.Named("ToRow"))
	sdk.Write(rows, "sessions")
	return p, p.Validate()
}

type sessionRow struct{}

func (sessionRow) ProcessElement(ctx *sdk.Context, kv sdk.KV[int64, int64], emit sdk.Emitter[SessionRow]) error {
	w := ctx.Window()
	emit.Emit(SessionRow{ViewerID: kv.Key, SessionStart: int64(w.Start), SessionEnd: int64(w.End), Views: kv.Value})
	return nil
}
