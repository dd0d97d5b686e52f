// Package statetest is the conformance suite that every state.Backend must
// pass. It checks the contract written on state.Backend and state.Iterator
// (copies, bounds, snapshots, Close), and the state and timer encodings of
// package state working on top of the backend, so that operators may switch
// between the Pebble and memory backends without changing behaviour.
//
// Dependency direction: statetest imports state and testing only; it is
// imported by the tests of backends.
package statetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// Run runs the suite. open returns a new, empty backend. reopen closes b and
// opens the same store again (for an on-disk store, from the same
// directory); it is nil if the backend cannot be reopened, and then the
// reopen tests are skipped.
//
// Checkpoint copies are opened with state.OpenPebble for *state.Pebble and
// state.LoadMem for *state.Mem; for other backends the checkpoint test only
// checks that Checkpoint succeeds and refuses an existing directory.
//
// The suite closes every backend it opens. Run it with -race: it includes
// concurrent writers.
func Run(t *testing.T, open func(t *testing.T) state.Backend, reopen func(t *testing.T, b state.Backend) state.Backend) {
	s := &suite{open: open, reopen: reopen}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"GetSetDelete", s.testGetSetDelete},
		{"Copies", s.testCopies},
		{"DeleteRange", s.testDeleteRange},
		{"IterBounds", s.testIterBounds},
		{"IterContract", s.testIterContract},
		{"IterSnapshot", s.testIterSnapshot},
		{"Timers", s.testTimers},
		{"Cells", s.testCells},
		{"Checkpoint", s.testCheckpoint},
		{"Reopen", s.testReopen},
		{"Closed", s.testClosed},
		{"CloseWithOpenIterator", s.testCloseWithOpenIterator},
		{"Concurrent", s.testConcurrent},
		{"Random", s.testRandom},
		{"Metrics", s.testMetrics},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	open   func(t *testing.T) state.Backend
	reopen func(t *testing.T, b state.Backend) state.Backend
}

// newBackend opens a backend that is closed when the test ends.
func (s *suite) newBackend(t *testing.T) state.Backend {
	t.Helper()
	b := s.open(t)
	t.Cleanup(func() { closeQuietly(t, b) })
	return b
}

// reopenBackend reopens b; the new backend is closed when the test ends.
func (s *suite) reopenBackend(t *testing.T, b state.Backend) state.Backend {
	t.Helper()
	b2 := s.reopen(t, b)
	t.Cleanup(func() { closeQuietly(t, b2) })
	return b2
}

func closeQuietly(t *testing.T, b state.Backend) {
	if err := b.Close(); err != nil && !errors.Is(err, state.ErrClosed) {
		t.Errorf("Close: %v", err)
	}
}

// openCheckpoint opens the copy that b.Checkpoint wrote into dir, or returns
// nil if it does not know how to open copies of b.
func openCheckpoint(t *testing.T, b state.Backend, dir string) state.Backend {
	t.Helper()
	var c state.Backend
	var err error
	switch b.(type) {
	case *state.Pebble:
		c, err = state.OpenPebble(dir, nil)
	case *state.Mem:
		c, err = state.LoadMem(dir)
	default:
		return nil
	}
	if err != nil {
		t.Fatalf("open checkpoint %s: %v", dir, err)
	}
	t.Cleanup(func() { closeQuietly(t, c) })
	return c
}

// kv is a key-value pair, as strings for readable failures.
type kv struct{ k, v string }

func (p kv) String() string { return fmt.Sprintf("%q=%q", p.k, p.v) }

func b(s string) []byte { return []byte(s) }

// optB converts a test bound: "<nil>" is the nil slice.
func optB(s string) []byte {
	if s == nilBound {
		return nil
	}
	return []byte(s)
}

const nilBound = "<nil>"

func mustSet(t *testing.T, be state.Backend, k, v string) {
	t.Helper()
	if err := be.Set(b(k), b(v)); err != nil {
		t.Fatalf("Set(%q): %v", k, err)
	}
}

func mustDelete(t *testing.T, be state.Backend, k string) {
	t.Helper()
	if err := be.Delete(b(k)); err != nil {
		t.Fatalf("Delete(%q): %v", k, err)
	}
}

func checkGet(t *testing.T, be state.Backend, k, want string, wantOK bool) {
	t.Helper()
	got, ok, err := be.Get(b(k))
	if err != nil {
		t.Fatalf("Get(%q): %v", k, err)
	}
	if ok != wantOK || string(got) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q, %v", k, got, ok, want, wantOK)
	}
}

// scan returns the pairs in [lower, upper), checking the iterator contract
// on the way.
func scan(t *testing.T, be state.Backend, lower, upper []byte) []kv {
	t.Helper()
	it, err := be.NewIter(lower, upper)
	if err != nil {
		t.Fatalf("NewIter(%q, %q): %v", lower, upper, err)
	}
	out := drain(t, it)
	if err := it.Close(); err != nil {
		t.Fatalf("iterator Close: %v", err)
	}
	return out
}

// drain positions it with First and collects every pair.
func drain(t *testing.T, it state.Iterator) []kv {
	t.Helper()
	var out []kv
	for ok := it.First(); ok; ok = it.Next() {
		if !it.Valid() {
			t.Fatalf("iterator positioned but not Valid")
		}
		out = append(out, kv{string(it.Key()), string(it.Value())})
	}
	if it.Valid() {
		t.Fatalf("iterator Valid after it returned false")
	}
	if err := it.Error(); err != nil {
		t.Fatalf("iterator Error: %v", err)
	}
	return out
}

// sorted returns the pairs of m in key order.
func sorted(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	slices.SortFunc(out, func(a, b kv) int { return bytes.Compare([]byte(a.k), []byte(b.k)) })
	return out
}

func checkScan(t *testing.T, be state.Backend, lower, upper []byte, want []kv) {
	t.Helper()
	got := scan(t, be, lower, upper)
	if !slices.Equal(got, want) {
		t.Fatalf("scan [%q, %q):\n got %v\nwant %v", lower, upper, got, want)
	}
}

func checkContents(t *testing.T, be state.Backend, want map[string]string) {
	t.Helper()
	checkScan(t, be, nil, nil, sorted(want))
}

func (s *suite) testGetSetDelete(t *testing.T) {
	be := s.newBackend(t)
	steps := []struct {
		op, k, v string // op: set, delete, get (v is the expected value, "" and missing for a miss)
		ok       bool
	}{
		{op: "get", k: "a"},
		{op: "set", k: "a", v: "1"},
		{op: "get", k: "a", v: "1", ok: true},
		{op: "set", k: "a", v: "2"}, // overwrite
		{op: "get", k: "a", v: "2", ok: true},
		{op: "get", k: "a\x00"},
		{op: "get", k: ""},
		{op: "set", k: "\x00", v: "smallest key"},
		{op: "get", k: "\x00", v: "smallest key", ok: true},
		{op: "set", k: "b", v: ""}, // empty value: present
		{op: "get", k: "b", v: "", ok: true},
		{op: "delete", k: "a"},
		{op: "get", k: "a"},
		{op: "delete", k: "a"}, // deleting a missing key is fine
		{op: "delete", k: "never"},
		{op: "set", k: "a", v: "3"}, // set after delete
		{op: "get", k: "a", v: "3", ok: true},
		{op: "get", k: "b", v: "", ok: true},
	}
	for i, st := range steps {
		switch st.op {
		case "set":
			mustSet(t, be, st.k, st.v)
		case "delete":
			mustDelete(t, be, st.k)
		case "get":
			got, ok, err := be.Get(b(st.k))
			if err != nil || ok != st.ok || string(got) != st.v {
				t.Fatalf("step %d: Get(%q) = %q, %v, %v; want %q, %v", i, st.k, got, ok, err, st.v, st.ok)
			}
			if ok && got == nil {
				t.Fatalf("step %d: Get(%q) found the key but returned a nil value", i, st.k)
			}
		}
	}
	checkContents(t, be, map[string]string{"\x00": "smallest key", "a": "3", "b": ""})

	// The empty key is refused, and deleting it is a no-op.
	if err := be.Set(nil, b("v")); !errors.Is(err, state.ErrEmptyKey) {
		t.Fatalf("Set(empty key) = %v, want ErrEmptyKey", err)
	}
	checkGet(t, be, "", "", false)
	mustDelete(t, be, "")

	// A large value round-trips.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	if err := be.Set(b("big"), big); err != nil {
		t.Fatal(err)
	}
	got, ok, err := be.Get(b("big"))
	if err != nil || !ok || !bytes.Equal(got, big) {
		t.Fatalf("Get(big) = %d bytes, %v, %v; want %d bytes", len(got), ok, err, len(big))
	}
}

func (s *suite) testCopies(t *testing.T) {
	be := s.newBackend(t)

	// The store keeps copies of keys and values passed in.
	k, v := b("key"), b("value")
	if err := be.Set(k, v); err != nil {
		t.Fatal(err)
	}
	k[0], v[0] = 'X', 'X'
	checkGet(t, be, "key", "value", true)
	checkGet(t, be, "Xey", "", false)

	// Get returns a copy.
	got, _, err := be.Get(b("key"))
	if err != nil {
		t.Fatal(err)
	}
	got[0] = 'Z'
	_ = append(got[:1], "ZZZZZZZZZZZZZ"...)
	checkGet(t, be, "key", "value", true)

	// Iterator bounds are copied: changing them after NewIter changes
	// nothing.
	mustSet(t, be, "a", "1")
	mustSet(t, be, "m", "2")
	lower, upper := b("a"), b("n")
	it, err := be.NewIter(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	lower[0], upper[0] = 'l', 'b'
	gotKVs := drain(t, it)
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	want := []kv{{"a", "1"}, {"key", "value"}, {"m", "2"}}
	if !slices.Equal(gotKVs, want) {
		t.Fatalf("after changing the bounds: got %v, want %v", gotKVs, want)
	}
}

func (s *suite) testDeleteRange(t *testing.T) {
	keys := []string{"\x00", "a", "b", "b\x00", "ba", "c", "c\xff", "d", "\xff", "\xff\xff"}
	tests := []struct {
		name       string
		start, end string // nilBound for nil
		removed    []string
	}{
		{name: "middle", start: "b", end: "d", removed: []string{"b", "b\x00", "ba", "c", "c\xff"}},
		{name: "start inclusive end exclusive", start: "b\x00", end: "c", removed: []string{"b\x00", "ba"}},
		{name: "single key", start: "c", end: "c\x00", removed: []string{"c"}},
		{name: "empty", start: "b", end: "b"},
		{name: "inverted", start: "d", end: "a"},
		{name: "between keys", start: "bb", end: "bz"},
		{name: "nil start", start: nilBound, end: "b", removed: []string{"\x00", "a"}},
		{name: "empty start", start: "", end: "a\x00", removed: []string{"\x00", "a"}},
		{name: "nil end", start: "d", end: nilBound, removed: []string{"d", "\xff", "\xff\xff"}},
		{name: "everything", start: nilBound, end: nilBound, removed: keys},
		{name: "prefix", start: "b", end: string(state.PrefixEnd(b("b"))), removed: []string{"b", "b\x00", "ba"}},
		{name: "prefix of 0xff", start: "\xff", end: nilBound /* PrefixEnd */, removed: []string{"\xff", "\xff\xff"}},
		{name: "past the end", start: "\xff\xff\x00", end: nilBound},
	}
	if state.PrefixEnd(b("\xff")) != nil {
		t.Fatalf("PrefixEnd(0xff) is not nil")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			be := s.newBackend(t)
			want := map[string]string{}
			for i, k := range keys {
				v := fmt.Sprint(i)
				mustSet(t, be, k, v)
				want[k] = v
			}
			if err := be.DeleteRange(optB(tc.start), optB(tc.end)); err != nil {
				t.Fatalf("DeleteRange: %v", err)
			}
			for _, k := range tc.removed {
				delete(want, k)
			}
			checkContents(t, be, want)
			for _, k := range tc.removed {
				checkGet(t, be, k, "", false)
			}
		})
	}
}

func (s *suite) testIterBounds(t *testing.T) {
	be := s.newBackend(t)
	keys := []string{"\x00", "a", "ab", "abc", "b", "b\xff", "b\xff\xff", "c", "\xff", "\xff\xff"}
	for _, k := range keys {
		mustSet(t, be, k, "v"+k)
	}
	from := func(ks ...string) []kv {
		var out []kv
		for _, k := range ks {
			out = append(out, kv{k, "v" + k})
		}
		return out
	}
	tests := []struct {
		name         string
		lower, upper string
		want         []kv
	}{
		{"unbounded", nilBound, nilBound, from(keys...)},
		{"nil upper", "b", nilBound, from("b", "b\xff", "b\xff\xff", "c", "\xff", "\xff\xff")},
		{"nil lower", nilBound, "ab", from("\x00", "a")},
		{"empty lower", "", "a", from("\x00")},
		{"empty upper", nilBound, "", nil},
		{"lower inclusive upper exclusive", "ab", "b", from("ab", "abc")},
		{"equal bounds", "a", "a", nil},
		{"inverted", "c", "a", nil},
		{"no keys inside", "abd", "b", nil},
		{"past the end", "\xff\xff\x00", nilBound, nil},
		{"prefix a", "a", string(state.PrefixEnd(b("a"))), from("a", "ab", "abc")},
		{"prefix ab", "ab", string(state.PrefixEnd(b("ab"))), from("ab", "abc")},
		{"prefix b 0xff", "b\xff", string(state.PrefixEnd(b("b\xff"))), from("b\xff", "b\xff\xff")},
		{"prefix 0xff", "\xff", nilBound /* PrefixEnd */, from("\xff", "\xff\xff")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			checkScan(t, be, optB(tc.lower), optB(tc.upper), tc.want)
		})
	}
}

func (s *suite) testIterContract(t *testing.T) {
	be := s.newBackend(t)

	// An empty store.
	it, err := be.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if it.Valid() || it.First() || it.Valid() || it.Next() || it.Error() != nil {
		t.Fatalf("iterator over an empty store is positioned or failed: %v", it.Error())
	}
	if err := it.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := it.Close(); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("second Close = %v, want ErrClosed", err)
	}

	mustSet(t, be, "k1", "v1")
	mustSet(t, be, "k2", "v2")
	mustSet(t, be, "k3", "v3")
	it, err = be.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	if it.Valid() {
		t.Fatalf("new iterator is positioned")
	}
	if it.Next() {
		t.Fatalf("Next on an unpositioned iterator returned true")
	}
	expect := func(ok bool, k, v string) {
		t.Helper()
		if !ok || !it.Valid() || string(it.Key()) != k || string(it.Value()) != v {
			t.Fatalf("positioned %v valid %v on %q=%q; want %q=%q", ok, it.Valid(), it.Key(), it.Value(), k, v)
		}
	}
	expect(it.First(), "k1", "v1")
	k1 := append([]byte(nil), it.Key()...)
	expect(it.Next(), "k2", "v2")
	expect(it.Next(), "k3", "v3")
	if it.Next() || it.Valid() {
		t.Fatalf("iterator past the last key is positioned")
	}
	if it.Next() {
		t.Fatalf("Next on an exhausted iterator returned true")
	}
	if err := it.Error(); err != nil {
		t.Fatalf("Error after exhaustion: %v", err)
	}
	// First positions again.
	expect(it.First(), "k1", "v1")
	if !bytes.Equal(k1, it.Key()) {
		t.Fatalf("key changed")
	}
	if err := it.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func (s *suite) testIterSnapshot(t *testing.T) {
	be := s.newBackend(t)
	mustSet(t, be, "a", "1")
	mustSet(t, be, "b", "2")
	mustSet(t, be, "c", "3")
	it, err := be.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Changes after NewIter, even before First, are not visible to it.
	mustSet(t, be, "b", "changed")
	mustSet(t, be, "bb", "new")
	mustDelete(t, be, "a")
	if err := be.DeleteRange(b("c"), nil); err != nil {
		t.Fatal(err)
	}
	want := []kv{{"a", "1"}, {"b", "2"}, {"c", "3"}}
	if got := drain(t, it); !slices.Equal(got, want) {
		t.Fatalf("iterator sees %v, want the snapshot %v", got, want)
	}
	// Still after more writes, on a second pass.
	for i := range 200 {
		mustSet(t, be, fmt.Sprintf("x%03d", i), "x")
	}
	if got := drain(t, it); !slices.Equal(got, want) {
		t.Fatalf("second pass sees %v, want the snapshot %v", got, want)
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	got := scan(t, be, nil, b("x"))
	if want := []kv{{"b", "changed"}, {"bb", "new"}}; !slices.Equal(got, want) {
		t.Fatalf("new iterator sees %v, want %v", got, want)
	}
}

// timerOf builds a timer for the timer tests.
func timerOf(op uint32, kg state.KeyGroup, d state.TimeDomain, key string, w windowing.Window, name string, at windowing.Time) state.Timer {
	return state.Timer{Op: op, KG: kg, Domain: d, Time: at, Key: []byte(key), Window: w, Name: name}
}

func sameTimer(a, b state.Timer) bool {
	return a.Op == b.Op && a.KG == b.KG && a.Domain == b.Domain && a.Time == b.Time &&
		bytes.Equal(a.Key, b.Key) && a.Window == b.Window && a.Name == b.Name
}

func (s *suite) testTimers(t *testing.T) {
	const op = 7
	const kg = state.KeyGroup(3)
	w1 := windowing.Window{Start: 0, End: 10}
	w2 := windowing.Window{Start: 10, End: 20}
	ev, pt := state.EventTime, state.ProcessingTime

	mustSetTimer := func(t *testing.T, be state.Backend, tm state.Timer) {
		t.Helper()
		if err := state.SetTimer(be, tm); err != nil {
			t.Fatalf("SetTimer: %v", err)
		}
	}
	next := func(t *testing.T, be state.Backend, op uint32, kg state.KeyGroup, d state.TimeDomain, upTo windowing.Time) (state.Timer, bool) {
		t.Helper()
		tm, ok, err := state.NextTimer(be, op, kg, d, upTo)
		if err != nil {
			t.Fatalf("NextTimer: %v", err)
		}
		return tm, ok
	}
	// fire pops every timer of (op, kg, d) up to upTo, in order.
	fire := func(t *testing.T, be state.Backend, op uint32, kg state.KeyGroup, d state.TimeDomain, upTo windowing.Time) []state.Timer {
		t.Helper()
		var out []state.Timer
		for {
			tm, ok := next(t, be, op, kg, d, upTo)
			if !ok {
				return out
			}
			out = append(out, tm)
			if err := state.DeleteTimer(be, tm); err != nil {
				t.Fatalf("DeleteTimer: %v", err)
			}
			if len(out) > 1000 {
				t.Fatalf("DeleteTimer did not delete %+v", tm)
			}
		}
	}
	checkFire := func(t *testing.T, got []state.Timer, want ...state.Timer) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("fired %d timers %+v, want %d %+v", len(got), got, len(want), want)
		}
		for i := range got {
			if !sameTimer(got[i], want[i]) {
				t.Fatalf("timer %d = %+v, want %+v", i, got[i], want[i])
			}
		}
	}

	t.Run("Empty", func(t *testing.T) {
		be := s.newBackend(t)
		if _, ok := next(t, be, op, kg, ev, windowing.MaxTime); ok {
			t.Fatalf("NextTimer on an empty store found a timer")
		}
		if at, err := state.EarliestTimer(be, op, kg, ev); err != nil || at != windowing.MaxTime {
			t.Fatalf("EarliestTimer = %v, %v; want MaxTime", at, err)
		}
		if err := state.DeleteTimer(be, timerOf(op, kg, ev, "k", w1, "t", 0)); err != nil {
			t.Fatalf("DeleteTimer of a missing timer: %v", err)
		}
	})

	t.Run("OrderAcrossKeys", func(t *testing.T) {
		be := s.newBackend(t)
		timers := []state.Timer{
			timerOf(op, kg, ev, "b", w1, "t", 30),
			timerOf(op, kg, ev, "a", w1, "t", 20),
			timerOf(op, kg, ev, "c", w1, "t", 10),
			timerOf(op, kg, ev, "a", w1, "u", -5),
			timerOf(op, kg, ev, "a", w2, "t", 20), // other window: a separate timer
			timerOf(op, kg, ev, "", windowing.GlobalWindow, "", windowing.MinTime),
			timerOf(op, kg, ev, "z", w1, "t", windowing.EndOfGlobalWindow),
		}
		for _, tm := range timers {
			mustSetTimer(t, be, tm)
		}
		if at, err := state.EarliestTimer(be, op, kg, ev); err != nil || at != windowing.MinTime {
			t.Fatalf("EarliestTimer = %v, %v; want MinTime", at, err)
		}
		// Same time: ordered by key, then window.
		checkFire(t, fire(t, be, op, kg, ev, math.MaxInt64),
			timers[5], timers[3], timers[2], timers[1], timers[4], timers[0], timers[6])
	})

	t.Run("UpTo", func(t *testing.T) {
		be := s.newBackend(t)
		t10 := timerOf(op, kg, ev, "a", w1, "t", 10)
		t20 := timerOf(op, kg, ev, "b", w1, "t", 20)
		mustSetTimer(t, be, t20)
		mustSetTimer(t, be, t10)
		if tm, ok := next(t, be, op, kg, ev, 9); ok {
			t.Fatalf("NextTimer(upTo 9) = %+v", tm)
		}
		checkFire(t, fire(t, be, op, kg, ev, 10), t10) // upTo is inclusive
		checkFire(t, fire(t, be, op, kg, ev, 19))
		checkFire(t, fire(t, be, op, kg, ev, 20), t20)
	})

	t.Run("SetReplaces", func(t *testing.T) {
		be := s.newBackend(t)
		mustSetTimer(t, be, timerOf(op, kg, ev, "a", w1, "t", 50))
		mustSetTimer(t, be, timerOf(op, kg, ev, "a", w1, "t", 5)) // moves it
		mustSetTimer(t, be, timerOf(op, kg, ev, "a", w1, "t", 5)) // same time again
		at, ok, err := state.TimerTime(be, timerOf(op, kg, ev, "a", w1, "t", 0))
		if err != nil || !ok || at != 5 {
			t.Fatalf("TimerTime = %v, %v, %v; want 5", at, ok, err)
		}
		checkFire(t, fire(t, be, op, kg, ev, windowing.MaxTime), timerOf(op, kg, ev, "a", w1, "t", 5))
		if _, ok, err := state.TimerTime(be, timerOf(op, kg, ev, "a", w1, "t", 0)); err != nil || ok {
			t.Fatalf("TimerTime after DeleteTimer = %v, %v; want not set", ok, err)
		}
		// Moving later works too.
		mustSetTimer(t, be, timerOf(op, kg, ev, "a", w1, "t", 5))
		mustSetTimer(t, be, timerOf(op, kg, ev, "a", w1, "t", 70))
		checkFire(t, fire(t, be, op, kg, ev, windowing.MaxTime), timerOf(op, kg, ev, "a", w1, "t", 70))
	})

	t.Run("DeleteIgnoresTime", func(t *testing.T) {
		be := s.newBackend(t)
		mustSetTimer(t, be, timerOf(op, kg, ev, "a", w1, "t", 50))
		mustSetTimer(t, be, timerOf(op, kg, ev, "a", w1, "other", 60))
		if err := state.DeleteTimer(be, timerOf(op, kg, ev, "a", w1, "t", 12345)); err != nil {
			t.Fatal(err)
		}
		checkFire(t, fire(t, be, op, kg, ev, windowing.MaxTime), timerOf(op, kg, ev, "a", w1, "other", 60))
	})

	t.Run("Separation", func(t *testing.T) {
		// Domains, key groups and operators each have their own timers, even
		// for the same key, window and name.
		be := s.newBackend(t)
		evT := timerOf(op, kg, ev, "a", w1, "t", 100)
		ptT := timerOf(op, kg, pt, "a", w1, "t", 1)
		kgT := timerOf(op, kg+1, ev, "a", w1, "t", 2)
		opT := timerOf(op+1, kg, ev, "a", w1, "t", 3)
		for _, tm := range []state.Timer{evT, ptT, kgT, opT} {
			mustSetTimer(t, be, tm)
		}
		at, err := state.EarliestTimer(be, op, kg, ev)
		if err != nil || at != 100 {
			t.Fatalf("EarliestTimer(event) = %v, %v; want 100", at, err)
		}
		at, err = state.EarliestTimer(be, op, kg, pt)
		if err != nil || at != 1 {
			t.Fatalf("EarliestTimer(processing) = %v, %v; want 1", at, err)
		}
		checkFire(t, fire(t, be, op, kg, ev, windowing.MaxTime), evT)
		checkFire(t, fire(t, be, op, kg, pt, windowing.MaxTime), ptT)
		checkFire(t, fire(t, be, op, kg+1, ev, windowing.MaxTime), kgT)
		checkFire(t, fire(t, be, op+1, kg, ev, windowing.MaxTime), opT)
		checkFire(t, fire(t, be, op, kg-1, ev, windowing.MaxTime))
	})
}

func (s *suite) testCells(t *testing.T) {
	be := s.newBackend(t)
	const op = 3
	keys := [][]byte{{}, b("a"), b("a\x00"), b("ab"), b("b"), {0xff, 0xff}}
	windows := []windowing.Window{
		{Start: 0, End: 10}, {Start: 0, End: 11}, {Start: 10, End: 20},
		{Start: -20, End: -10}, windowing.GlobalWindow,
	}
	names := []string{"", "count", "count2", "bag"}
	subs := [][]byte{nil, b("1"), b("2"), {0xff}}

	type entry struct {
		c   state.Cell
		sub []byte
	}
	var all []entry
	for _, k := range keys {
		kg := state.KeyGroupOf(k, state.DefaultKeyGroups)
		for _, w := range windows {
			for _, n := range names {
				for _, sub := range subs {
					all = append(all, entry{state.Cell{Op: op, KG: kg, Key: k, Window: w, Name: n}, sub})
				}
			}
		}
	}
	// The same cells of another operator must survive the range deletes.
	for _, e := range all {
		if bytes.Equal(e.c.Key, keys[1]) || bytes.Equal(e.c.Key, keys[2]) {
			e.c.Op = op + 1
			all = append(all, e)
		}
	}
	for i, e := range all {
		if err := be.Set(append(state.AppendCell(nil, e.c), e.sub...), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}

	// Round trip: every stored key decodes to its cell.
	decodeAll := func() map[string]bool {
		seen := map[string]bool{}
		it, err := be.NewIter(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			c, sub, err := state.DecodeCell(it.Key())
			if err != nil {
				t.Fatalf("DecodeCell(%x): %v", it.Key(), err)
			}
			i, err := strconv.Atoi(string(it.Value()))
			if err != nil || i < 0 || i >= len(all) {
				t.Fatalf("value %q under key %x is not one of the test's", it.Value(), it.Key())
			}
			e := all[i]
			if c.Op != e.c.Op || c.KG != e.c.KG || !bytes.Equal(c.Key, e.c.Key) || c.Window != e.c.Window ||
				c.Name != e.c.Name || !bytes.Equal(sub, e.sub) {
				t.Fatalf("key %x decodes to %+v sub %q, want %+v sub %q", it.Key(), c, sub, e.c, e.sub)
			}
			seen[string(it.Value())] = true
		}
		if err := it.Error(); err != nil {
			t.Fatal(err)
		}
		return seen
	}
	if seen := decodeAll(); len(seen) != len(all) {
		t.Fatalf("stored %d cells, found %d", len(all), len(seen))
	}

	// Deleting one window of one key clears exactly its cells.
	target := keys[1] // "a": "a\x00" and "ab" share its bytes
	targetW := windows[0]
	kg := state.KeyGroupOf(target, state.DefaultKeyGroups)
	prefix := state.AppendWindowPrefix(nil, op, kg, target, targetW)
	if err := be.DeleteRange(prefix, state.PrefixEnd(prefix)); err != nil {
		t.Fatal(err)
	}
	seen := decodeAll()
	for i, e := range all {
		gone := e.c.Op == op && bytes.Equal(e.c.Key, target) && e.c.Window == targetW
		if seen[fmt.Sprint(i)] == gone {
			t.Errorf("cell %+v sub %q: present %v after deleting window %v of key %q", e.c, e.sub, !gone, targetW, target)
		}
	}

	// Deleting one key clears all its windows and nothing else.
	target = keys[2]
	kg = state.KeyGroupOf(target, state.DefaultKeyGroups)
	prefix = state.AppendKeyPrefix(nil, op, kg, target)
	if err := be.DeleteRange(prefix, state.PrefixEnd(prefix)); err != nil {
		t.Fatal(err)
	}
	seen = decodeAll()
	for i, e := range all {
		gone := e.c.Op == op && (bytes.Equal(e.c.Key, target) ||
			bytes.Equal(e.c.Key, keys[1]) && e.c.Window == targetW)
		if seen[fmt.Sprint(i)] == gone {
			t.Errorf("cell %+v sub %q: present %v after deleting key %q", e.c, e.sub, !gone, target)
		}
	}
}

func (s *suite) testCheckpoint(t *testing.T) {
	be := s.newBackend(t)
	before := map[string]string{"a": "1", "b": "2", "c": "3"}
	for k, v := range before {
		mustSet(t, be, k, v)
	}
	tm := timerOf(1, 2, state.EventTime, "k", windowing.GlobalWindow, "t", 42)
	if err := state.SetTimer(be, tm); err != nil {
		t.Fatal(err)
	}
	before = contents(t, be) // with the timer keys

	dir := filepath.Join(t.TempDir(), "checkpoint")
	if err := be.Checkpoint(dir); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	// Mutate after the checkpoint.
	mustSet(t, be, "a", "changed")
	mustDelete(t, be, "b")
	mustSet(t, be, "d", "4")
	if err := state.DeleteTimer(be, tm); err != nil {
		t.Fatal(err)
	}
	after := contents(t, be)

	if err := be.Checkpoint(dir); !errors.Is(err, state.ErrCheckpointExists) {
		t.Fatalf("Checkpoint into an existing checkpoint = %v, want ErrCheckpointExists", err)
	}
	if err := be.Checkpoint(t.TempDir()); !errors.Is(err, state.ErrCheckpointExists) {
		t.Fatalf("Checkpoint into an existing empty directory = %v, want ErrCheckpointExists", err)
	}

	c := openCheckpoint(t, be, dir)
	if c == nil {
		t.Logf("no way to open a checkpoint of %T; only checked that it was written", be)
		return
	}
	checkContents(t, c, before)
	if at, err := state.EarliestTimer(c, 1, 2, state.EventTime); err != nil || at != 42 {
		t.Fatalf("checkpoint's EarliestTimer = %v, %v; want 42", at, err)
	}
	// The copy is independent of the store, both ways.
	mustSet(t, c, "e", "5")
	checkContents(t, be, after)
	mustSet(t, be, "f", "6")
	checkGet(t, c, "f", "", false)

	// A checkpoint of an empty store opens as an empty store.
	empty := s.newBackend(t)
	dir = filepath.Join(t.TempDir(), "nested", "checkpoint")
	if err := empty.Checkpoint(dir); err != nil {
		t.Fatalf("Checkpoint of an empty store: %v", err)
	}
	checkContents(t, openCheckpoint(t, empty, dir), nil)
}

func contents(t *testing.T, be state.Backend) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, p := range scan(t, be, nil, nil) {
		m[p.k] = p.v
	}
	return m
}

func (s *suite) testReopen(t *testing.T) {
	if s.reopen == nil {
		t.Skip("backend cannot be reopened")
	}
	be := s.newBackend(t)
	want := map[string]string{}
	for i := range 2000 {
		k, v := fmt.Sprintf("key%05d", i), fmt.Sprintf("value%d", i)
		mustSet(t, be, k, v)
		want[k] = v
	}
	for i := 0; i < 2000; i += 7 {
		k := fmt.Sprintf("key%05d", i)
		mustDelete(t, be, k)
		delete(want, k)
	}
	if err := be.DeleteRange(b("key00100"), b("key00200")); err != nil {
		t.Fatal(err)
	}
	for k := range want {
		if k >= "key00100" && k < "key00200" {
			delete(want, k)
		}
	}
	mustSet(t, be, "key00150", "rewritten")
	want["key00150"] = "rewritten"
	tm := timerOf(1, 2, state.ProcessingTime, "k", windowing.GlobalWindow, "t", 42)
	if err := state.SetTimer(be, tm); err != nil {
		t.Fatal(err)
	}

	// Without Flush: Close alone must keep everything.
	be = s.reopenBackend(t, be)
	want = mergeTimerKeys(t, be, want)
	checkContents(t, be, want)
	if at, err := state.EarliestTimer(be, 1, 2, state.ProcessingTime); err != nil || at != 42 {
		t.Fatalf("EarliestTimer after reopen = %v, %v; want 42", at, err)
	}

	// Write more, Flush, reopen again.
	mustSet(t, be, "after", "reopen")
	want["after"] = "reopen"
	if err := be.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
	be = s.reopenBackend(t, be)
	checkContents(t, be, want)
}

// mergeTimerKeys adds the keys that are not "key..." or "after" (the timer's)
// found in be to want, so that contents can be compared exactly.
func mergeTimerKeys(t *testing.T, be state.Backend, want map[string]string) map[string]string {
	t.Helper()
	n := 0
	for k, v := range contents(t, be) {
		if len(k) > 0 && (k[0] == 't' || k[0] == 'u') {
			want[k] = v
			n++
		}
	}
	if n != 2 {
		t.Fatalf("found %d timer keys, want 2 (timer and index)", n)
	}
	return want
}

func (s *suite) testClosed(t *testing.T) {
	be := s.newBackend(t)
	mustSet(t, be, "a", "1")
	if err := be.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	checkClosed := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, state.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", what, err)
		}
	}
	_, _, err := be.Get(b("a"))
	checkClosed("Get", err)
	checkClosed("Set", be.Set(b("a"), b("2")))
	checkClosed("Delete", be.Delete(b("a")))
	checkClosed("DeleteRange", be.DeleteRange(b("a"), b("b")))
	_, err = be.NewIter(nil, nil)
	checkClosed("NewIter", err)
	checkClosed("Checkpoint", be.Checkpoint(filepath.Join(t.TempDir(), "c")))
	checkClosed("Flush", be.Flush())
	checkClosed("Close", be.Close())
	tm := timerOf(1, 2, state.EventTime, "k", windowing.GlobalWindow, "t", 1)
	checkClosed("SetTimer", state.SetTimer(be, tm))
	_, _, err = state.NextTimer(be, 1, 2, state.EventTime, windowing.MaxTime)
	checkClosed("NextTimer", err)
	if m := be.Metrics(); m.Keys != -1 {
		t.Errorf("Metrics after Close = %+v, want Keys -1", m)
	}
}

func (s *suite) testCloseWithOpenIterator(t *testing.T) {
	be := s.newBackend(t)
	mustSet(t, be, "a", "1")
	mustSet(t, be, "b", "2")
	closed, err := be.NewIter(nil, nil) // closed properly: not reported
	if err != nil {
		t.Fatal(err)
	}
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	leaked, err := be.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !leaked.First() {
		t.Fatalf("First: %v", leaked.Error())
	}
	if err := be.Close(); err == nil {
		t.Fatalf("Close with an open iterator returned no error")
	}
	if leaked.Valid() || leaked.First() || leaked.Next() {
		t.Fatalf("iterator positioned after its store closed")
	}
	if err := leaked.Error(); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Error = %v, want ErrClosed", err)
	}
	if err := leaked.Close(); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Close = %v, want ErrClosed", err)
	}
}

func (s *suite) testConcurrent(t *testing.T) {
	be := s.newBackend(t)
	const writers = 4
	const ops = 400
	var wg sync.WaitGroup
	errs := make(chan error, writers+2)
	models := make([]map[string]string, writers)
	for w := range writers {
		models[w] = map[string]string{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- concurrentWriter(be, w, ops, models[w])
		}()
	}
	// A reader scanning everything and a checkpoint, during the writes.
	stop := make(chan struct{})
	var rwg sync.WaitGroup
	rwg.Add(1)
	go func() {
		defer rwg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			it, err := be.NewIter(nil, nil)
			if err != nil {
				errs <- err
				return
			}
			var prev []byte
			var order error
			for ok := it.First(); ok && order == nil; ok = it.Next() {
				if prev != nil && bytes.Compare(prev, it.Key()) >= 0 {
					order = fmt.Errorf("keys out of order: %q then %q", prev, it.Key())
				}
				prev = append(prev[:0], it.Key()...)
			}
			if err := errors.Join(order, it.Close()); err != nil {
				errs <- err
				return
			}
			_ = be.Metrics()
		}
	}()
	if err := be.Checkpoint(filepath.Join(t.TempDir(), "c")); err != nil {
		t.Errorf("Checkpoint during writes: %v", err)
	}
	wg.Wait()
	close(stop)
	rwg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	all := map[string]string{}
	for _, m := range models {
		for k, v := range m {
			all[k] = v
		}
	}
	checkContents(t, be, all)
}

// concurrentWriter works on the keys with prefix "w<w>/", keeping model in
// step, and checks its own range as it goes.
func concurrentWriter(be state.Backend, w, ops int, model map[string]string) error {
	prefix := fmt.Sprintf("w%d/", w)
	rng := rand.New(rand.NewPCG(uint64(w), 1))
	key := func() string { return fmt.Sprintf("%s%03d", prefix, rng.IntN(100)) }
	for i := range ops {
		switch r := rng.IntN(10); {
		case r < 6:
			k, v := key(), fmt.Sprint(i)
			if err := be.Set([]byte(k), []byte(v)); err != nil {
				return err
			}
			model[k] = v
		case r < 8:
			k := key()
			if err := be.Delete([]byte(k)); err != nil {
				return err
			}
			delete(model, k)
		case r < 9:
			lo, hi := key(), key()
			if err := be.DeleteRange([]byte(lo), []byte(hi)); err != nil {
				return err
			}
			for k := range model {
				if k >= lo && k < hi {
					delete(model, k)
				}
			}
		default:
			k := key()
			v, ok, err := be.Get([]byte(k))
			if err != nil {
				return err
			}
			if want, wantOK := model[k]; ok != wantOK || string(v) != want {
				return fmt.Errorf("writer %d: Get(%q) = %q, %v; want %q, %v", w, k, v, ok, want, wantOK)
			}
		}
		if i%50 == 0 {
			it, err := be.NewIter([]byte(prefix), state.PrefixEnd([]byte(prefix)))
			if err != nil {
				return err
			}
			n := 0
			for ok := it.First(); ok; ok = it.Next() {
				if want, ok := model[string(it.Key())]; !ok || want != string(it.Value()) {
					it.Close()
					return fmt.Errorf("writer %d: scan found %q=%q, model has %q, %v", w, it.Key(), it.Value(), want, ok)
				}
				n++
			}
			if err := it.Close(); err != nil {
				return err
			}
			if n != len(model) {
				return fmt.Errorf("writer %d: scan found %d keys, model has %d", w, n, len(model))
			}
		}
	}
	return nil
}

// testRandom runs random operations against a map model, comparing scans
// with random bounds, and keeps old iterators to check their snapshots.
func (s *suite) testRandom(t *testing.T) {
	be := s.newBackend(t)
	rng := rand.New(rand.NewPCG(1, 2))
	const space = 1500
	key := func() string {
		if rng.IntN(20) == 0 {
			return fmt.Sprintf("k%04d\xff", rng.IntN(space))
		}
		return fmt.Sprintf("k%04d", rng.IntN(space))
	}
	model := map[string]string{}
	type snap struct {
		it   state.Iterator
		want []kv
	}
	var snaps []snap
	defer func() {
		for _, sn := range snaps {
			sn.it.Close()
		}
	}()
	for i := range 6000 {
		switch r := rng.IntN(100); {
		case r < 60:
			k, v := key(), fmt.Sprint(i)
			mustSet(t, be, k, v)
			model[k] = v
		case r < 90:
			k := key()
			mustDelete(t, be, k)
			delete(model, k)
		case r < 92:
			lo, hi := key(), key()
			if err := be.DeleteRange([]byte(lo), []byte(hi)); err != nil {
				t.Fatal(err)
			}
			for k := range model {
				if k >= lo && k < hi {
					delete(model, k)
				}
			}
		case r < 97:
			lo, hi := key(), key()
			var want []kv
			for _, p := range sorted(model) {
				if p.k >= lo && p.k < hi {
					want = append(want, p)
				}
			}
			checkScan(t, be, []byte(lo), []byte(hi), want)
		default:
			k := key()
			v, ok := model[k]
			checkGet(t, be, k, v, ok)
		}
		if i%1000 == 0 {
			it, err := be.NewIter(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			snaps = append(snaps, snap{it, sorted(model)})
		}
	}
	checkContents(t, be, model)
	for i, sn := range snaps {
		if got := drain(t, sn.it); !slices.Equal(got, sn.want) {
			t.Fatalf("snapshot %d: iterator sees %d keys, want %d", i, len(got), len(sn.want))
		}
	}
}

func (s *suite) testMetrics(t *testing.T) {
	be := s.newBackend(t)
	for i := range 1000 {
		mustSet(t, be, fmt.Sprintf("key%04d", i), "value")
	}
	if err := be.Flush(); err != nil {
		t.Fatal(err)
	}
	m := be.Metrics()
	if m.Keys < -1 || m.DiskBytes < 0 || m.MemBytes < 0 {
		t.Fatalf("Metrics = %+v: negative sizes", m)
	}
	if m.Keys > 1000 {
		// An estimate may count versions, but there is only one of each
		// key here.
		t.Fatalf("Metrics.Keys = %d for 1000 keys", m.Keys)
	}
}
