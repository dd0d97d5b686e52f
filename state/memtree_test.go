package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkTree verifies the B-tree invariants: key order, node fill, uniform
// leaf depth, child counts, the item count, the abbreviated keys, and that
// no node belongs to a future generation.
func checkTree(t *testing.T, tr *memTree) {
	t.Helper()
	if tr.root == nil {
		if tr.count != 0 {
			t.Fatalf("empty tree with count %d", tr.count)
		}
		return
	}
	var prev []byte
	count, leafDepth := 0, -1
	var walk func(n *memNode, depth int, root bool)
	walk = func(n *memNode, depth int, root bool) {
		if n.gen > tr.gen {
			t.Fatalf("node of generation %d in a tree of generation %d", n.gen, tr.gen)
		}
		if len(n.items) > memMaxItems || !root && len(n.items) < memMinItems || len(n.items) == 0 {
			t.Fatalf("node at depth %d has %d items (root %v)", depth, len(n.items), root)
		}
		if len(n.abbrs) != len(n.items) {
			t.Fatalf("node with %d items has %d abbreviations", len(n.items), len(n.abbrs))
		}
		for i, it := range n.items {
			if k := it.key(); !bytes.Equal(k[:n.pfx], n.items[0].key()[:n.pfx]) || n.abbrs[i] != abbrev(k, n.pfx) {
				t.Fatalf("item %d (%q) has abbreviation %x under prefix %d", i, k, n.abbrs[i], n.pfx)
			}
		}
		if n.leaf() {
			if leafDepth == -1 {
				leafDepth = depth
			} else if depth != leafDepth {
				t.Fatalf("leaves at depths %d and %d", leafDepth, depth)
			}
		} else if len(n.children) != len(n.items)+1 {
			t.Fatalf("node with %d items has %d children", len(n.items), len(n.children))
		}
		for i, it := range n.items {
			if !n.leaf() {
				walk(n.children[i], depth+1, false)
			}
			if prev != nil && bytes.Compare(prev, it.key()) >= 0 {
				t.Fatalf("key %q after %q", it.key(), prev)
			}
			prev = it.key()
			count++
		}
		if !n.leaf() {
			walk(n.children[len(n.items)], depth+1, false)
		}
	}
	walk(tr.root, 0, true)
	if count != tr.count {
		t.Fatalf("tree holds %d items, count says %d", count, tr.count)
	}
}

// treeContents lists the tree under root with a cursor.
func treeContents(root *memNode) []string {
	var out []string
	var c memCursor
	for ok := c.seekGE(root, nil); ok; ok = c.next() {
		out = append(out, string(c.item().key())+"="+string(c.item().value()))
	}
	return out
}

func modelContents(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// TestMemTreeRandom runs random inserts and deletes against a map, checking
// invariants, seeks, and that snapshots taken along the way never change.
func TestMemTreeRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	t.Run("numbers", func(t *testing.T) {
		testMemTreeRandom(t, rng, 5000, func() string { return fmt.Sprintf("%05d", rng.IntN(4000)) })
	})
	// Keys that share prefixes of every length, and keys that are
	// prefixes of others: the abbreviations' prefixes break and grow.
	t.Run("prefixes", func(t *testing.T) {
		testMemTreeRandom(t, rng, 50, func() string {
			b := make([]byte, 1+rng.IntN(7))
			for j := range b {
				b[j] = "a\x00\xff"[rng.IntN(3)]
			}
			return string(b)
		})
	})
}

func testMemTreeRandom(t *testing.T, rng *rand.Rand, checkEvery int, key func() string) {
	var tr memTree
	model := map[string]string{}
	type snapshot struct {
		root *memNode
		want []string
	}
	var snaps []snapshot
	for i := range 60000 {
		// Phases of mostly inserts and mostly deletes, so that the tree
		// grows and shrinks through every level.
		insertBias := 70
		if i/10000%2 == 1 {
			insertBias = 30
		}
		k := key()
		if rng.IntN(100) < insertBias {
			v := fmt.Sprint(i)
			_, replaced := tr.set(newMemItem([]byte(k), []byte(v)))
			if _, had := model[k]; replaced != had {
				t.Fatalf("set(%s) replaced %v, model had it %v", k, replaced, had)
			}
			model[k] = v
		} else {
			old, ok := tr.delete([]byte(k))
			want, had := model[k]
			if ok != had || ok && string(old.value()) != want {
				t.Fatalf("delete(%s) = %q, %v; model %q, %v", k, old.value(), ok, want, had)
			}
			delete(model, k)
		}
		if i%997 == 0 {
			// As NewIter: freeze the current nodes.
			tr.gen++
			snaps = append(snaps, snapshot{tr.root, modelContents(model)})
		}
		if i%7 == 0 {
			k := key()
			it, ok := tr.get([]byte(k))
			if want, had := model[k]; ok != had || ok && string(it.value()) != want {
				t.Fatalf("get(%q) = %q, %v; model %q, %v", k, it.value(), ok, want, had)
			}
		}
		if i%checkEvery == 0 {
			checkTree(t, &tr)
			if got := treeContents(tr.root); !slices.Equal(got, modelContents(model)) {
				t.Fatalf("op %d: tree has %d entries, model %d", i, len(got), len(model))
			}
		}
	}
	checkTree(t, &tr)
	for i, s := range snaps {
		if got := treeContents(s.root); !slices.Equal(got, s.want) {
			t.Fatalf("snapshot %d changed: %d entries, want %d", i, len(got), len(s.want))
		}
	}

	// Seeks land on the first key at or after the target.
	keys := slices.Sorted(maps.Keys(model))
	for range 2000 {
		target := key()
		if rng.IntN(2) == 0 {
			target += "x"
		}
		j, _ := slices.BinarySearch(keys, target)
		var c memCursor
		ok := c.seekGE(tr.root, []byte(target))
		if ok != (j < len(keys)) || ok && string(c.item().key()) != keys[j] {
			t.Fatalf("seekGE(%s) = %v at %q, want %v", target, ok, c.item().key(), j < len(keys))
		}
	}

	// Delete everything.
	for _, k := range keys {
		if _, ok := tr.delete([]byte(k)); !ok {
			t.Fatalf("delete(%s) missed", k)
		}
	}
	checkTree(t, &tr)
	if tr.root != nil || tr.count != 0 {
		t.Fatalf("emptied tree: root %v, count %d", tr.root, tr.count)
	}
}

// TestMemTreeSequential fills a tree in ascending and descending order, the
// patterns of LoadMem and of time-ordered keys.
func TestMemTreeSequential(t *testing.T) {
	for _, desc := range []bool{false, true} {
		var tr memTree
		const n = 20000
		for i := range n {
			j := i
			if desc {
				j = n - 1 - i
			}
			tr.set(newMemItem(fmt.Appendf(nil, "%06d", j), nil))
		}
		checkTree(t, &tr)
		if tr.count != n {
			t.Fatalf("count %d", tr.count)
		}
		for i := 0; i < n; i += 2 {
			tr.delete(fmt.Appendf(nil, "%06d", i))
		}
		checkTree(t, &tr)
		if tr.count != n/2 {
			t.Fatalf("count %d after deleting half", tr.count)
		}
	}
}

// TestMemDeleteMissingCopiesNothing checks that deleting a missing key does
// not copy shared nodes.
func TestMemDeleteMissingCopiesNothing(t *testing.T) {
	var tr memTree
	for i := range 1000 {
		tr.set(newMemItem(fmt.Appendf(nil, "%04d", i), nil))
	}
	tr.gen++
	root := tr.root
	tr.delete([]byte("missing"))
	if tr.root != root {
		t.Fatalf("deleting a missing key copied the root")
	}
}

// TestMemTreeQueue deletes keys in order from one end of a range while the
// keys before it stay, as fired timers go before a keyed operator's cells:
// separators at the start of internal nodes are replaced by keys from
// outside the range, which need not share their node's prefix.
func TestMemTreeQueue(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var tr memTree
	model := map[string]string{}
	next, first := 0, 0 // the queue holds t<first> .. t<next-1>
	for i := range 40000 {
		var k string
		switch op := rng.IntN(10); {
		case op < 4:
			k = fmt.Sprintf("s%06d", rng.IntN(100000))
			tr.set(newMemItem([]byte(k), nil))
			model[k] = ""
		case op < 7:
			k = fmt.Sprintf("t%06d", next)
			next++
			tr.set(newMemItem([]byte(k), nil))
			model[k] = ""
		case first < next:
			k = fmt.Sprintf("t%06d", first)
			first++
			if _, ok := tr.delete([]byte(k)); !ok {
				t.Fatalf("op %d: %s not found", i, k)
			}
			delete(model, k)
		}
		if i%10 == 0 {
			checkTree(t, &tr)
		}
	}
	if got := treeContents(tr.root); !slices.Equal(got, modelContents(model)) {
		t.Fatalf("tree has %d entries, model %d", len(got), len(model))
	}
}

// TestMemTreeWindows runs a keyed window operator's pattern on a tree:
// cells ("s", key, window) and their end-of-window timers ("t", time,
// key, window) are set as windows open, and as time passes the timers fire
// in order, each deleting itself and its cell; each key group's timers go
// from the start of its range. Internal nodes' separators
// are replaced, by rotations and by predecessors, with keys from outside
// their nodes' prefixes.
func TestMemTreeWindows(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	var tr memTree
	model := map[string]bool{}
	type window struct{ key, end int }
	var open []window // by end, in the order they were opened
	// As the state's keys: big-endian, timers by key group, then time.
	cell := func(w window) string {
		return string(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte{'s', byte(w.key % 16)}, uint64(w.key)), uint64(w.end)))
	}
	timer := func(w window) string {
		return string(binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte{'t', byte(w.key % 16)}, uint64(w.end)), uint64(w.key)))
	}
	for now := 0; now < 3000; now++ {
		for range rng.IntN(30) {
			w := window{rng.IntN(5000), now + 5 + rng.IntN(3)*5}
			if !model[cell(w)] {
				open = append(open, w)
			}
			for _, k := range []string{cell(w), timer(w)} {
				tr.set(newMemItem([]byte(k), nil))
				model[k] = true
			}
		}
		slices.SortStableFunc(open, func(a, b window) int { return a.end - b.end })
		for len(open) > 0 && open[0].end <= now {
			for _, k := range []string{timer(open[0]), cell(open[0])} {
				if _, ok := tr.delete([]byte(k)); !ok {
					t.Fatalf("time %d: %s not found", now, k)
				}
				delete(model, k)
			}
			open = open[1:]
		}
		checkTree(t, &tr)
	}
	if got := treeContents(tr.root); len(got) != len(model) {
		t.Fatalf("tree has %d entries, model %d", len(got), len(model))
	}
}

// TestMemNodeAbbreviations changes one node's items at random (inserts,
// removals, replacements by other keys, in order), and checks after each
// change that the abbreviations match the keys and that find agrees with
// a linear search. Each round starts from keys that share a long prefix;
// a few keys outside it come, in the middle or at either end.
func TestMemNodeAbbreviations(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	key := func(outside bool) []byte {
		b := make([]byte, 12)
		if rng.IntN(4) == 0 {
			b = b[:1+rng.IntN(12)]
		}
		for j := range b {
			b[j] = "ab\x00"[rng.IntN(3)]
		}
		if !outside {
			copy(b, "ab\x00ab\x00a")
		}
		return b
	}
	var tr memTree
	for round := range 3000 {
		n := tr.newNode(false)
		for range memMaxItems {
			k := key(false)
			if i, found := n.find(k); !found {
				n.insertItem(i, newMemItem(k, nil))
			}
		}
		for step := range 20 {
			k := key(rng.IntN(4) == 0)
			i, found := n.find(k)
			switch {
			case found:
				n.removeItem(i)
			case len(n.items) < memMaxItems && rng.IntN(2) == 0:
				n.insertItem(i, newMemItem(k, nil))
			case len(n.items) > 0:
				// Replace the item at k's place, or the one before,
				// by k: still in order.
				j := min(i, len(n.items)-1)
				if j > 0 && rng.IntN(2) == 0 {
					j--
				}
				if (j == 0 || bytes.Compare(n.items[j-1].key(), k) < 0) && (j+1 == len(n.items) || bytes.Compare(k, n.items[j+1].key()) < 0) {
					n.setItem(j, newMemItem(k, nil))
				}
			}
			if len(n.abbrs) != len(n.items) {
				t.Fatalf("round %d step %d: %d items, %d abbreviations", round, step, len(n.items), len(n.abbrs))
			}
			for j, it := range n.items {
				if k := it.key(); !bytes.Equal(k[:n.pfx], n.items[0].key()[:n.pfx]) || n.abbrs[j] != abbrev(k, n.pfx) {
					t.Fatalf("round %d step %d: item %d (%q) has abbreviation %x under prefix %d", round, step, j, k, n.abbrs[j], n.pfx)
				}
			}
			probe := key(rng.IntN(4) == 0)
			want := 0
			for want < len(n.items) && bytes.Compare(n.items[want].key(), probe) < 0 {
				want++
			}
			if got, found := n.find(probe); got != want || found != (want < len(n.items) && bytes.Equal(n.items[want].key(), probe)) {
				t.Fatalf("round %d step %d: find(%q) = %d, %v; want %d", round, step, probe, got, found, want)
			}
		}
	}
}
