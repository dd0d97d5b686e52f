package state

import (
	"bytes"
	"encoding/binary"
)

// This file is the ordered structure behind Mem: a B-tree whose nodes are
// copied on write, so that a snapshot of the tree is just its root.
//
// Every node records the generation of the tree that created it. A tree may
// modify a node in place only if the node belongs to its current
// generation; any other node is (or may be) shared with a snapshot, and is
// copied first, together with the path above it. Taking a snapshot bumps the
// generation, which freezes every existing node at no cost.
//
// Insertion splits full nodes on the way down and deletion grows minimal
// nodes on the way down (as in CLRS), so each operation is one descent.

const (
	memDegree   = 16
	memMaxItems = 2*memDegree - 1 // a node with more items is split
	memMinItems = memDegree - 1   // a non-root node with fewer is grown
)

// memItem is one entry; key and value share one allocation.
type memItem struct {
	kv   []byte
	klen int
}

func (it memItem) key() []byte   { return it.kv[:it.klen:it.klen] }
func (it memItem) value() []byte { return it.kv[it.klen:] }

type memNode struct {
	items    []memItem
	children []*memNode // nil for a leaf; else len(items)+1
	gen      uint64     // generation of the tree that may modify the node
	// Abbreviated keys, so that a search compares integers in one array
	// instead of following each item to its key: every key of the node
	// starts with the same pfx bytes, and abbrs[i] is the 8 bytes of
	// item i's key after them (zero-padded). Keys sort as their
	// abbreviations do, and equal abbreviations are settled on the keys.
	// Whoever changes the node's items keeps them up to date, so that a
	// search only reads the node (frozen nodes are read concurrently).
	abbrs []uint64
	pfx   int
}

func (n *memNode) leaf() bool { return n.children == nil }

// abbrev returns the 8 bytes of key after its first p, zero-padded, as a
// big-endian integer: for keys that share their first p bytes, a < b
// implies abbrev(a) <= abbrev(b).
func abbrev(key []byte, p int) uint64 {
	if len(key) >= p+8 {
		return binary.BigEndian.Uint64(key[p:])
	}
	var b [8]byte
	copy(b[:], key[p:])
	return binary.BigEndian.Uint64(b[:])
}

// reabbreviate rebuilds n's abbreviations after its prefix: the keys'
// common prefix, that of the first and the last, as they are sorted.
func (n *memNode) reabbreviate() {
	n.abbrs, n.pfx = n.abbrs[:0], 0
	if len(n.items) == 0 {
		return
	}
	first, last := n.items[0].key(), n.items[len(n.items)-1].key()
	for n.pfx < len(first) && n.pfx < len(last) && first[n.pfx] == last[n.pfx] {
		n.pfx++
	}
	for _, it := range n.items {
		n.abbrs = append(n.abbrs, abbrev(it.key(), n.pfx))
	}
}

// sharesPrefix reports whether key starts with the prefix of n's keys.
func (n *memNode) sharesPrefix(key []byte) bool {
	return len(n.items) > 0 && len(key) >= n.pfx && bytes.Equal(key[:n.pfx], n.items[0].key()[:n.pfx])
}

// insertItem inserts it at index i.
func (n *memNode) insertItem(i int, it memItem) {
	if n.sharesPrefix(it.key()) {
		n.abbrs = insertAt(n.abbrs, i, abbrev(it.key(), n.pfx))
		n.items = insertAt(n.items, i, it)
		return
	}
	n.items = insertAt(n.items, i, it)
	n.reabbreviate()
}

// removeItem removes item i; the others keep their prefix.
func (n *memNode) removeItem(i int) {
	n.abbrs = removeAt(n.abbrs, i)
	n.items = removeAt(n.items, i)
}

// setItem replaces item i by it, whose key may differ.
func (n *memNode) setItem(i int, it memItem) {
	old := n.items[i]
	n.items[i] = it
	if bytes.Equal(old.key(), it.key()) {
		return
	}
	// Whether the key shares the prefix is asked of another item.
	other := 0
	if i == 0 {
		other = 1
	}
	if k := it.key(); other < len(n.items) && len(k) >= n.pfx && bytes.Equal(k[:n.pfx], n.items[other].key()[:n.pfx]) {
		n.abbrs[i] = abbrev(k, n.pfx)
		return
	}
	n.reabbreviate()
}

// find returns the index of the first item whose key is >= key, and whether
// that item's key equals key.
func (n *memNode) find(key []byte) (int, bool) {
	if len(n.items) == 0 {
		return 0, false // a root emptied by a merge, on its way out
	}
	if p := n.pfx; p > 0 {
		m := min(p, len(key))
		switch c := bytes.Compare(key[:m], n.items[0].key()[:m]); {
		case c > 0:
			return len(n.items), false
		case c < 0 || m < p:
			return 0, false // before the prefix, or a proper prefix of it
		}
	}
	a := abbrev(key, n.pfx)
	lo, hi := 0, len(n.items)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		if x := n.abbrs[h]; x < a || x == a && bytes.Compare(n.items[h].key(), key) < 0 {
			lo = h + 1
		} else {
			hi = h
		}
	}
	return lo, lo < len(n.items) && n.abbrs[lo] == a && bytes.Equal(n.items[lo].key(), key)
}

// memTree is the live tree of a Mem; Mem.mu guards it.
type memTree struct {
	root  *memNode
	gen   uint64
	count int
}

func (t *memTree) newNode(internal bool) *memNode {
	n := &memNode{items: make([]memItem, 0, memMaxItems), abbrs: make([]uint64, 0, memMaxItems), gen: t.gen}
	if internal {
		n.children = make([]*memNode, 0, memMaxItems+1)
	}
	return n
}

// mutable returns n if the tree may modify it, else a copy that it may.
func (t *memTree) mutable(n *memNode) *memNode {
	if n.gen == t.gen {
		return n
	}
	c := t.newNode(!n.leaf())
	c.items = append(c.items, n.items...)
	if !n.leaf() {
		c.children = append(c.children, n.children...)
	}
	c.abbrs, c.pfx = append(c.abbrs, n.abbrs...), n.pfx
	return c
}

// mutableChild makes child i of the mutable node n mutable and returns it.
func (t *memTree) mutableChild(n *memNode, i int) *memNode {
	c := t.mutable(n.children[i])
	n.children[i] = c
	return c
}

func (t *memTree) get(key []byte) (memItem, bool) {
	n := t.root
	for n != nil {
		i, found := n.find(key)
		if found {
			return n.items[i], true
		}
		if n.leaf() {
			break
		}
		n = n.children[i]
	}
	return memItem{}, false
}

// locate returns the node and index of the item with key, if any.
func (t *memTree) locate(key []byte) (*memNode, int, bool) {
	n := t.root
	for n != nil {
		i, found := n.find(key)
		if found {
			return n, i, true
		}
		if n.leaf() {
			break
		}
		n = n.children[i]
	}
	return nil, 0, false
}

// set inserts it, or replaces the item with its key and returns the old one.
func (t *memTree) set(it memItem) (old memItem, replaced bool) {
	if t.root == nil {
		t.root = t.newNode(false)
		t.root.insertItem(0, it)
		t.count++
		return memItem{}, false
	}
	t.root = t.mutable(t.root)
	if len(t.root.items) >= memMaxItems {
		mid, right := t.split(t.root, memMaxItems/2)
		root := t.newNode(true)
		root.insertItem(0, mid)
		root.children = append(root.children, t.root, right)
		t.root = root
	}
	old, replaced = t.insert(t.root, it)
	if !replaced {
		t.count++
	}
	return old, replaced
}

// insert inserts it under the mutable, non-full node n.
func (t *memTree) insert(n *memNode, it memItem) (memItem, bool) {
	key := it.key()
	for {
		i, found := n.find(key)
		if found {
			old := n.items[i]
			n.items[i] = it // the same key: the same abbreviation
			return old, true
		}
		if n.leaf() {
			n.insertItem(i, it)
			return memItem{}, false
		}
		if len(n.children[i].items) >= memMaxItems {
			mid, right := t.split(t.mutableChild(n, i), memMaxItems/2)
			n.insertItem(i, mid)
			n.children = insertAt(n.children, i+1, right)
			switch c := bytes.Compare(key, mid.key()); {
			case c == 0:
				old := n.items[i]
				n.items[i] = it
				return old, true
			case c > 0:
				i++
			}
		}
		n = t.mutableChild(n, i)
	}
}

// split splits the mutable node n around item i: it keeps the items before
// i, and returns item i and a new node with the items after it.
func (t *memTree) split(n *memNode, i int) (memItem, *memNode) {
	mid := n.items[i]
	right := t.newNode(!n.leaf())
	right.items = append(right.items, n.items[i+1:]...)
	clear(n.items[i:])
	n.items = n.items[:i]
	// Each half may share a longer prefix than the whole did.
	n.reabbreviate()
	right.reabbreviate()
	if !n.leaf() {
		right.children = append(right.children, n.children[i+1:]...)
		clear(n.children[i+1:])
		n.children = n.children[:i+1]
	}
	return mid, right
}

// delete removes the item with key and returns it.
func (t *memTree) delete(key []byte) (memItem, bool) {
	// Look first, so that deleting a missing key copies nothing.
	if _, ok := t.get(key); !ok {
		return memItem{}, false
	}
	t.root = t.mutable(t.root)
	old, ok := t.remove(t.root, key)
	if len(t.root.items) == 0 {
		if t.root.leaf() {
			t.root = nil
		} else {
			t.root = t.root.children[0]
		}
	}
	if ok {
		t.count--
	}
	return old, ok
}

// remove removes key from the subtree of the mutable node n, which has more
// than memMinItems items unless it is the root.
func (t *memTree) remove(n *memNode, key []byte) (memItem, bool) {
	for {
		i, found := n.find(key)
		if n.leaf() {
			if !found {
				return memItem{}, false
			}
			old := n.items[i]
			n.removeItem(i)
			return old, true
		}
		if len(n.children[i].items) <= memMinItems {
			t.grow(n, i)
			continue // items moved; look again
		}
		child := t.mutableChild(n, i)
		if found {
			// Replace the item by its predecessor, the largest item of the
			// subtree on its left.
			old := n.items[i]
			n.setItem(i, t.removeMax(child))
			return old, true
		}
		n = child
	}
}

// removeMax removes and returns the largest item under the mutable node n,
// which has more than memMinItems items.
func (t *memTree) removeMax(n *memNode) memItem {
	for {
		if n.leaf() {
			last := len(n.items) - 1
			it := n.items[last]
			n.removeItem(last)
			return it
		}
		i := len(n.children) - 1
		if len(n.children[i].items) <= memMinItems {
			t.grow(n, i)
			continue
		}
		n = t.mutableChild(n, i)
	}
}

// grow gives child i of the mutable node n more than memMinItems items, by
// rotating an item from a sibling through n or by merging it with a sibling.
func (t *memTree) grow(n *memNode, i int) {
	switch {
	case i > 0 && len(n.children[i-1].items) > memMinItems:
		child, left := t.mutableChild(n, i), t.mutableChild(n, i-1)
		last := len(left.items) - 1
		child.insertItem(0, n.items[i-1])
		n.setItem(i-1, left.items[last])
		left.removeItem(last)
		if !left.leaf() {
			lastChild := len(left.children) - 1
			child.children = insertAt(child.children, 0, left.children[lastChild])
			left.children = removeAt(left.children, lastChild)
		}
	case i < len(n.items) && len(n.children[i+1].items) > memMinItems:
		child, right := t.mutableChild(n, i), t.mutableChild(n, i+1)
		child.insertItem(len(child.items), n.items[i])
		n.setItem(i, right.items[0])
		right.removeItem(0)
		if !right.leaf() {
			child.children = append(child.children, right.children[0])
			right.children = removeAt(right.children, 0)
		}
	default:
		// Both siblings are minimal: merge child i with its right sibling
		// (or, for the last child, its left sibling with it) around the item
		// between them.
		if i == len(n.items) {
			i--
		}
		child, right := t.mutableChild(n, i), n.children[i+1]
		child.items = append(child.items, n.items[i])
		child.items = append(child.items, right.items...)
		child.reabbreviate()
		if !child.leaf() {
			child.children = append(child.children, right.children...)
		}
		n.removeItem(i)
		n.children = removeAt(n.children, i+1)
	}
}

func insertAt[T any](s []T, i int, v T) []T {
	var zero T
	s = append(s, zero)
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

func removeAt[T any](s []T, i int) []T {
	copy(s[i:], s[i+1:])
	var zero T
	s[len(s)-1] = zero
	return s[:len(s)-1]
}

// memCursor walks a (sub)tree in key order. Its zero value is unpositioned.
type memCursor struct {
	// stack holds the path from the root to the current item: in each
	// frame but the last, index is the child the path descends into (and
	// so the item to visit after that child); in the last, the current
	// item.
	stack []memFrame
	buf   [8]memFrame // backs stack for trees of up to 8 levels
}

type memFrame struct {
	n *memNode
	i int
}

// item returns the current item; the cursor must be positioned.
func (c *memCursor) item() memItem {
	f := c.stack[len(c.stack)-1]
	return f.n.items[f.i]
}

// seekGE positions c on the first item of root's tree whose key is >= key
// (nil: the first item), and reports whether there is one.
func (c *memCursor) seekGE(root *memNode, key []byte) bool {
	c.stack = c.buf[:0]
	for n := root; n != nil; {
		i, found := n.find(key)
		c.stack = append(c.stack, memFrame{n, i})
		if found {
			return true
		}
		if n.leaf() {
			break
		}
		n = n.children[i]
	}
	return c.ascend()
}

// next moves c to the next item, and reports whether there is one; c must
// be positioned.
func (c *memCursor) next() bool {
	top := &c.stack[len(c.stack)-1]
	top.i++
	if n := top.n; !n.leaf() {
		// The next item is the first of the subtree right of the current.
		for n = n.children[top.i]; ; n = n.children[0] {
			c.stack = append(c.stack, memFrame{n, 0})
			if n.leaf() {
				return true // non-root nodes are never empty
			}
		}
	}
	return c.ascend()
}

// ascend pops finished frames until the top one is on an item.
func (c *memCursor) ascend() bool {
	for len(c.stack) > 0 {
		top := c.stack[len(c.stack)-1]
		if top.i < len(top.n.items) {
			return true
		}
		c.stack = c.stack[:len(c.stack)-1]
	}
	return false
}
