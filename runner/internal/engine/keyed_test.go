package engine

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"testing"

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
	for i := range 2 {
		env, err := newKeyedEnv(newInstance(x, st, i), "Count")
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := env.restoredInputWatermark(); got != 40 {
			t.Fatalf("restored %d before the save, want the lowest saved, 40", got)
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
	env, err := newKeyedEnv(newInstance(x, st, 0), "Count")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := env.restoredInputWatermark(); got != 200 {
		t.Errorf("restored %d after the two-instance run saved 200, want 200 (stale watermarks of instances 2 and 3 kept?)", got)
	}
}
