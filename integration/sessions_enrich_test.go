package integration

import (
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/windowing"
)

// refSessions computes the sessions answer with plain loops: drop the views
// that are late for their proto-session under the replayed watermark, then
// cut each viewer's remaining views where the gap to the session's end is
// reached.
func refSessions(views []events.PageViewEvent, gap, bound time.Duration) []pipelines.SessionRow {
	wm := watermarkReplay{bound: windowing.FromDuration(bound)}
	g := int64(gap / time.Millisecond)
	byViewer := map[int64][]int64{}
	for _, v := range views {
		cur := int64(wm.current())
		wm.observe(windowing.Time(v.Timestamp))
		if v.Timestamp+g-1 < cur {
			continue // late
		}
		byViewer[v.ViewerID] = append(byViewer[v.ViewerID], v.Timestamp)
	}
	var rows []pipelines.SessionRow
	for viewer, ts := range byViewer {
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		cur := pipelines.SessionRow{ViewerID: viewer, SessionStart: ts[0], SessionEnd: ts[0] + g, Views: 1}
		for _, t := range ts[1:] {
			if t < cur.SessionEnd {
				cur.SessionEnd = max(cur.SessionEnd, t+g)
				cur.Views++
				continue
			}
			rows = append(rows, cur)
			cur = pipelines.SessionRow{ViewerID: viewer, SessionStart: t, SessionEnd: t + g, Views: 1}
		}
		rows = append(rows, cur)
	}
	return rows
}

func TestSessionsBackfillAndStreamAgree(t *testing.T) {
	views, _ := dataset(t, 30000)
	cfg := pipelines.SessionsConfig{Gap: 30 * time.Minute, OutOfOrderness: 5 * time.Minute}
	want := refSessions(views, cfg.Gap, cfg.OutOfOrderness)
	multi := 0
	for _, r := range want {
		if r.Views > 1 {
			multi++
		}
	}
	if multi == 0 {
		t.Fatal("no session has more than one view; the test would not exercise merging")
	}
	t.Logf("%d sessions, %d with several views", len(want), multi)
	dir := t.TempDir()
	p, err := pipelines.Sessions(cfg)
	if err != nil {
		t.Fatal(err)
	}
	backfill(t, p, map[string]string{
		"pageviews": writeJSONL(t, filepath.Join(dir, "pageviews.jsonl"), views),
		"sessions":  "file://" + filepath.Join(dir, "sessions.parquet"),
	})
	got := readParquet[pipelines.SessionRow](t, filepath.Join(dir, "sessions.parquet"))
	sameRows(t, "backfill sessions", got, want)

	p2, _ := pipelines.Sessions(cfg)
	out := stream(t, p2, map[string][]any{"pageviews": anys(views)}, []string{"sessions"})
	sameRows(t, "stream sessions", typed[pipelines.SessionRow](t, out["sessions"]), want)
}

// refEnrich joins each view with the latest edit of the viewer's profile at
// or before the view (among edits of the same time, the last to arrive).
func refEnrich(views []events.PageViewEvent, edits []events.ProfileEditEvent) []pipelines.EnrichedPageView {
	byProfile := map[int64][]events.ProfileEditEvent{}
	for _, e := range edits {
		byProfile[e.ProfileID] = append(byProfile[e.ProfileID], e)
	}
	var out []pipelines.EnrichedPageView
	for _, v := range views {
		r := pipelines.EnrichedPageView{PageViewEvent: v}
		var best *events.ProfileEditEvent
		for i, e := range byProfile[v.ViewerID] {
			if e.Timestamp <= v.Timestamp && (best == nil || e.Timestamp >= best.Timestamp) {
				best = &byProfile[v.ViewerID][i]
			}
		}
		if best != nil {
			p := best.Profile
			r.ViewerProfile = &p
		}
		out = append(out, r)
	}
	return out
}

func TestEnrichBackfillAndStreamAgree(t *testing.T) {
	views, edits := dataset(t, 20000)
	want := refEnrich(views, edits)
	with := 0
	for _, r := range want {
		if r.ViewerProfile != nil {
			with++
		}
	}
	if with == 0 || with == len(want) {
		t.Fatalf("%d of %d views have a profile; the test needs both kinds", with, len(want))
	}
	t.Logf("%d views, %d with a profile as of the view", len(want), with)
	dir := t.TempDir()
	p, err := pipelines.Enrich(pipelines.EnrichConfig{})
	if err != nil {
		t.Fatal(err)
	}
	backfill(t, p, map[string]string{
		"pageviews": writeJSONL(t, filepath.Join(dir, "pageviews.jsonl"), views),
		"profiles":  writeJSONL(t, filepath.Join(dir, "profiles.jsonl"), edits),
		"enriched":  "file://" + filepath.Join(dir, "enriched.jsonl"),
	})
	got := readJSONL[pipelines.EnrichedPageView](t, filepath.Join(dir, "enriched.jsonl"))
	sameRows(t, "backfill enriched", got, want)

	p2, _ := pipelines.Enrich(pipelines.EnrichConfig{})
	out := stream(t, p2, map[string][]any{"pageviews": anys(views), "profiles": anys(edits)}, []string{"enriched"})
	sameRows(t, "stream enriched", typed[pipelines.EnrichedPageView](t, out["enriched"]), want)
}

// TestEnrichFromTableBackfill joins views with a table of profiles loaded
// from a snapshot of all edits (the latest edit of each member wins): each
// view gets its viewer's last profile, or none.
func TestEnrichFromTableBackfill(t *testing.T) {
	views, edits := dataset(t, 5000)
	latest := map[int64]events.Profile{}
	for _, e := range edits { // in order: the last edit of a member wins
		latest[e.ProfileID] = e.Profile
	}
	var want []pipelines.EnrichedPageView
	for _, v := range views {
		r := pipelines.EnrichedPageView{PageViewEvent: v}
		if p, ok := latest[v.ViewerID]; ok {
			r.ViewerProfile = &p
		}
		want = append(want, r)
	}
	dir := t.TempDir()
	backfill(t, pipelines.EnrichFromTable(0), map[string]string{
		"pageviews": writeJSONL(t, filepath.Join(dir, "pageviews.jsonl"), views),
		"profiles":  writeJSONL(t, filepath.Join(dir, "profiles.jsonl"), edits),
		"enriched":  "file://" + filepath.Join(dir, "enriched.jsonl"),
	})
	sameRows(t, "enriched from the table", readJSONL[pipelines.EnrichedPageView](t, filepath.Join(dir, "enriched.jsonl")), want)
}
