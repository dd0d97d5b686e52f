package engine

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// at is the time m minutes after the epoch.
func at(m int) windowing.Time { return windowing.Time((time.Duration(m) * time.Minute).Milliseconds()) }

// Which windows a combine or a GroupByKey keeps in memory, and when (the
// panes themselves are checked in testdata/windowop/pending).
func TestPendingWindows(t *testing.T) {
	for _, combine := range []bool{false, true} {
		t.Run(fmt.Sprintf("combine=%v", combine), func(t *testing.T) { testPendingWindows(t, combine) })
	}
}

func testPendingWindows(t *testing.T, combine bool) {
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

// A spill empties the pending set's index of keys too: a key pending
// before a spill and again after it gets one pane per window, and the
// index is empty once they have fired.
func TestPendingKeysAfterSpill(t *testing.T) {
	for _, combine := range []bool{false, true} {
		t.Run(fmt.Sprintf("combine=%v", combine), func(t *testing.T) {
			h := newOpHarness(t, &datadriven.TestData{CmdArgs: []datadriven.CmdArg{{Key: "fn", Vals: []string{"fixed:10m"}}}}, combine)
			h.op.pend.limit = 0
			h.element(t, "a", at(2))
			if n := h.op.pend.held(); n != 0 {
				t.Fatalf("%d windows pending past the limit, want 0", n)
			}
			h.op.pend.limit = pendingLimit
			h.element(t, "a", at(12))
			h.element(t, "b", at(13))
			h.element(t, "a", at(14))
			if n := h.op.pend.held(); n != 2 {
				t.Fatalf("%d windows pending, want 2 (a's and b's of [10m, 20m))", n)
			}
			h.watermark(t, at(30))
			want := []string{ // by key group first: b's is the lower
				"pane b [10m0s,20m0s) on-time#0,first,last at=19m59.999s: [b@13m0s]",
				"pane a [0s,10m0s) on-time#0,first,last at=9m59.999s: [a@2m0s]",
				"pane a [10m0s,20m0s) on-time#0,first,last at=19m59.999s: [a@12m0s a@14m0s]",
			}
			if got := h.flush(); got != strings.Join(want, "\n")+"\n" {
				t.Fatalf("panes:\n%swant:\n%s", got, strings.Join(want, "\n"))
			}
			if n := len(h.op.pend.keys); n != 0 {
				t.Fatalf("%d keys indexed with no window pending", n)
			}
		})
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

// Once the windows of many keys have fired, the index of keys is made anew
// at its new size: a map does not shrink.
func TestPendingKeysIndexShrinks(t *testing.T) {
	h := newOpHarness(t, &datadriven.TestData{CmdArgs: []datadriven.CmdArg{{Key: "fn", Vals: []string{"fixed:10m"}}}}, true)
	h.op.pend.limit, h.op.pend.byteLimit = pendingLimit, 1<<30
	const keys = 5000
	for i := range keys {
		h.element(t, fmt.Sprint("k", i), at(1))
	}
	h.element(t, "late", at(11))
	if got := h.op.pend.keysPeak; got != keys+1 {
		t.Fatalf("peak of %d keys, want %d", got, keys+1)
	}
	h.watermark(t, at(10))
	if n := len(h.out); n != keys {
		t.Fatalf("%d panes fired, want %d", n, keys)
	}
	if n, peak := len(h.op.pend.keys), h.op.pend.keysPeak; n != 1 || peak != 1 {
		t.Fatalf("%d keys indexed, peak %d; want 1 and 1 (made anew)", n, peak)
	}
	h.watermark(t, at(20))
	if n := len(h.out); n != keys+1 {
		t.Fatalf("%d panes fired, want %d", n, keys+1)
	}
}

// BenchmarkPendingManyWindows adds elements of two keys, 30s apart, to
// sliding windows of an hour every minute, with no watermark to fire them:
// each element is in 60 windows, and each key ends with about 1,500
// pending, among which its pane for a window is found.
func BenchmarkPendingManyWindows(b *testing.B) {
	d := &datadriven.TestData{CmdArgs: []datadriven.CmdArg{{Key: "fn", Vals: []string{"sliding:60m/1m"}}}}
	keys := []string{"a", "b"}
	for b.Loop() {
		b.StopTimer()
		h := newOpHarness(b, d, false)
		h.op.pend.limit, h.op.pend.byteLimit = pendingLimit, 1<<30
		b.StartTimer()
		for i := range 6000 {
			h.element(b, keys[i%len(keys)], windowing.Time(int64(i/2)*int64(30*time.Second/time.Millisecond)))
		}
	}
}

// The pending path fires the same panes, in the same order, as the state
// path, for random elements of a few keys in sliding windows of 20 (more
// than manyPanes per key), random watermarks, and a pending set that
// sometimes spills.
func TestPendingMatchesState(t *testing.T) {
	for seed := range uint64(20) {
		for _, combine := range []bool{false, true} {
			t.Run(fmt.Sprintf("seed=%d/combine=%v", seed, combine), func(t *testing.T) {
				d := &datadriven.TestData{CmdArgs: []datadriven.CmdArg{{Key: "fn", Vals: []string{"sliding:20m/1m"}}}}
				pend, plain := newOpHarness(t, d, combine), newOpHarness(t, d, combine)
				plain.op.pend = nil
				pend.op.pend.limit, pend.op.pend.byteLimit = pendingLimit, 1<<30
				if seed%4 == 3 {
					pend.op.pend.limit = 200 // spills now and then
				}
				r := rand.New(rand.NewPCG(seed, 1))
				wm := windowing.Time(0)
				for step := range 300 {
					if r.IntN(10) == 0 {
						wm += windowing.Time(r.IntN(5)) * windowing.Time(time.Minute/time.Millisecond)
						pend.watermark(t, wm)
						plain.watermark(t, wm)
					} else {
						key := string(rune('a' + r.IntN(3)))
						ts := wm + windowing.Time(r.Int64N(int64(15*time.Minute/time.Millisecond)))
						pend.element(t, key, ts)
						plain.element(t, key, ts)
					}
					if got, want := pend.flush(), plain.flush(); got != want {
						t.Fatalf("step %d: pending path fired\n%swant (state path)\n%s", step, got, want)
					}
				}
				end := wm + windowing.Time(time.Hour/time.Millisecond)
				pend.watermark(t, end)
				plain.watermark(t, end)
				if got, want := pend.flush(), plain.flush(); got != want {
					t.Fatalf("at the end: pending path fired\n%swant (state path)\n%s", got, want)
				}
				if n := len(pend.op.pend.keys); n != 0 {
					t.Fatalf("%d keys indexed after every window fired", n)
				}
			})
		}
	}
}
