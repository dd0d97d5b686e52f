package engine

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// addFn adds its side input to each element.
type addFn struct{ side sdk.SingletonView[int64] }

func (f *addFn) ProcessElement(ctx *sdk.Context, v int64, emit sdk.Emitter[int64]) error {
	s, err := f.side.Get(ctx)
	if err != nil {
		return err
	}
	emit.Emit(v + s)
	return nil
}

// TestRestoredSideForwardsWatermark: a side-input instance restored from a
// checkpoint sends its restored output watermark before any element, as a
// keyed instance does, so that a WindowInto fused after it drops as late
// what was late before the restart.
func TestRestoredSideForwardsWatermark(t *testing.T) {
	ctx := context.Background()
	main, side := fmt.Sprintf("side-restore-main-%p", t), fmt.Sprintf("side-restore-side-%p", t)
	memory.NewBounded(main, int64(5), int64(200)) // 5 is behind the restored watermark, 100
	memory.NewBounded(side)                       // read to its end before the checkpoint
	et := sdk.EventTime(func(v int64) (windowing.Time, error) { return windowing.Time(v), nil })
	p := sdk.NewPipeline()
	view := sdk.AsSingleton(sdk.Read[int64](p, "side", et))
	added := sdk.ParDo(sdk.Read[int64](p, "main", et), &addFn{view}, sdk.SideInputs(view), sdk.Named("Add"))
	sdk.Write(sdk.WindowInto(added, windowing.Fixed(10*time.Millisecond), sdk.Named("Window")), "out")
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	g := p.Graph()
	var add *graph.Node
	for _, n := range g.Nodes {
		if n.Name == "Add" {
			add = n
		}
	}
	// The checkpoint restored: the main input at 100, the side input
	// complete, nothing waiting. Main elements are ready at once, before
	// any watermark reaches the instance.
	backend := state.NewMem()
	snap := &sideSnapshot{wms: []windowing.Time{100, windowing.MaxTime},
		data: []map[windowing.Window][]any{{windowing.GlobalWindow: {int64(0)}}}}
	if err := saveSide(backend, opID("Add"), 0, newSideCodec(add), snap); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Backend: backend, Bounded: true, Logger: slog.New(slog.DiscardHandler), Metrics: NewMetrics(),
		Sources:            map[string]connector.Source{"main": openInt64s(t, ctx, "main", main), "side": openInt64s(t, ctx, "side", side)},
		CheckpointInterval: time.Hour, FirstCheckpointID: 1,
		OnCheckpoint: func(int64, bool, SplitStates, map[string][]byte) error { return nil }}
	if err := Run(ctx, g, cfg); err != nil {
		t.Fatal(err)
	}
	if late, written := cfg.Metrics.Late("Window").Load(), cfg.Metrics.Written("out").Load(); late != 1 || written != 1 {
		t.Errorf("%d late, %d written; want the element at 5 late (behind the restored watermark) and the one at 200 written", late, written)
	}
}

// gatedAddFn is addFn whose second worker's Setup waits until the
// backend holds a side-input snapshot: it starts only once the other
// worker has passed a barrier.
type gatedAddFn struct {
	addFn
	setups  *atomic.Int32
	backend *gatedBackend
}

func (f *gatedAddFn) Setup(*sdk.Context) error {
	if f.setups.Add(1) == 2 {
		f.backend.wait()
	}
	return nil
}

// TestLateSideInstanceStartKeepsItsData: a side-input instance that
// starts only once another instance of its stage has written its buffers
// at a barrier restores nothing from them (there is no checkpoint to
// resume here): taken for restored, their watermark made the main
// elements before the barrier late downstream.
func TestLateSideInstanceStartKeepsItsData(t *testing.T) {
	ctx := context.Background()
	main, side := fmt.Sprintf("side-late-main-%p", t), fmt.Sprintf("side-late-side-%p", t)
	src := memory.NewStream(main)
	var vals []any
	for i := range int64(8) {
		vals = append(vals, i*1000) // in the first hour
	}
	vals = append(vals, int64(2*time.Hour/time.Millisecond)) // its watermark closes the first hour
	src.Send(vals...)
	memory.NewBounded(side, int64(0))
	backend := newGatedBackend(nil, state.MetaKey(opID("Add"), sideSnapMeta))
	et := sdk.EventTime(func(v int64) (windowing.Time, error) { return windowing.Time(v), nil })
	p := sdk.NewPipeline()
	view := sdk.AsSingleton(sdk.Read[int64](p, "side", et))
	fn := &gatedAddFn{addFn: addFn{view}, setups: new(atomic.Int32), backend: backend}
	added := sdk.ParDo(sdk.Read[int64](p, "main", et, sdk.OutOfOrderness(time.Minute)), fn, sdk.SideInputs(view), sdk.Named("Add"))
	sdk.Write(sdk.WindowInto(added, windowing.Fixed(time.Hour), sdk.Named("Window")), "out")
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	cfg := Config{Backend: backend, Parallelism: 2, BatchSize: 2, Logger: slog.New(slog.DiscardHandler), Metrics: NewMetrics(),
		Sources: map[string]connector.Source{"main": openInt64s(t, ctx, "main", main), "side": openInt64s(t, ctx, "side", side)},
		Stop:    stop, CheckpointInterval: time.Hour,
		OnCheckpoint: func(int64, bool, SplitStates, map[string][]byte) error { return nil }}
	// ready: the side input's reader has sent everything and ended, and
	// the main input's has sent the watermark that closes the first hour.
	ready := func() bool {
		sideEnded, mainPast := false, false
		cfg.Metrics.readerWM.Range(func(_, v any) bool {
			wm := v.(*atomic.Int64).Load()
			sideEnded = sideEnded || wm == int64(windowing.MaxTime)
			mainPast = mainPast || wm >= int64(time.Hour/time.Millisecond) && wm < int64(windowing.MaxTime)
			return true
		})
		return sideEnded && mainPast
	}
	go func() {
		// The stop's checkpoint comes once both are done.
		for !ready() {
			time.Sleep(time.Millisecond)
		}
		close(stop)
	}()
	if err := Run(ctx, p.Graph(), cfg); err != nil {
		t.Fatal(err)
	}
	if late, written := cfg.Metrics.Late("Window").Load(), cfg.Metrics.Written("out").Load(); late != 0 || written != int64(len(vals)) {
		t.Errorf("%d late, %d written; want none late and all %d written", late, written, len(vals))
	}
}

// openInt64s opens the in-memory stream name as the source of binding, of
// int64 elements.
func openInt64s(t *testing.T, ctx context.Context, binding, name string) connector.Source {
	t.Helper()
	u, err := connector.ParseURI("mem://" + name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: binding, URI: u, Type: reflect.TypeFor[int64]()})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
