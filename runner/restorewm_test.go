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

type seeWatermark struct{ seen sdk.ValueState[int64] }

func (f seeWatermark) ProcessElement(c *sdk.Context, kv sdk.KV[string, ev], emit sdk.Emitter[string]) error {
	emit.Emit(fmt.Sprintf("%s@%d wm=%s", kv.Value.Key, kv.Value.At, c.Watermark()))
	return f.seen.Write(c, kv.Value.At)
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
		cell := sdk.NewValueState[int64]("seen")
		kv := sdk.KeyBy(sdk.Flatten(ra, rb), func(ev) string { return "k" })
		sdk.Write(sdk.ParDo(kv, seeWatermark{cell}, sdk.State(cell), sdk.Named("See")), "out")
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
		for !waitWritten(c1, 2, time.Second) {
		}
		time.Sleep(100 * time.Millisecond) // the watermark reaches the ParDo
	})
	out2, c2 := memOut()
	run(out2, func() {
		a.Send(ev{"a", 660_000, 0})
		if !waitWritten(c2, 1, 3*time.Second) {
			t.Fatal("nothing processed after the restart")
		}
	})
	got := fmt.Sprint(c2.Values())
	if !strings.Contains(got, "a@660000 wm=1970-01-01T00:10:00.000Z") {
		t.Errorf("after the restart the ParDo saw %s; want the watermark it had at the stop (00:10)", got)
	}
}
