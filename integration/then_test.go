package integration

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/io/kafka"
	"github.com/weir-dev/weir/runner"
)

// TestBackfillThenStream exports the first half of a topic's page views to
// files with weir cp (which leaves the offsets that follow them beside the
// files), appends the second half to the topic, and runs profileviews
// backfill-then-stream: history from the files, then the topic from those
// offsets, with one state. Windows span the seam; the counts equal the
// plain-loop answer over all the views, with nothing missed or counted
// twice at the seam.
func TestBackfillThenStream(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "pageviews"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/"
	views, _, err := events.Generate(events.GenConfig{Seed: 11, PageViews: 30000, Profiles: 400, Span: 12 * time.Hour, LateFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	half := len(views) / 2
	produce(t, k+"pageviews?key=viewerId", views[:half])

	dir := t.TempDir()
	hist := filepath.Join(dir, "history") + "/"
	if r := runCLI(t, "weir", "cp", k+"pageviews?until=latest", "file://"+hist); r.code != 0 {
		t.Fatalf("weir cp: %s", r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(hist, kafka.HandoverFile))
	if err != nil {
		t.Fatal(err)
	}
	var h kafka.Handover
	json.Unmarshal(b, &h)
	var n int64
	for _, off := range h.Offsets {
		n += off
	}
	if h.Topic != "pageviews" || n != int64(half) {
		t.Fatalf("handover %s: want the offsets after %d views", b, half)
	}
	produce(t, k+"pageviews?key=viewerId", views[half:])

	cfg := pipelines.ProfileViewsConfig{Window: time.Hour, OutOfOrderness: 5 * time.Minute}
	p, err := pipelines.ProfileViews(cfg)
	if err != nil {
		t.Fatal(err)
	}
	counts := filepath.Join(dir, "counts") + "/"
	res, err := runner.Run(context.Background(), p, quietOptions(runner.Options{
		Mode:          runner.BackfillThenStream,
		Bindings:      map[string]string{"pageviews": "file://" + hist, "counts": "file://" + counts, "late": "discard://"},
		Then:          map[string]string{"pageviews": k + "pageviews?until=latest"},
		Handover:      "file://" + filepath.Join(hist, kafka.HandoverFile),
		CheckpointDir: filepath.Join(dir, "checkpoints"), CheckpointInterval: 100 * time.Millisecond,
		StateDir: filepath.Join(dir, "state"),
	}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Read["pageviews"] != int64(len(views)) {
		t.Errorf("read %d views, want %d (each once)", res.Read["pageviews"], len(views))
	}
	want, late := refProfileViews(views, cfg)
	if len(late) != 0 {
		t.Fatalf("the data set has %d late views", len(late))
	}
	var got []pipelines.ProfileViewCount
	parts, _ := filepath.Glob(filepath.Join(counts, "part-*"))
	for _, p := range parts {
		got = append(got, readJSONL[pipelines.ProfileViewCount](t, p)...)
	}
	sameRows(t, "counts across the seam", got, want)
}
