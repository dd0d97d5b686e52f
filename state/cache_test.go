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
