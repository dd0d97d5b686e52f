package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

// TestDateFolderIsNotAHardEventTimeBound: files in Hive-style
// date= folders (here partitioned by arrival date, as many are). A view at
// 22:30 that arrived after midnight is in the next day's folder: 30
// minutes behind the latest event time read before it (23:00), within the
// pipeline's declared out-of-orderness of an hour. The folder's date is
// taken as a hard lower bound of its event times (held at lo-1, with no
// out-of-orderness allowance), so the watermark is at 24:00 before that
// folder is read and the view is dropped as late.
// Without the date= folder names the same data gives no late record.
func TestDateFolderIsNotAHardEventTimeBound(t *testing.T) {
	const hour = int64(3600000)
	dir := t.TempDir()
	write := func(p string, evs ...ev) {
		os.MkdirAll(filepath.Dir(p), 0o755)
		var b []byte
		for _, e := range evs {
			j, _ := json.Marshal(e)
			b = append(append(b, j...), '\n')
		}
		os.WriteFile(p, b, 0o644)
	}
	write(filepath.Join(dir, "date=1970-01-01", "a.jsonl"), ev{"k", 1 * hour, 1}, ev{"k", 23 * hour, 1})
	write(filepath.Join(dir, "date=1970-01-02", "b.jsonl"), ev{"k", 22*hour + 30*60000, 1}, ev{"k", 25 * hour, 1})

	p := sdk.NewPipeline()
	in := sdk.WindowInto(sdk.Read[ev](p, "in", sdk.EventTime(at), sdk.OutOfOrderness(time.Hour)), windowing.Fixed(time.Hour))
	counts := sdk.Count(sdk.KeyBy(in, func(e ev) string { return e.Key }))
	sdk.Write(sdk.Map(counts, func(kv sdk.KV[string, int64]) string { return fmt.Sprint(kv.Key, " ", kv.Value) }), "out")

	out, c := memOut()
	res, err := runner.Run(context.Background(), p, runner.Options{Progress: -1, Parallelism: 1, StateBackend: "memory",
		Logger: slog.New(slog.DiscardHandler), Bindings: map[string]string{"in": "file://" + dir + "/", "out": out}})
	if err != nil {
		t.Fatal(err)
	}
	var late int64
	for _, n := range res.Late {
		late += n
	}
	if got := fmt.Sprint(sortedStrings(c.Values())); late != 0 || got != "[k 1 k 1 k 1 k 1]" {
		t.Fatalf("got %s with %d late: want [k 1 k 1 k 1 k 1], none late (30 minutes out of order, with an hour allowed)", got, late)
	}
}
