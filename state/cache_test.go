package state_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// scanRange returns the contents of b in [lower, upper) as key=value lines.
func scanRange(t *testing.T, b state.Backend, lower, upper []byte) string {
	t.Helper()
	it, err := b.NewIter(lower, upper)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for ok := it.First(); ok; ok = it.Next() {
		fmt.Fprintf(&out, "%s=%s\n", it.Key(), it.Value())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// TestCacheModel runs random operations on a cache in front of a store and,
// side by side, on a plain store, and checks that every read agrees, with
// budgets small enough to spill often, and that after WriteBack the store
// behind the cache holds exactly what the plain store holds.
func TestCacheModel(t *testing.T) {
	for _, budget := range []int64{1, 600, 1 << 20} {
		for _, backend := range []string{"mem", "pebble"} {
			t.Run(fmt.Sprintf("%s/budget=%d", backend, budget), func(t *testing.T) {
				var under state.Backend = state.NewMem()
				if backend == "pebble" {
					p, err := state.OpenPebble(t.TempDir(), nil)
					if err != nil {
						t.Fatal(err)
					}
					under = p
				}
				defer under.Close()
				model := state.NewMem()
				defer model.Close()
				c := state.NewCache(under, budget)
				r := rand.New(rand.NewPCG(uint64(budget), 7))
				key := func() []byte { return fmt.Appendf(nil, "k%02d", r.IntN(40)) }
				for step := range 5000 {
					switch op := r.IntN(100); {
					case op < 35:
						k, v := key(), fmt.Appendf(nil, "v%d", step)
						if err := c.Set(k, v); err != nil {
							t.Fatal(err)
						}
						model.Set(k, v)
					case op < 55:
						k := key()
						if err := c.Delete(k); err != nil {
							t.Fatal(err)
						}
						model.Delete(k)
					case op < 57:
						lo, hi := key(), key()
						if err := c.DeleteRange(lo, hi); err != nil {
							t.Fatal(err)
						}
						model.DeleteRange(lo, hi)
					case op < 80:
						k := key()
						got, ok, err := c.Get(k)
						want, wok, _ := model.Get(k)
						if err != nil || ok != wok || !bytes.Equal(got, want) {
							t.Fatalf("step %d: Get(%s) = %q, %v, %v; want %q, %v", step, k, got, ok, err, want, wok)
						}
					case op < 95:
						lo, hi := key(), key()
						if r.IntN(4) == 0 {
							hi = nil
						}
						if got, want := scanRange(t, c, lo, hi), scanRange(t, model, lo, hi); got != want {
							t.Fatalf("step %d: scan [%s, %s):\n%s\nwant\n%s", step, lo, hi, got, want)
						}
					case op < 97:
						// Writes while an iterator is open are not seen by it.
						it, err := c.NewIter(nil, nil)
						if err != nil {
							t.Fatal(err)
						}
						before := scanRange(t, model, nil, nil)
						write := func() {
							for range 5 {
								k := key()
								c.Set(k, []byte("during"))
								model.Set(k, []byte("during"))
								k = key()
								c.Delete(k)
								model.Delete(k)
							}
						}
						// Write before First, or after a few steps, then
						// walk again from First.
						skip := r.IntN(5)
						if skip == 0 {
							write()
						}
						var got bytes.Buffer
						for pass := range 2 {
							got.Reset()
							n := 0
							for ok := it.First(); ok; ok = it.Next() {
								if n++; pass == 0 && n == skip {
									write()
								}
								fmt.Fprintf(&got, "%s=%s\n", it.Key(), it.Value())
							}
							if got.String() != before {
								t.Fatalf("step %d pass %d: iterator saw later writes:\n%s\nwant\n%s", step, pass, got.String(), before)
							}
						}
						if err := it.Close(); err != nil {
							t.Fatal(err)
						}
					default:
						if err := c.WriteBack(); err != nil {
							t.Fatal(err)
						}
						if got, want := scanRange(t, under, nil, nil), scanRange(t, model, nil, nil); got != want {
							t.Fatalf("step %d: backend after WriteBack:\n%s\nwant\n%s", step, got, want)
						}
					}
					if budget > 1 && c.Bytes() > budget+200 {
						t.Fatalf("step %d: cache holds %d bytes, budget %d", step, c.Bytes(), budget)
					}
				}
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
				if got, want := scanRange(t, under, nil, nil), scanRange(t, model, nil, nil); got != want {
					t.Fatalf("backend after Close:\n%s\nwant\n%s", got, want)
				}
			})
		}
	}
}

// latestLog is a ChangeLog that keeps the latest change per key.
type latestLog map[string]string

func (l latestLog) Changed(key, value []byte) error {
	if value == nil {
		delete(l, string(key))
	} else {
		l[string(key)] = string(value)
	}
	return nil
}

// TestCacheLogged checks that a changelog behind the cache agrees with the
// backend at every write-back, and that short-lived keys never reach it.
func TestCacheLogged(t *testing.T) {
	mem := state.NewMem()
	defer mem.Close()
	log := latestLog{}
	c := state.NewCache(state.Logged(mem, log), 0)
	c.Set([]byte("a"), []byte("1"))
	c.Set([]byte("a"), []byte("2"))
	c.Set([]byte("b"), []byte("x"))
	if len(log) != 0 {
		t.Fatalf("log before WriteBack = %v", log)
	}
	if err := c.WriteBack(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(log) != "map[a:2 b:x]" {
		t.Fatalf("log = %v", log)
	}
	c.Delete([]byte("b"))
	c.Get([]byte("tmp")) // known missing below
	c.Set([]byte("tmp"), []byte("t"))
	c.Delete([]byte("tmp"))
	if err := c.WriteBack(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(log) != "map[a:2]" {
		t.Fatalf("log = %v", log)
	}
	if got := scanRange(t, mem, nil, nil); got != "a=2\n" {
		t.Fatalf("backend = %q", got)
	}
}

// TestCacheTimers runs timers through the cache: the search for the next
// timer sees timers set and deleted in the cache.
func TestCacheTimers(t *testing.T) {
	mem := state.NewMem()
	defer mem.Close()
	w := windowing.Window{Start: 0, End: 10}
	set := func(b state.Backend, key string, at windowing.Time) {
		t.Helper()
		if err := state.SetTimer(b, state.Timer{Op: 1, KG: 2, Domain: state.EventTime, Time: at, Key: []byte(key), Window: w, Name: "eow"}); err != nil {
			t.Fatal(err)
		}
	}
	set(mem, "a", 5)
	set(mem, "b", 7)
	c := state.NewCache(mem, 0)
	set(c, "a", 9) // moves a's timer past b's
	set(c, "c", 6)
	var got []string
	for {
		tm, ok, err := state.NextTimer(c, 1, 2, state.EventTime, windowing.MaxTime)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		got = append(got, fmt.Sprintf("%s@%d", tm.Key, tm.Time))
		if err := state.DeleteTimer(c, tm); err != nil {
			t.Fatal(err)
		}
	}
	if fmt.Sprint(got) != "[c@6 b@7 a@9]" {
		t.Fatalf("timers fired %v", got)
	}
	if err := c.WriteBack(); err != nil {
		t.Fatal(err)
	}
	if got := scanRange(t, mem, nil, nil); got != "" {
		t.Fatalf("backend after the timers fired = %q", got)
	}
}

// BenchmarkCacheWindowOps mimics the window operator on the cache: per
// element the trigger state and accumulator of one of 20k live key-windows
// are read and written; every tenth element one key-window is retired
// (deleted) and a new one starts (read as missing, then written).
func BenchmarkCacheWindowOps(b *testing.B) {
	mem := state.NewMem()
	defer mem.Close()
	c := state.NewCache(mem, 0)
	const live = 20000
	cell := func(i int, name string) []byte {
		return state.AppendCell(nil, state.Cell{Op: 7, KG: state.KeyGroup(i % 128), Key: fmt.Appendf(nil, "%08d", i),
			Window: windowing.Window{Start: windowing.Time(i / 5), End: windowing.Time(i/5 + 10)}, Name: name})
	}
	var tk, ak [][]byte
	for i := range live {
		tk, ak = append(tk, cell(i, "t")), append(ak, cell(i, "a"))
		c.Set(tk[i], make([]byte, 25))
		c.Set(ak[i], make([]byte, 8))
	}
	r := rand.New(rand.NewPCG(1, 2))
	next, oldest := live, 0
	val := make([]byte, 25)
	b.ResetTimer()
	for n := range b.N {
		i := oldest + r.IntN(live)
		j := i % live
		c.Get(tk[j])
		c.Get(ak[j])
		c.Set(ak[j], val[:8])
		c.Set(tk[j], val)
		if n%10 == 0 {
			j := oldest % live
			c.Delete(tk[j])
			c.Delete(ak[j])
			tk[j], ak[j] = cell(next, "t"), cell(next, "a")
			c.Get(tk[j])
			c.Set(tk[j], val)
			c.Set(ak[j], val[:8])
			next++
			oldest++
		}
	}
}

// TestCacheShortLivedTimer checks that a timer set and deleted between two
// write-backs never reaches the backend (not even as a deletion), and that
// one set again after its deletion was written back is deleted there.
func TestCacheShortLivedTimer(t *testing.T) {
	mem := state.NewMem()
	defer mem.Close()
	log := latestLog{}
	changes := 0
	counting := changeFunc(func(k, v []byte) error { changes++; return log.Changed(k, v) })
	c := state.NewCache(state.Logged(mem, counting), 0)
	tm := state.Timer{Op: 1, KG: 2, Domain: state.EventTime, Time: 5, Key: []byte("k"), Window: windowing.GlobalWindow, Name: "eow"}
	if err := state.SetTimer(c, tm); err != nil {
		t.Fatal(err)
	}
	if err := state.DeleteTimer(c, tm); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteBack(); err != nil {
		t.Fatal(err)
	}
	if changes != 0 {
		t.Fatalf("%d changes reached the backend for a timer that lived between write-backs", changes)
	}
	// Written back, then deleted and set again at the same time, then
	// deleted: the backend must lose it.
	state.SetTimer(c, tm)
	c.WriteBack()
	state.DeleteTimer(c, tm)
	state.SetTimer(c, tm)
	state.DeleteTimer(c, tm)
	if err := c.WriteBack(); err != nil {
		t.Fatal(err)
	}
	if got := scanRange(t, mem, nil, nil); got != "" || len(log) != 0 {
		t.Fatalf("backend %q, changelog %v after the timer was deleted", got, log)
	}
}

type changeFunc func(key, value []byte) error

func (f changeFunc) Changed(key, value []byte) error { return f(key, value) }

// getCounter counts the point reads and the iterators that reach a
// backend.
type getCounter struct {
	state.Backend
	gets, iters int
}

func (g *getCounter) NewIter(lower, upper []byte) (state.Iterator, error) {
	g.iters++
	return g.Backend.NewIter(lower, upper)
}

func (g *getCounter) Get(key []byte) ([]byte, bool, error) {
	g.gets++
	return g.Backend.Get(key)
}

// TestCacheOwnedRanges: in key groups a cache owns on a fresh store, a
// miss reads nothing, and the answers stay right across write-backs and
// deletions; groups holding data, keys outside, and any key after a spill
// are read from the backend.
func TestCacheOwnedRanges(t *testing.T) {
	mem := state.NewMem()
	held := state.AppendCell(nil, state.Cell{Op: 7, KG: 5, Key: []byte("old"), Name: "n"})
	if err := mem.Set(held, []byte("v0")); err != nil {
		t.Fatal(err)
	}
	b := &getCounter{Backend: mem}
	c := state.NewCache(b, 1<<20)
	if err := c.Own(state.GroupRanges(7, 0, 4)); err != nil {
		t.Fatal(err)
	}
	if err := c.Own(state.GroupRanges(7, 4, 8)); err != nil { // holds "old": not owned
		t.Fatal(err)
	}
	cell := func(kg state.KeyGroup, key string) []byte {
		return state.AppendCell(nil, state.Cell{Op: 7, KG: kg, Key: []byte(key), Name: "n"})
	}
	get := func(k []byte) (string, bool) {
		t.Helper()
		v, ok, err := c.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		return string(v), ok
	}
	if _, ok := get(cell(1, "a")); ok || b.gets != 0 {
		t.Fatalf("a miss in an owned group: found %v, %d backend reads, want none", ok, b.gets)
	}
	if v, ok := get(held); !ok || v != "v0" || b.gets != 1 {
		t.Fatalf("a key in a group holding data: %q %v, %d reads, want v0 from one read", v, ok, b.gets)
	}
	timer := state.Timer{Op: 7, KG: 2, Key: []byte("a"), Window: windowing.GlobalWindow, Name: "t", Time: 10}
	if err := state.SetTimer(c, timer); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(cell(2, "b"), []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := c.Set(cell(3, "c"), []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteBack(); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(cell(3, "c")); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteBack(); err != nil { // forgets the deletion
		t.Fatal(err)
	}
	before := b.gets
	if v, ok := get(cell(2, "b")); !ok || v != "v1" {
		t.Errorf("a written-back cell: %q %v", v, ok)
	}
	if _, ok := get(cell(3, "c")); ok {
		t.Error("a deleted, written-back cell is found")
	}
	if got, ok, err := state.TimerTime(c, timer); err != nil || !ok || got != 10 {
		t.Errorf("a written-back timer: %d, %v", got, err)
	}
	if b.gets != before {
		t.Errorf("%d backend reads for owned keys, want none", b.gets-before)
	}
	other := state.AppendCell(nil, state.Cell{Op: 8, KG: 1, Key: []byte("x"), Name: "n"})
	get(other)
	if b.gets != before+1 {
		t.Errorf("another operator's key: %d reads, want 1", b.gets-before)
	}
	// Scans inside an owned range open no backend iterator, and see
	// what was written back but not what was deleted.
	scan := func(lower, upper []byte) []string {
		t.Helper()
		it, err := c.NewIter(lower, upper)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for ok := it.First(); ok; ok = it.Next() {
			keys = append(keys, string(it.Value()))
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		return keys
	}
	iters := b.iters
	owned := state.GroupRanges(7, 0, 4)[0]
	if got := scan(owned[0], owned[1]); fmt.Sprint(got) != "[v1]" || b.iters != iters {
		t.Errorf("scan of owned groups: %q, %d backend iterators, want [v1] and none", got, b.iters-iters)
	}
	if due, err := state.DueTimers(c, 7, 2, timer.Domain, windowing.MinTime, 100, nil, 10); err != nil || len(due) != 1 || b.iters != iters {
		t.Errorf("due timers of an owned group: %v, %v, %d backend iterators, want the timer and none", due, err, b.iters-iters)
	}
	unowned := state.GroupRanges(7, 4, 8)[0]
	if got := scan(unowned[0], unowned[1]); fmt.Sprint(got) != "[v0]" || b.iters != iters+1 {
		t.Errorf("scan of groups holding data: %q, %d backend iterators, want [v0] from one", got, b.iters-iters)
	}

	// A spill drops written-back entries the backend now holds: from then
	// on misses are read.
	big := bytes.Repeat([]byte("x"), 1<<20)
	if err := c.Set(cell(1, "big"), big); err != nil {
		t.Fatal(err)
	}
	before = b.gets
	if v, ok := get(cell(2, "b")); !ok || v != "v1" {
		t.Errorf("after a spill: %q %v, want v1 from the backend", v, ok)
	}
	if b.gets != before+1 {
		t.Errorf("after a spill: %d reads, want 1", b.gets-before)
	}
	iters = b.iters
	if got := scan(owned[0], owned[1]); len(got) != 2 || got[1] != "v1" || b.iters != iters+1 {
		t.Errorf("scan after a spill: %d values, %d backend iterators, want big's and v1 from one", len(got), b.iters-iters)
	}
}

// TestFixedTimers: a fixed timer is a timer key alone, found by a search
// and by FixedTimerSet, and cleared with its time; clearing one also
// removes the index an indexed timer of the same identity kept (state
// written before the timer became fixed), and a cache that owns a fresh
// key range writes nothing back for a timer set and cleared in it.
func TestFixedTimers(t *testing.T) {
	for _, name := range []string{"memory", "cache over memory"} {
		t.Run(name, func(t *testing.T) {
			mem := state.NewMem()
			var b state.Backend = mem
			if name != "memory" {
				b = state.NewCache(mem, 1<<20)
			}
			tm := state.Timer{Op: 7, KG: 2, Domain: state.EventTime, Time: 99, Key: []byte("k"), Window: windowing.Window{Start: 90, End: 100}, Name: "eow"}
			if err := state.SetFixedTimer(b, tm, true); err != nil {
				t.Fatal(err)
			}
			if ok, err := state.FixedTimerSet(b, tm); err != nil || !ok {
				t.Fatalf("set: %v %v", ok, err)
			}
			if _, ok, _ := state.TimerTime(b, tm); ok {
				t.Error("a fixed timer has an index")
			}
			due, err := state.DueTimers(b, 7, 2, state.EventTime, windowing.MinTime, 99, nil, 10)
			if err != nil || len(due) != 1 || due[0].Time != 99 || due[0].Name != "eow" {
				t.Fatalf("due: %v %v", due, err)
			}
			if err := state.DeleteFixedTimer(b, tm); err != nil {
				t.Fatal(err)
			}
			if ok, _ := state.FixedTimerSet(b, tm); ok {
				t.Error("cleared, still set")
			}

			// An indexed timer of the same identity, as an older version
			// set it, goes entirely.
			if err := state.SetTimer(b, tm); err != nil {
				t.Fatal(err)
			}
			if err := state.DeleteFixedTimer(b, tm); err != nil {
				t.Fatal(err)
			}
			if c, ok := b.(*state.Cache); ok {
				if err := c.WriteBack(); err != nil {
					t.Fatal(err)
				}
			}
			if n := mem.Metrics().Keys; n != 0 {
				t.Errorf("%d keys left after clearing an indexed timer as a fixed one", n)
			}
		})
	}

	mem := state.NewMem()
	b := &getCounter{Backend: mem}
	c := state.NewCache(b, 1<<20)
	if err := c.Own(state.GroupRanges(7, 0, 4)); err != nil {
		t.Fatal(err)
	}
	tm := state.Timer{Op: 7, KG: 2, Domain: state.EventTime, Time: 5, Key: []byte("k"), Name: "eow"}
	if err := state.SetFixedTimer(c, tm, true); err != nil {
		t.Fatal(err)
	}
	if err := state.DeleteFixedTimer(c, tm); err != nil {
		t.Fatal(err)
	}
	if c.Bytes() != 0 {
		t.Errorf("the cache holds %d bytes for a timer set and cleared in an owned range", c.Bytes())
	}
	if err := c.WriteBack(); err != nil {
		t.Fatal(err)
	}
	if n := mem.Metrics().Keys; n != 0 || b.gets != 0 {
		t.Errorf("%d keys written back and %d reads for a timer set and cleared in an owned range, want none", n, b.gets)
	}
}
