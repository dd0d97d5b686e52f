package state_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// recordingLog keeps every change, in order.
type recordingLog struct {
	mu      sync.Mutex
	changes [][2][]byte
}

func (r *recordingLog) Changed(key, value []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var v []byte
	if value != nil {
		v = append([]byte{}, value...)
	}
	r.changes = append(r.changes, [2][]byte{append([]byte(nil), key...), v})
	return nil
}

func dump(t *testing.T, b state.Backend) []string {
	t.Helper()
	it, err := b.NewIter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []string
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, fmt.Sprintf("%x=%x", it.Key(), it.Value()))
	}
	return out
}

// TestChangelogReplayRebuildsState changes a logged backend at random (sets,
// empty values, deletes, range deletes, timers), then replays its changelog
// through a Loader into fresh backends: they must hold exactly the same.
func TestChangelogReplayRebuildsState(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	orig := state.NewMem()
	log := &recordingLog{}
	b := state.Logged(orig, log)
	cell := func() state.Cell {
		return state.Cell{Op: uint32(rng.IntN(3)), KG: state.KeyGroup(rng.IntN(8)), Key: []byte{byte(rng.IntN(20))},
			Window: windowing.Window{Start: 0, End: windowing.Time(rng.IntN(4))}, Name: "c"}
	}
	for i := 0; i < 5000; i++ {
		c := state.AppendCell(nil, cell())
		switch r := rng.IntN(10); {
		case r < 5:
			if err := b.Set(c, []byte(fmt.Sprint(i))); err != nil {
				t.Fatal(err)
			}
		case r < 6:
			b.Set(c, nil)
		case r < 8:
			b.Delete(c)
		case r < 9:
			x := cell()
			p := state.AppendKeyPrefix(nil, x.Op, x.KG, x.Key)
			b.DeleteRange(p, state.PrefixEnd(p))
		default:
			x := cell()
			state.SetTimer(b, state.Timer{Op: x.Op, KG: x.KG, Domain: state.EventTime, Time: windowing.Time(i), Key: x.Key, Window: x.Window, Name: "t"})
			b.Set(state.MetaKey(x.Op, "wm"), []byte(fmt.Sprint(i)))
		}
	}
	want := dump(t, orig)
	// Chunks of 4 KiB: the Pebble loader ingests several, the later ones
	// deleting keys the earlier ones wrote.
	defer state.SetLoadChunkBytes(4 << 10)()
	for name, fresh := range map[string]state.Backend{"memory": state.NewMem(), "pebble": openPebble(t)} {
		l := state.NewLoader(fresh)
		for _, c := range log.changes {
			if err := l.Apply(c[0], c[1]); err != nil {
				t.Fatal(err)
			}
			if _, _, err := state.KeyRoute(c[0]); err != nil {
				t.Fatalf("route of %x: %v", c[0], err)
			}
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		got := dump(t, fresh)
		if len(got) != len(want) || !bytes.Equal([]byte(fmt.Sprint(got)), []byte(fmt.Sprint(want))) {
			t.Errorf("%s: replay holds %d keys, the original %d", name, len(got), len(want))
		}
		fresh.Close()
	}
	t.Logf("%d changes, %d keys", len(log.changes), len(want))
}

func TestKeyRoute(t *testing.T) {
	c := state.AppendCell(nil, state.Cell{Op: 7, KG: 99, Key: []byte("k"), Name: "n"})
	if op, kg, err := state.KeyRoute(c); op != 7 || kg != 99 || err != nil {
		t.Errorf("cell: %d %d %v", op, kg, err)
	}
	if op, kg, err := state.KeyRoute(state.MetaKey(5, "inputwm/0")); op != 5 || kg != 0 || err != nil {
		t.Errorf("meta: %d %d %v", op, kg, err)
	}
	if _, _, err := state.KeyRoute([]byte("x")); err == nil {
		t.Error("a short key routes")
	}
}
