package runner_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
)

// slowOpen is mem:// with splits that take a while to open, so that one
// reader of a job speaks well after another.
type slowOpen struct{}

func init() { connector.Register("slowopen", slowOpen{}) }

func (slowOpen) OpenSource(ctx context.Context, spec connector.SourceSpec) (connector.Source, error) {
	spec.URI = &url.URL{Scheme: "mem", Host: spec.URI.Host}
	src, err := connector.OpenSource(ctx, spec)
	if err != nil {
		return nil, err
	}
	return slowSource{src}, nil
}
func (slowOpen) OpenSink(context.Context, connector.SinkSpec) (connector.Sink, error) {
	return nil, connector.ErrUnsupported
}

type slowSource struct{ connector.Source }

func (s slowSource) Splits(ctx context.Context) ([]connector.Split, error) {
	sp, err := s.Source.Splits(ctx)
	for i := range sp {
		sp[i] = slowSplit{sp[i].(connector.ResumableSplit)}
	}
	return sp, err
}

type slowSplit struct{ connector.ResumableSplit }

func (s slowSplit) OpenAt(ctx context.Context, pos []byte) (connector.Reader, error) {
	time.Sleep(300 * time.Millisecond)
	return s.ResumableSplit.OpenAt(ctx, pos)
}

// seeWatermark emits the input watermark each element sees. Its timer,
// set just before the element's time, says when the watermark has reached
// the element.
type seeWatermark struct {
	seen    sdk.ValueState[int64]
	reached sdk.TimerDecl
}

func (f seeWatermark) ProcessElement(c *sdk.Context, kv sdk.KV[string, ev], emit sdk.Emitter[string]) error {
	emit.Emit(fmt.Sprintf("%s@%d wm=%s", kv.Value.Key, kv.Value.At, c.Watermark()))
	if err := f.reached.Set(c, sdk.Time(kv.Value.At-1)); err != nil {
		return err
	}
	return f.seen.Write(c, kv.Value.At)
}

func (f seeWatermark) OnTimer(c *sdk.Context, tm sdk.Timer, emit sdk.Emitter[string]) error {
	emit.Emit(fmt.Sprintf("reached %d", tm.Time+1))
	return nil
}

// TestRestoredKeyedWatermark restarts a job from its final checkpoint: the
// keyed instance's input watermark is the one it had, from its first
// element on, even while one of its sources is still opening.
func TestRestoredKeyedWatermark(t *testing.T) {
	n := names.Add(1)
	an, bn := fmt.Sprintf("rwm-a-%d", n), fmt.Sprintf("rwm-b-%d", n)
	a, b := memory.NewStream(an), memory.NewStream(bn)
	ckpt := t.TempDir()
	build := func() *sdk.Pipeline {
		p := sdk.NewPipeline()
		ra := sdk.Read[ev](p, "a", sdk.EventTime(at))
		rb := sdk.Read[ev](p, "b", sdk.EventTime(at))
		cell, reached := sdk.NewValueState[int64]("seen"), sdk.EventTimer("reached")
		kv := sdk.KeyBy(sdk.Flatten(ra, rb), func(ev) string { return "k" })
		sdk.Write(sdk.ParDo(kv, seeWatermark{cell, reached}, sdk.State(cell, reached), sdk.Named("See")), "out")
		return p
	}
	run := func(out string, feed func()) {
		t.Helper()
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := runner.Run(context.Background(), build(), runner.Options{Mode: runner.Stream, StateBackend: "memory", Progress: -1, Parallelism: 1,
				CheckpointDir: ckpt, CheckpointInterval: time.Hour, Stop: stop,
				Bindings: map[string]string{"a": "mem://" + an, "b": "slowopen://" + bn, "out": out}})
			done <- err
		}()
		feed()
		close(stop)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	out1, c1 := memOut()
	run(out1, func() {
		a.Send(ev{"a", 600_000, 0})
		b.Send(ev{"b", 600_000, 0})
		// Both elements, then the timer: the watermark has reached
		// the ParDo.
		waitUntil(t, "the watermark to reach the ParDo (its timer to fire)", func() bool { return c1.Written() >= 3 })
	})
	if got := fmt.Sprint(c1.Values()); !strings.Contains(got, "reached 600000") {
		t.Fatalf("before the stop the ParDo wrote %s; want its timer to have fired at 00:10", got)
	}
	out2, c2 := memOut()
	run(out2, func() {
		a.Send(ev{"a", 660_000, 0})
		waitUntil(t, "an element processed after the restart", func() bool { return c2.Written() >= 1 })
	})
	got := fmt.Sprint(c2.Values())
	if !strings.Contains(got, "a@660000 wm=1970-01-01T00:10:00.000Z") {
		t.Errorf("after the restart the ParDo saw %s; want the watermark it had at the stop (00:10)", got)
	}
}
