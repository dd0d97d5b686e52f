package integration

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/examples/pipelines"
)

func TestProfileViewsBackfillAndStreamAgree(t *testing.T) {
	views, _ := dataset(t, 40000)
	for _, c := range []struct {
		name string
		cfg  pipelines.ProfileViewsConfig
	}{
		{"tumbling-1h", pipelines.ProfileViewsConfig{Window: time.Hour, OutOfOrderness: 5 * time.Minute}},
		{"sliding-1h-every-15m", pipelines.ProfileViewsConfig{Window: time.Hour, Slide: 15 * time.Minute, OutOfOrderness: 5 * time.Minute}},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantRows, wantLate := refProfileViews(views, c.cfg)
			if len(wantLate) == 0 {
				t.Fatal("the data set has no late views; the test would not exercise lateness")
			}
			dir := t.TempDir()
			in := writeJSONL(t, filepath.Join(dir, "pageviews.jsonl"), views)
			p, err := pipelines.ProfileViews(c.cfg)
			if err != nil {
				t.Fatal(err)
			}
			res := backfill(t, p, map[string]string{
				"pageviews": in,
				"counts":    "file://" + filepath.Join(dir, "counts.jsonl"),
				"late":      "file://" + filepath.Join(dir, "late.jsonl"),
			})
			if res.Read["pageviews"] != int64(len(views)) {
				t.Errorf("read %d views, want %d", res.Read["pageviews"], len(views))
			}
			gotRows := readJSONL[pipelines.ProfileViewCount](t, filepath.Join(dir, "counts.jsonl"))
			gotLate := readJSONL[events.PageViewEvent](t, filepath.Join(dir, "late.jsonl"))
			t.Logf("%d count rows, %d late views", len(wantRows), len(wantLate))
			sameRows(t, "backfill counts", gotRows, wantRows)
			sameRows(t, "backfill late", gotLate, wantLate)

			p2, _ := pipelines.ProfileViews(c.cfg)
			out := stream(t, p2, map[string][]any{"pageviews": anys(views)}, []string{"counts", "late"})
			sameRows(t, "stream counts", typed[pipelines.ProfileViewCount](t, out["counts"]), wantRows)
			sameRows(t, "stream late", typed[events.PageViewEvent](t, out["late"]), wantLate)
		})
	}
}
