package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// TestStaleInputWatermarksDropped: after a rescale from four instances to
// two, the first instance's save drops the watermarks instances 2 and 3
// left, so that a later restore is not held at their old values.
func TestStaleInputWatermarksDropped(t *testing.T) {
	cfg := &Config{Backend: state.NewMem(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.ensureDefaults()
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	x := &executor{cfg: cfg, ctx: ctx, cancel: cancel, plan: &plan{ports: map[portKey]*port{}, senderBase: map[senderKey]int{}}}
	st := &stage{name: "Count", kind: stageKeyed, instances: 2}
	op := opID("Count")
	for i, wm := range []windowing.Time{100, 100, 40, 40} { // the four-instance run's
		k := state.MetaKey(op, inputWMMeta+string(rune('0'+i)))
		if err := cfg.Backend.Set(k, binary.BigEndian.AppendUint64(nil, uint64(wm))); err != nil {
			t.Fatal(err)
		}
	}
	var envs []*keyedEnv
	if got, _ := restoredInputWatermark(cfg.Backend, op); got != 40 {
		t.Fatalf("restored %d before the save, want the lowest saved, 40", got)
	}
	for i := range 2 {
		env, err := newKeyedEnv(newInstance(x, st, i), "Count")
		if err != nil {
			t.Fatal(err)
		}
		env.inputWM = 200
		envs = append(envs, env)
	}
	for _, env := range envs {
		if err := env.saveInputWatermark(); err != nil {
			t.Fatal(err)
		}
		if err := env.backend.WriteBack(); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := restoredInputWatermark(cfg.Backend, op); got != 200 {
		t.Errorf("restored %d after the two-instance run saved 200, want 200 (stale watermarks of instances 2 and 3 kept?)", got)
	}
}

// gatedBackend holds the reads that start at gate until a key with
// prefix until is written (closing written): a stage instance whose
// goroutine starts late (a loaded machine) while another instance of its
// stage passes a barrier.
type gatedBackend struct {
	state.Backend
	gate, until []byte
	written     chan struct{}
	once        sync.Once
}

func newGatedBackend(gate, until []byte) *gatedBackend {
	return &gatedBackend{Backend: state.NewMem(), gate: gate, until: until, written: make(chan struct{})}
}

// wait waits until a key with prefix until is written, for a minute at
// most.
func (b *gatedBackend) wait() {
	select {
	case <-b.written:
	case <-time.After(time.Minute):
	}
}

func (b *gatedBackend) NewIter(lower, upper []byte) (state.Iterator, error) {
	if b.gate != nil && bytes.Equal(lower, b.gate) {
		b.wait()
	}
	return b.Backend.NewIter(lower, upper)
}

func (b *gatedBackend) Set(key, value []byte) error {
	err := b.Backend.Set(key, value)
	if bytes.HasPrefix(key, b.until) {
		b.once.Do(func() { close(b.written) })
	}
	return err
}

// TestLateInstanceStartKeepsItsData: a keyed instance that starts only
// once another instance of its stage has saved its input watermark at a
// barrier still starts from the watermark of the checkpoint it resumes
// (here none), not the other's: taken for restored, it made the data
// before the barrier late (a whole window lost in
// integration.TestReaderEndingDuringACheckpointKeepsItsPositions).
func TestLateInstanceStartKeepsItsData(t *testing.T) {
	ctx := context.Background()
	name := fmt.Sprintf("late-start-%p", t)
	src := memory.NewStream(name)
	const keys = 16
	var vals []any
	for k := range int64(keys) {
		vals = append(vals, k*1000) // in the first hour
	}
	vals = append(vals, int64(2*time.Hour/time.Millisecond)) // its watermark closes the first hour
	src.Send(vals...)
	et := sdk.EventTime(func(v int64) (windowing.Time, error) { return windowing.Time(v), nil })
	p := sdk.NewPipeline()
	in := sdk.WindowInto(sdk.Read[int64](p, "in", et, sdk.OutOfOrderness(time.Minute)), windowing.Fixed(time.Hour), sdk.Named("Window"))
	sdk.Write(sdk.Count(sdk.KeyBy(in, func(v int64) int64 { return v / 1000 % keys }, sdk.Named("Key")), sdk.Named("Count")), "out")
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	// Instance 1's first read (its cache taking over its key groups, in
	// newKeyedEnv) waits until instance 0 has saved its input watermark.
	op := opID("Count")
	lo, hi := state.GroupRange(1, 2, state.DefaultKeyGroups)
	backend := newGatedBackend(state.GroupRanges(op, lo, hi)[0][0], state.MetaKey(op, inputWMMeta+"0"))
	source := openInt64s(t, ctx, "in", name)
	stop := make(chan struct{})
	cfg := Config{Backend: backend, Parallelism: 2, Logger: slog.New(slog.DiscardHandler), Metrics: NewMetrics(),
		Sources: map[string]connector.Source{"in": source}, Stop: stop, CheckpointInterval: time.Hour,
		OnCheckpoint: func(int64, bool, SplitStates, map[string][]byte) error { return nil }}
	go func() {
		// The stop's checkpoint comes once the reader has sent the
		// watermark that closes the first hour: instance 0 fires it,
		// then saves that watermark at the barrier, which lets instance
		// 1 start.
		for cfg.Metrics.SourceWatermark.Load() < int64(time.Hour/time.Millisecond) {
			time.Sleep(time.Millisecond)
		}
		close(stop)
	}()
	if err := Run(ctx, p.Graph(), cfg); err != nil {
		t.Fatal(err)
	}
	if late, written := cfg.Metrics.Late("Count").Load(), cfg.Metrics.Written("out").Load(); late != 0 || written != keys {
		t.Errorf("%d late at the grouping, %d counts written; want none late and the first hour's %d", late, written, keys)
	}
}
