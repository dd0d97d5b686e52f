package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-dev/weir/runner"
)

// TestHandoverAtATimeKeepsLiveRecordsOnTime: backfill-then-stream
// with --handover T. The history files run past T (a daily export); the
// history keeps what is before T and the topic supplies what is at or
// after it. The history's records at or after T are dropped as out of
// range, but they still advance the history's watermark (wm.Observe comes
// before the range check), and the live part resumes with that watermark:
// the topic's records between T and the history's last event time are late.
func TestHandoverAtATimeKeepsLiveRecordsOnTime(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "views"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/views"
	const hour = 3600000
	dir := t.TempDir()
	hist := filepath.Join(dir, "hist.jsonl")
	var b strings.Builder
	for h := 0; h < 4; h++ { // hours 0 to 3; T is hour 2
		for i := 0; i < 3; i++ {
			j, _ := json.Marshal(ev{Key: "k", At: int64(h*hour + i), V: 1})
			b.Write(append(j, '\n'))
		}
	}
	os.WriteFile(hist, []byte(b.String()), 0o644)
	// The topic from T on: two views in hour 2.
	writeSink(t, topic, reflect.TypeFor[ev](), ev{"k", 2*hour + 10, 1}, ev{"k", 2*hour + 20, 1})

	out, col := memOut()
	res, err := runner.Run(context.Background(), hourlyCounts(), runner.Options{
		Mode: runner.BackfillThenStream, Progress: -1, Parallelism: 1, Logger: slog.New(slog.DiscardHandler),
		Bindings:      map[string]string{"in": "file://" + hist, "out": out},
		Then:          map[string]string{"in": topic + "?until=latest"},
		Handover:      fmt.Sprint(2 * hour),
		CheckpointDir: filepath.Join(dir, "ckpt"), CheckpointInterval: 50 * time.Millisecond,
		StateDir: filepath.Join(dir, "state"),
	})
	if err != nil {
		t.Fatal(err)
	}
	var late int64
	for _, n := range res.Late {
		late += n
	}
	got := fmt.Sprint(sortedStrings(col.Values()))
	if late != 0 || got != "[k 2 k 3 k 3]" {
		t.Fatalf("got %s with %d late; want [k 2 k 3 k 3] (hours 0 and 1 from the history, hour 2 from the topic) and none late", got, late)
	}
}
