package runner_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

type windowSumFn struct{}

func (windowSumFn) ProcessElement(ctx *sdk.Context, kv sdk.KV[string, int64], emit sdk.Emitter[string]) error {
	emit.Emit(fmt.Sprintf("%s@%d %d", kv.Key, ctx.Window().Start, kv.Value))
	return nil
}

func windowSumPipeline() *sdk.Pipeline {
	p := sdk.NewPipeline()
	in := sdk.WindowInto(sdk.Read[ev](p, "in", sdk.EventTime(at)), windowing.Fixed(100*time.Millisecond))
	kvs := sdk.Map(in, func(e ev) sdk.KV[string, int64] { return sdk.KV[string, int64]{Key: e.Key, Value: e.V} })
	sdk.Write(sdk.ParDo(sdk.Sum(kvs), windowSumFn{}), "out")
	return p
}

// TestPendingWindowsSurviveARescale stops a job whose last window is open
// (held in memory, with a copy in each checkpoint), with two workers, and
// resumes it with three, which own other ranges of key groups: the
// window's sums go on from what the first run had added.
func TestPendingWindowsSurviveARescale(t *testing.T) {
	n := names.Add(1)
	in := fmt.Sprintf("pending-rescale-in-%d", n)
	src := memory.NewStream(in)
	ckpt := filepath.Join(t.TempDir(), "checkpoints")
	want := map[string]int64{}
	send := func(evs ...ev) {
		for _, e := range evs {
			want[fmt.Sprintf("%s@%d", e.Key, e.At/100*100)] += e.V
			src.Send(e)
		}
	}
	run := func(parallelism int, stop chan struct{}) ([]any, error) {
		out, col := memOut()
		_, err := runner.Run(context.Background(), windowSumPipeline(), runner.Options{Mode: runner.Stream, Progress: -1,
			Parallelism: parallelism, StateBackend: "memory", Logger: slog.New(slog.DiscardHandler),
			CheckpointDir: ckpt, CheckpointInterval: 10 * time.Millisecond, Stop: stop,
			Bindings: map[string]string{"in": "mem://" + in, "out": out}})
		return col.Values(), err
	}
	var evs []ev
	for i := range 60 {
		evs = append(evs, ev{Key: fmt.Sprintf("k%d", i%20), At: int64(i * 4), V: int64(i + 1)})
	}
	stop := make(chan struct{})
	go func() {
		send(evs...) // up to 236ms: [200ms,300ms) stays open
		for src.Consumed() < len(evs) {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond) // a few checkpoints
		close(stop)
	}()
	first, err := run(2, stop)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range first {
		if s := g.(string); strings.Contains(s, "@200 ") {
			t.Fatalf("the first run fired the open window: %s", s)
		}
	}
	if len(first) == 0 {
		t.Fatal("the first run fired no window")
	}
	var more []ev
	for i := range 20 {
		more = append(more, ev{Key: fmt.Sprintf("k%d", i), At: int64(250 + i), V: 1000})
	}
	send(more...)
	src.Close()
	second, err := run(3, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got, wantRows []string
	for _, g := range append(first, second...) {
		got = append(got, g.(string))
	}
	for k, v := range want {
		wantRows = append(wantRows, fmt.Sprintf("%s %d", k, v))
	}
	slices.Sort(got)
	slices.Sort(wantRows)
	if !slices.Equal(got, wantRows) {
		t.Errorf("sums across the stop and rescale:\n%v\nwant:\n%v", got, wantRows)
	}
}
