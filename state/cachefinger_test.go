package state

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestCacheReadThenWrite runs what a keyed operator does to its cache,
// against a map: a key is read, then written, replaced or deleted, so the
// writes go through the fingers of the read (a replacement in place, an
// insertion, a removal from a leaf). Enough keys for a tree of three
// levels, SetNew on misses in an owned range, and now and then an open
// iterator (nodes shared, nothing changed in place) or a write-back. After
// every step the tree keeps its invariants and the cache its byte count.
func TestCacheReadThenWrite(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			under := NewMem()
			defer under.Close()
			c := NewCache(under, 1<<30)
			if err := c.Own([][2][]byte{{[]byte("k"), []byte("l")}}); err != nil {
				t.Fatal(err)
			}
			model := map[string]string{}
			r := rand.New(rand.NewPCG(seed, 11))
			var open []Iterator
			for step := range 30000 {
				k := fmt.Appendf(nil, "k%05d", r.IntN(3000))
				v, ok, err := c.View(k)
				if want, wok := model[string(k)]; err != nil || ok != wok || string(v) != want {
					t.Fatalf("step %d: View(%s) = %q, %v, %v; want %q, %v", step, k, v, ok, err, want, wok)
				}
				switch op := r.IntN(100); {
				case op < 40 && !ok:
					err = c.SetNew(k, fmt.Appendf(nil, "n%d", step))
					model[string(k)] = fmt.Sprintf("n%d", step)
				case op < 60:
					err = c.Set(k, fmt.Appendf(nil, "s%d", step))
					model[string(k)] = fmt.Sprintf("s%d", step)
				case op < 97:
					err = c.Delete(k)
					delete(model, string(k))
				case op < 98:
					var it Iterator
					if it, err = c.NewIter(nil, nil); err == nil {
						open = append(open, it)
					}
				case op < 99:
					for _, it := range open {
						if err := it.Close(); err != nil {
							t.Fatal(err)
						}
					}
					open = open[:0]
				default:
					err = c.WriteBack()
				}
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
				if step%5 != 0 {
					continue
				}
				checkTree(t, &c.tree)
				var size int64
				var cur memCursor
				for ok := cur.seekGE(c.tree.root, nil); ok; ok = cur.next() {
					size += cacheSize(cur.item())
				}
				if size != c.bytes {
					t.Fatalf("step %d: the cache counts %d bytes and holds %d", step, c.bytes, size)
				}
			}
			for _, it := range open {
				it.Close()
			}
			if err := c.WriteBack(); err != nil {
				t.Fatal(err)
			}
			var got []string
			it, err := under.NewIter(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			for ok := it.First(); ok; ok = it.Next() {
				got = append(got, string(it.Key())+"="+string(it.Value()))
			}
			it.Close()
			var want []string
			for _, k := range slices.Sorted(maps.Keys(model)) {
				want = append(want, k+"="+model[k])
			}
			if !slices.Equal(got, want) {
				t.Fatalf("backend after write-back: %d entries, want %d", len(got), len(want))
			}
		})
	}
}
