package engine

import (
	"fmt"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/weir-dev/weir/windowing"
)

// Which windows a combine or a GroupByKey keeps in memory, and when (the
// panes themselves are checked in testdata/windowop/pending).
func TestPendingWindows(t *testing.T) {
	for _, combine := range []bool{false, true} {
		t.Run(fmt.Sprintf("combine=%v", combine), func(t *testing.T) { testPendingWindows(t, combine) })
	}
}

func testPendingWindows(t *testing.T, combine bool) {
	at := func(m int) windowing.Time { return windowing.Time((time.Duration(m) * time.Minute).Milliseconds()) }
	strategy := func(args ...datadriven.CmdArg) *opHarness {
		d := &datadriven.TestData{CmdArgs: append([]datadriven.CmdArg{{Key: "fn", Vals: []string{"fixed:10m"}}}, args...)}
		return newOpHarness(t, d, combine)
	}
	pending := func(h *opHarness) int { return h.op.pend.held() }

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
	// Past the limit (windows, and grouped values), they all spill.
	h.op.pend.limit = 4
	h.element(t, "e", (at(23)))
	if n := pending(h); n != 0 && !combine {
		t.Fatalf("%d windows pending past the limit, want 0", n)
	}
	h.element(t, "f", (at(24)))
	h.element(t, "g", (at(24)))
	h.element(t, "h", (at(24)))
	if n := pending(h); n != 0 {
		t.Fatalf("%d windows pending past the limit, want 0", n)
	}
	h.watermark(t, (at(30)))
	if len(h.out) != 5 {
		t.Fatalf("panes %q, want d's, e's, f's, g's and h's", h.out)
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
