package engine

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/state"
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
	// A checkpoint keeps them pending, with a copy in the state.
	if err := h.op.beforeCheckpoint(); err != nil {
		t.Fatal(err)
	}
	if n := pending(h); n != 2 {
		t.Fatalf("%d windows pending after a checkpoint, want 2", n)
	}
	h.element(t, "c", (at(5)))
	h.element(t, "d", (at(25)))
	if n := pending(h); n != 4 {
		t.Fatalf("%d windows pending, want 4", n)
	}
	h.watermark(t, (at(20)))
	if len(h.out) != 3 {
		t.Fatalf("panes %q, want a's, c's and b's", h.out)
	}
	h.out = nil
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

// A checkpoint's copy of the pending windows comes back on a restore, into
// the state, once: the restore deletes it.
func TestPendingWindowsRestored(t *testing.T) {
	for _, combine := range []bool{false, true} {
		t.Run(fmt.Sprintf("combine=%v", combine), func(t *testing.T) { testPendingWindowsRestored(t, combine) })
	}
}

func testPendingWindowsRestored(t *testing.T, combine bool) {
	at := func(m int) windowing.Time { return windowing.Time((time.Duration(m) * time.Minute).Milliseconds()) }
	d := &datadriven.TestData{CmdArgs: []datadriven.CmdArg{{Key: "fn", Vals: []string{"sliding:10m/5m"}}}}
	backend := state.NewMem()
	h := newOpHarnessOn(t, d, combine, backend)
	feed := func(h *opHarness) {
		for i, k := range []string{"a", "b", "a", "c", "a", "b"} {
			h.element(t, k, at(3*i))
		}
	}
	feed(h)
	if h.op.pend.held() == 0 {
		t.Fatal("nothing pending")
	}
	if err := h.op.beforeCheckpoint(); err != nil {
		t.Fatal(err)
	}
	if err := h.env.backend.WriteBack(); err != nil {
		t.Fatal(err)
	}
	// The run goes on from the checkpoint in memory; a restored one from
	// the state.
	h.element(t, "a", at(19))
	h.watermark(t, at(40))
	want := h.flush()
	if want == "" {
		t.Fatal("no panes")
	}
	r := newOpHarnessOn(t, d, combine, backend)
	if n := r.op.pend.held(); n != 0 {
		t.Errorf("%d windows pending after a restore, want them in the state", n)
	}
	if n := snapChunks(t, h, backend); n != 0 {
		t.Errorf("%d chunks left after a restore", n)
	}
	if err := r.env.backend.WriteBack(); err != nil {
		t.Fatal(err)
	}
	// Restored again from the same backend: the copy was taken once.
	r2 := newOpHarnessOn(t, d, combine, backend)
	for _, r := range []*opHarness{r, r2} {
		r.element(t, "a", at(19))
		r.watermark(t, at(40))
		if got := r.flush(); got != want {
			t.Errorf("restored panes:\n%s\nwant:\n%s", got, want)
		}
	}
	// Windows after the restored ones are kept in memory again.
	r.element(t, "d", at(50))
	if n := r.op.pend.held(); n == 0 {
		t.Errorf("no window pending after the restored ones, horizon %v", r.op.pend.horizon)
	}
}

// snapChunks counts the pending-window chunks of h's operator in backend.
func snapChunks(t *testing.T, h *opHarness, backend state.Backend) int {
	t.Helper()
	prefix := state.MetaKey(h.env.op, snapMeta)
	keys, err := state.KeysIn(backend, prefix, state.PrefixEnd(prefix))
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}

// Pending windows spill by their estimated memory too: a few large values
// or accumulators do, as many small ones do not.
func TestPendingWindowsBoundedByBytes(t *testing.T) {
	for _, combine := range []bool{false, true} {
		t.Run(fmt.Sprintf("combine=%v", combine), func(t *testing.T) {
			for _, c := range []struct {
				size      int
				wantSpill bool
			}{{10, false}, {8 << 10, true}} {
				d := &datadriven.TestData{CmdArgs: []datadriven.CmdArg{{Key: "fn", Vals: []string{"fixed:10m"}}}}
				h := newOpHarness(t, d, combine)
				h.op.pend.limit, h.op.pend.byteLimit = 1<<30, 32<<10
				spilled := false
				for i := range 16 {
					key := fmt.Sprint("k", i)
					if !combine {
						key = "k" // one window, growing
					}
					h.sized(t, key, strings.Repeat("x", c.size))
					spilled = spilled || h.op.pend.held() == 0
				}
				if spilled != c.wantSpill {
					t.Errorf("values of %d bytes: spilled %v, want %v (estimate %d bytes)", c.size, spilled, c.wantSpill, h.op.pend.bytes())
				}
			}
		})
	}
}

// sized processes an element of key with value v, at 1ms, in [0, 10m).
func (h *opHarness) sized(t *testing.T, key, v string) {
	t.Helper()
	kb := []byte(key)
	s := shuffled{e: graph.Elem{Value: sdk.KV[string, string]{Key: key, Value: v}, Time: 1, Window: windowing.Window{Start: 0, End: 600000}, Pane: windowing.NoFiring},
		key: key, keyBytes: kb, kg: state.KeyGroupOf(kb, h.x.cfg.KeyGroups), n: 1}
	if err := h.op.process(&s); err != nil {
		t.Fatal(err)
	}
}

// A GroupByKey window whose values fill more than a chunk of the
// checkpoint's copy is split over several, none past the chunk size, and
// comes back whole; once it has fired, the next checkpoint leaves none of
// its chunks behind.
func TestPendingWindowSplitOverChunks(t *testing.T) {
	d := &datadriven.TestData{CmdArgs: []datadriven.CmdArg{{Key: "fn", Vals: []string{"fixed:10m"}}}}
	backend := state.NewMem()
	h := newOpHarnessOn(t, d, false, backend)
	h.op.pend.byteLimit = 1 << 30
	for i := range 100 {
		h.sized(t, "k", fmt.Sprintf("%03d%s", i, strings.Repeat("x", 8<<10)))
	}
	h.sized(t, "j", "small")
	if err := h.op.beforeCheckpoint(); err != nil {
		t.Fatal(err)
	}
	kg := state.KeyGroupOf([]byte("k"), h.x.cfg.KeyGroups)
	chunks := func() [][]byte {
		prefix := h.op.snapPrefix(nil, kg)
		it, err := backend.NewIter(prefix, state.PrefixEnd(prefix))
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		var vs [][]byte
		for ok := it.First(); ok; ok = it.Next() {
			vs = append(vs, append([]byte(nil), it.Value()...))
		}
		return vs
	}
	cs := chunks()
	if len(cs) < 3 {
		t.Errorf("%d chunks for 800 KiB of values, want several", len(cs))
	}
	for _, c := range cs {
		if len(c) > snapChunk {
			t.Errorf("a chunk of %d bytes, want at most %d", len(c), snapChunk)
		}
	}
	r := newOpHarnessOn(t, d, false, backend)
	for _, h := range []*opHarness{h, r} {
		h.watermark(t, windowing.Time(600000))
	}
	got, want := r.flush(), h.flush()
	if got != want || !strings.Contains(want, "099x") || !strings.Contains(want, "small") {
		t.Errorf("restored:\n%.300s\nwant:\n%.300s", got, want)
	}

	// Without a restore between them (which deletes the chunks), a
	// checkpoint after the large window fired leaves one chunk of its key
	// group: the small next window's.
	backend = state.NewMem()
	h = newOpHarnessOn(t, d, false, backend)
	h.op.pend.byteLimit = 1 << 30
	for range 100 {
		h.sized(t, "k", strings.Repeat("x", 8<<10))
	}
	for range 2 {
		if err := h.op.beforeCheckpoint(); err != nil {
			t.Fatal(err)
		}
		if n := len(chunks()); n < 3 {
			t.Fatalf("%d chunks, want several", n)
		}
	}
	h.watermark(t, windowing.Time(600000))
	h.element(t, "k", windowing.Time(700000))
	if err := h.op.beforeCheckpoint(); err != nil {
		t.Fatal(err)
	}
	if n := len(chunks()); n != 1 {
		t.Errorf("%d chunks after the large window fired, want 1", n)
	}
}
