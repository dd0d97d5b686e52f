package state

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// checkTree verifies the B-tree invariants: key order, node fill, uniform
// leaf depth, child counts, the item count, and that no node belongs to a
// future generation.
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
	var tr memTree
	model := map[string]string{}
	type snapshot struct {
		root *memNode
		want []string
	}
	var snaps []snapshot
	key := func() string { return fmt.Sprintf("%05d", rng.IntN(4000)) }
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
		if i%5000 == 0 {
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
		target := fmt.Sprintf("%05d", rng.IntN(4100))
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
