package runner_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

// rateFn multiplies each main element by its key's rate in the side input
// of its window.
type rateFn struct{ rates sdk.MapView[string, ev] }

func (f *rateFn) ProcessElement(ctx *sdk.Context, e ev, emit sdk.Emitter[string]) error {
	m, err := f.rates.Get(ctx)
	if err != nil {
		return err
	}
	r, ok := m[e.Key]
	if !ok {
		emit.Emit(fmt.Sprintf("%s@%d no rate", e.Key, e.At))
		return nil
	}
	emit.Emit(fmt.Sprintf("%s@%d %d", e.Key, e.At, e.V*r.V))
	return nil
}

func ratesPipeline() *sdk.Pipeline {
	p := sdk.NewPipeline()
	w := windowing.Fixed(10 * time.Millisecond)
	main := sdk.WindowInto(sdk.Read[ev](p, "in", sdk.EventTime(at)), w)
	rates := sdk.AsMap(sdk.KeyBy(sdk.WindowInto(sdk.Read[ev](p, "rates", sdk.EventTime(at)), w), func(e ev) string { return e.Key }))
	sdk.Write(sdk.ParDo(main, &rateFn{rates: rates}, sdk.SideInputs(rates), sdk.Named("ApplyRate")), "out")
	return p
}

// TestSideInputBuffersSurviveARestart stops a job whose main elements wait
// for their window's side input, with two workers, and resumes it with one:
// the waiting elements and the side data they wait on come back from the
// checkpoint, and are processed once the side input's window completes.
func TestSideInputBuffersSurviveARestart(t *testing.T) {
	n := names.Add(1)
	in, rates := fmt.Sprintf("side-ck-in-%d", n), fmt.Sprintf("side-ck-rates-%d", n)
	inS, ratesS := memory.NewStream(in), memory.NewStream(rates)
	ckpt := filepath.Join(t.TempDir(), "checkpoints")
	// run runs the job until it has read main and side records in all
	// (counted from the first run), then stops it.
	run := func(parallelism int, main, side int, feed func()) ([]any, error) {
		out, col := memOut()
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := runner.Run(context.Background(), ratesPipeline(), runner.Options{Mode: runner.Stream, Progress: -1,
				Parallelism: parallelism, StateBackend: "memory", Logger: slog.New(slog.DiscardHandler),
				CheckpointDir: ckpt, CheckpointInterval: 20 * time.Millisecond, Stop: stop,
				Bindings: map[string]string{"in": "mem://" + in, "rates": "mem://" + rates, "out": out}})
			done <- err
		}()
		feed()
		// What the readers have read is in the stop's checkpoint.
		waitUntil(t, "the run to read its input", func() bool {
			return inS.Consumed() >= main && ratesS.Consumed() >= side || len(done) > 0
		})
		close(stop)
		err := <-done // the stop's final checkpoint commits the output
		return col.Values(), err
	}
	// Window [0,10): rates arrive, the side input's watermark stays inside
	// the window, so the main elements wait.
	got, err := run(2, 4, 2, func() {
		ratesS.Send(ev{"a", 1, 3}, ev{"b", 2, 5})
		inS.Send(ev{"a", 4, 10}, ev{"b", 5, 10}, ev{"a", 6, 1}, ev{"c", 7, 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Fatalf("first run: %v, want nothing (the side window is open)", got)
	}
	// The side input moves past the window: the waiting elements go out,
	// with the rates of the first run.
	got, err = run(1, 5, 3, func() {
		ratesS.Send(ev{"a", 25, 7})
		inS.Send(ev{"a", 26, 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	if g, want := fmt.Sprint(sortedStrings(got)), "[a@4 30 a@6 3 b@5 50 c@7 no rate]"; g != want {
		t.Fatalf("after the restart: %s, want %s", g, want)
	}
}
