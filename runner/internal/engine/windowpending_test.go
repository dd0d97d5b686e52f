package engine

import (
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/weir-dev/weir/windowing"
)

// Which windows a combine keeps in memory, and when (the panes themselves
// are checked against a GroupByKey's in testdata/windowop/pending).
func TestPendingWindows(t *testing.T) {
	at := func(m int) windowing.Time { return windowing.Time((time.Duration(m) * time.Minute).Milliseconds()) }
	strategy := func(args ...datadriven.CmdArg) *opHarness {
		d := &datadriven.TestData{CmdArgs: append([]datadriven.CmdArg{{Key: "fn", Vals: []string{"fixed:10m"}}}, args...)}
		return newOpHarness(t, d, true)
	}
	pending := func(h *opHarness) int { return len(h.op.pend.panes) }

	h := strategy()
	h.element(t, "a", (at(2)))
	h.element(t, "b", (at(12)))
	if n := pending(h); n != 2 {
		t.Fatalf("%d windows pending, want 2", n)
	}
	if err := h.op.beforeCheckpoint(); err != nil {
		t.Fatal(err)
	}
	if n := pending(h); n != 0 {
		t.Fatalf("%d windows pending after a checkpoint, want 0", n)
	}
	h.element(t, "c", (at(5)))  // its window may be in the state
	h.element(t, "d", (at(25))) // it ends after every window in the state
	if n := pending(h); n != 1 {
		t.Fatalf("%d windows pending, want 1 (d's)", n)
	}
	h.watermark(t, (at(20)))
	if len(h.out) != 3 {
		t.Fatalf("panes %q, want a's, c's and b's", h.out)
	}
	h.out = nil
	// The state holds no window: new windows are kept in memory again.
	h.element(t, "e", (at(22)))
	if n := pending(h); n != 2 {
		t.Fatalf("%d windows pending, want 2 (d's and e's)", n)
	}

	// Strategies whose windows may fire more than once keep them in the
	// state.
	for _, args := range [][]datadriven.CmdArg{
		{{Key: "early", Vals: []string{"count:2"}}},
		{{Key: "lateness", Vals: []string{"5m"}}},
		{{Key: "late", Vals: []string{"delay:1m"}}},
	} {
		if h := strategy(args...); h.op.pend != nil {
			t.Errorf("%v: windows kept in memory", args)
		}
	}
}
