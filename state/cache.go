package state

import (
	"bytes"
	"fmt"
)

// DefaultCacheBytes is the memory budget of a Cache unless its owner says
// otherwise.
const DefaultCacheBytes = 32 << 20

// Cache is a write-back cache in front of a Backend, for one owner: a keyed
// operator instance, which alone reads and writes its range of keys. It
// implements Backend, so that timers and cells work on it unchanged, but it
// is not safe for concurrent use.
//
// Reads are served from the cache, and read from the backend once (misses
// included). Writes stay in the cache, dirty, until WriteBack writes them all
// to the backend in one batch (ApplyBatch), in key order: the owner calls it
// at each checkpoint barrier and at the end of a run, and Checkpoint, Flush
// and Close call it too. When the cache grows past its budget it writes back
// and empties itself, so that state beyond the budget lives in the backend
// rather than on the heap.
//
// Because every change reaches the backend through WriteBack, a Logged
// backend behind the cache sees each change that is in the backend at a
// checkpoint, only later than without the cache; a value overwritten
// between two write-backs is logged once, with its latest value. A key the
// cache knows the backend never held (it read its absence, or wrote it
// since) is forgotten when deleted, so short-lived state (a window's cells
// and timers that live between two checkpoints) never reaches the backend
// at all.
//
// Iterators (NewIter) merge the cache's entries, deletions included, with the
// backend's, and read a snapshot as of NewIter, as Backend requires: the
// cache's tree is copied on write (the memory backend's B-tree) while an
// iterator is open. DeleteRange drops the cached keys in the range and goes
// to the backend at once.
type Cache struct {
	b      Backend
	budget int64
	tree   memTree
	bytes  int64 // accounted size of the cached entries
	// dirty says some entry may be dirty: WriteBack has work.
	dirty bool
	// pinned says an open iterator shares the tree's current nodes: the
	// next change must copy them (a new generation).
	pinned bool
	iters  int     // open merged iterators
	writes []Write // reused by WriteBack
	closed bool
	// ver counts changes to the tree's shape; fingers remember where
	// recent reads found their entries, so that writing the same keys
	// next (a read-modify-write of a cell) replaces them in place while
	// the shape and generation are unchanged, without a second descent.
	ver     uint64
	fingers [4]cacheFinger
	finger  int // the next slot to fill
	// owned are key ranges the backend held nothing in when the cache
	// took them over, and that only this cache writes: until it spills
	// (dropping entries it wrote back), a key there that the cache does
	// not hold is not in the backend either, and a miss needs no read.
	owned [][2][]byte
}

type cacheFinger struct {
	n   *memNode
	i   int
	ver uint64
}

var _ Backend = (*Cache)(nil)

// Flags of a cached entry, in the byte between its key and its value.
const (
	// cacheDirty: the entry differs from the backend; WriteBack writes it.
	cacheDirty = 1 << 0
	// cacheGone: the key is deleted (or was read as missing).
	cacheGone = 1 << 1
	// cacheAbsent: the backend does not hold the key.
	cacheAbsent = 1 << 2
)

// cacheItemOverhead approximates the memory an entry costs beyond its key
// and value: the slice header in its node, the node's share of the tree, and
// the allocation's rounding.
const cacheItemOverhead = 64

// NewCache returns an empty cache in front of b holding about budget bytes
// (DefaultCacheBytes if budget is 0 or less). Closing the cache does not
// close b.
func NewCache(b Backend, budget int64) *Cache {
	if budget <= 0 {
		budget = DefaultCacheBytes
	}
	return &Cache{b: b, budget: budget}
}

func newCacheItem(key, value []byte, flags byte) memItem {
	kv := make([]byte, len(key)+1+len(value))
	copy(kv, key)
	kv[len(key)] = flags
	copy(kv[len(key)+1:], value)
	return memItem{kv: kv, klen: len(key)}
}

func cacheFlags(it memItem) byte   { return it.kv[it.klen] }
func cacheValue(it memItem) []byte { return it.kv[it.klen+1:] }
func cacheSize(it memItem) int64   { return int64(len(it.kv)) + cacheItemOverhead }
func (c *Cache) closedError(op string) error {
	return fmt.Errorf("%w: %s on a closed cache", ErrClosed, op)
}

// Bytes returns the accounted size of the cached entries.
func (c *Cache) Bytes() int64 { return c.bytes }

// mutate prepares the tree for a change: nodes an open iterator shares are
// frozen (copied on write from now on).
func (c *Cache) mutate() {
	if c.pinned {
		c.tree.gen++
		c.pinned = false
	}
}

// fingered returns where a finger remembers key, if one does and the
// cache may change that node in place: the tree's shape and generation are
// as the finger saw them, and no iterator shares the node.
func (c *Cache) fingered(key []byte) (*memNode, int, bool) {
	if c.pinned {
		return nil, 0, false
	}
	for _, f := range c.fingers {
		if f.n != nil && f.ver == c.ver && f.n.gen == c.tree.gen && bytes.Equal(f.n.items[f.i].key(), key) {
			return f.n, f.i, true
		}
	}
	return nil, 0, false
}

// put inserts it and returns the entry it replaced, if any.
func (c *Cache) put(it memItem) (memItem, bool) {
	if n, i, ok := c.fingered(it.key()); ok {
		old := n.items[i]
		n.items[i] = it
		c.bytes += cacheSize(it) - cacheSize(old)
		return old, true
	}
	c.mutate()
	c.ver++ // an insertion may split nodes on its way down
	old, replaced := c.tree.set(it)
	if replaced {
		c.bytes -= cacheSize(old)
	}
	c.bytes += cacheSize(it)
	return old, replaced
}

func (c *Cache) remove(key []byte) {
	c.mutate()
	c.ver++
	if old, ok := c.tree.delete(key); ok {
		c.bytes -= cacheSize(old)
	}
}

// removeFound removes the entry of key, which is item i of node n: in
// place when n is a leaf the cache may change that can spare an item (as
// when a window's cells and timers go after being read), else from the
// root.
func (c *Cache) removeFound(n *memNode, i int, key []byte) {
	if !c.pinned && n.gen == c.tree.gen && n.leaf() && (len(n.items) > memMinItems || n == c.tree.root) {
		old := n.items[i]
		n.removeItem(i)
		c.tree.count--
		if len(n.items) == 0 {
			c.tree.root = nil // n was the root
		}
		c.ver++
		c.bytes -= cacheSize(old)
		return
	}
	c.remove(key)
}

// Own tells the cache that only it writes the keys in ranges ([start,
// end) pairs) from now on. Those the backend holds nothing in are the
// cache's to answer: a miss there reads nothing, until the cache spills.
// A keyed instance owns its operator's cells and timers in its key
// groups; on a fresh store that spares a read per new key and window.
func (c *Cache) Own(ranges [][2][]byte) error {
	for _, r := range ranges {
		it, err := c.b.NewIter(r[0], r[1])
		if err != nil {
			return err
		}
		empty := !it.First()
		if err := it.Close(); err != nil {
			return err
		}
		if empty {
			c.owned = append(c.owned, r)
		}
	}
	return nil
}

// ownsRange reports whether [lower, upper) lies within one range the
// backend is known to hold nothing of the cache's in (see Own).
func (c *Cache) ownsRange(lower, upper []byte) bool {
	if lower == nil || upper == nil {
		return false
	}
	for _, r := range c.owned {
		if bytes.Compare(lower, r[0]) >= 0 && bytes.Compare(upper, r[1]) <= 0 {
			return true
		}
	}
	return false
}

// emptyIter iterates over nothing.
type emptyIter struct{}

func (emptyIter) First() bool   { return false }
func (emptyIter) Next() bool    { return false }
func (emptyIter) Valid() bool   { return false }
func (emptyIter) Key() []byte   { return nil }
func (emptyIter) Value() []byte { return nil }
func (emptyIter) Error() error  { return nil }
func (emptyIter) Close() error  { return nil }

// knownAbsent reports whether key, which the cache does not hold, is
// known to be missing from the backend too.
func (c *Cache) knownAbsent(key []byte) bool {
	for _, r := range c.owned {
		if bytes.Compare(key, r[0]) >= 0 && bytes.Compare(key, r[1]) < 0 {
			return true
		}
	}
	return false
}

// spill writes back and empties the cache if it is over its budget.
func (c *Cache) spill() error {
	if c.bytes <= c.budget {
		return nil
	}
	if err := c.WriteBack(); err != nil {
		return err
	}
	// The backend now holds keys the cache no longer does.
	c.owned = nil
	// Open iterators keep the old nodes; none of them is changed again.
	c.tree = memTree{gen: c.tree.gen + 1}
	c.ver++
	c.bytes = 0
	c.pinned = false
	return nil
}

// lookup returns the value of key, reading the backend on a miss. The value
// aliases the cache: it must not be modified, and it stays valid (writes
// replace values, never change them).
func (c *Cache) lookup(key []byte) ([]byte, bool, error) {
	if c.closed {
		return nil, false, c.closedError("Get")
	}
	if n, i, ok := c.tree.locate(key); ok {
		c.fingers[c.finger] = cacheFinger{n: n, i: i, ver: c.ver}
		c.finger = (c.finger + 1) % len(c.fingers)
		it := n.items[i]
		if cacheFlags(it)&cacheGone != 0 {
			return nil, false, nil
		}
		return cacheValue(it), true, nil
	}
	if c.knownAbsent(key) {
		// Nothing to remember: the next miss is as cheap. A keyed
		// operator looks up each new key and window before writing it,
		// and an entry here would cost an insertion now and a
		// replacement then.
		return nil, false, nil
	}
	v, ok, err := c.b.Get(key)
	if err != nil {
		return nil, false, err
	}
	var flags byte
	if !ok {
		flags = cacheGone | cacheAbsent
	}
	it := newCacheItem(key, v, flags)
	c.put(it)
	if err := c.spill(); err != nil {
		return nil, false, err
	}
	return cacheValue(it), ok, nil
}

// Get implements Backend.
func (c *Cache) Get(key []byte) ([]byte, bool, error) {
	v, ok, err := c.lookup(key)
	if !ok || err != nil {
		return nil, ok, err
	}
	out := make([]byte, len(v))
	copy(out, v)
	return out, true, nil
}

// View is Get without the copy: the value aliases the cache and must not be
// modified. It stays valid: the cache replaces values, never changes them.
func (c *Cache) View(key []byte) ([]byte, bool, error) { return c.lookup(key) }

// Set implements Backend.
func (c *Cache) Set(key, value []byte) error {
	if c.closed {
		return c.closedError("Set")
	}
	if len(key) == 0 {
		return ErrEmptyKey
	}
	it := newCacheItem(key, value, cacheDirty)
	if old, ok := c.put(it); ok && cacheFlags(old)&cacheAbsent != 0 || !ok && c.knownAbsent(key) {
		it.kv[it.klen] |= cacheAbsent // still not in the backend
	}
	c.dirty = true
	return c.spill()
}

// SetNew is Set for a key the caller knows the backend does not hold unless
// the cache has an entry for it (a deletion the cache has yet to write back):
// when such a key is deleted before it is written back, the cache forgets it
// instead of writing a deletion.
func (c *Cache) SetNew(key, value []byte) error {
	if c.closed {
		return c.closedError("Set")
	}
	if len(key) == 0 {
		return ErrEmptyKey
	}
	it := newCacheItem(key, value, cacheDirty|cacheAbsent)
	if old, ok := c.put(it); ok && cacheFlags(old)&cacheAbsent == 0 {
		it.kv[it.klen] &^= cacheAbsent // the backend may hold it
	}
	c.dirty = true
	return c.spill()
}

// Delete implements Backend.
func (c *Cache) Delete(key []byte) error {
	if c.closed {
		return c.closedError("Delete")
	}
	if len(key) == 0 {
		return nil // no empty key is ever stored
	}
	n, i, ok := c.fingered(key)
	if !ok {
		n, i, ok = c.tree.locate(key)
	}
	if ok {
		f := cacheFlags(n.items[i])
		switch {
		case f&cacheAbsent != 0:
			// The backend never held it: forgetting it is deleting it.
			if f&cacheGone == 0 {
				c.removeFound(n, i, key)
			}
			return nil
		case f&cacheGone != 0:
			return nil // deleted already
		}
	} else if c.knownAbsent(key) {
		return nil // neither the cache nor the backend holds it
	}
	c.put(newCacheItem(key, nil, cacheGone|cacheDirty))
	c.dirty = true
	return c.spill()
}

// DeleteRange implements Backend: the cached keys in the range are dropped
// and the backend deletes the range at once.
func (c *Cache) DeleteRange(start, end []byte) error {
	if c.closed {
		return c.closedError("DeleteRange")
	}
	var cur memCursor
	for cur.seekGE(c.tree.root, start) {
		k := cur.item().key()
		if end != nil && bytes.Compare(k, end) >= 0 {
			break
		}
		c.remove(k) // the tree changes: seek afresh
	}
	return c.b.DeleteRange(start, end)
}

// WriteBack writes every dirty entry to the backend in one batch, in key
// order. Afterwards the backend holds everything written to the cache.
func (c *Cache) WriteBack() error {
	if c.closed {
		return c.closedError("WriteBack")
	}
	if !c.dirty {
		return nil
	}
	ws := c.writes[:0]
	var cur memCursor
	for ok := cur.seekGE(c.tree.root, nil); ok; ok = cur.next() {
		it := cur.item()
		if f := cacheFlags(it); f&cacheDirty != 0 {
			ws = append(ws, Write{Key: it.key(), Value: cacheValue(it), Delete: f&cacheGone != 0})
		}
	}
	if err := ApplyBatch(c.b, ws); err != nil {
		return err
	}
	// The entries are clean now. Flags change in place: open iterators
	// share the items, but read only cacheGone, which stays. Deletions are
	// forgotten, as the backend has them.
	for ok := cur.seekGE(c.tree.root, nil); ok; ok = cur.next() {
		it := cur.item()
		if f := cacheFlags(it); f&cacheDirty != 0 {
			it.kv[it.klen] = f &^ (cacheDirty | cacheAbsent)
		}
	}
	for _, w := range ws {
		if w.Delete {
			c.remove(w.Key)
		}
	}
	clear(ws)
	c.writes = ws[:0]
	c.dirty = false
	return nil
}

// NewIter implements Backend. Without cached entries in [lower, upper), it
// is the backend's iterator.
func (c *Cache) NewIter(lower, upper []byte) (Iterator, error) {
	if c.closed {
		return nil, c.closedError("NewIter")
	}
	// In a range it owns the cache holds all there is: no backend
	// iterator (a Pebble iterator costs microseconds to open, and keyed
	// operators open one per timer scan and per bag read or clear).
	var bi Iterator = emptyIter{}
	if !c.ownsRange(lower, upper) {
		var err error
		if bi, err = c.b.NewIter(lower, upper); err != nil {
			return nil, err
		}
	}
	var cur memCursor
	if !cur.seekGE(c.tree.root, lower) || upper != nil && bytes.Compare(cur.item().key(), upper) >= 0 {
		return bi, nil
	}
	it := &cacheIter{c: c, root: c.tree.root, bi: bi}
	if lower != nil || upper != nil {
		buf := make([]byte, 0, len(lower)+len(upper))
		buf = append(buf, lower...)
		it.lower = buf[:len(lower):len(lower)]
		if upper != nil {
			it.upper = append(buf, upper...)[len(lower):]
		}
	}
	c.pinned = true
	c.iters++
	return it, nil
}

// Checkpoint implements Backend: it writes back, then checkpoints the
// backend.
func (c *Cache) Checkpoint(dir string) error {
	if err := c.WriteBack(); err != nil {
		return err
	}
	return c.b.Checkpoint(dir)
}

// Flush implements Backend: it writes back, then flushes the backend.
func (c *Cache) Flush() error {
	if err := c.WriteBack(); err != nil {
		return err
	}
	return c.b.Flush()
}

// Metrics implements Backend with the backend's metrics.
func (c *Cache) Metrics() Metrics {
	if c.closed {
		return Metrics{Keys: -1}
	}
	return c.b.Metrics()
}

// Close writes back and empties the cache; it does not close the backend,
// which others share. Iterators of the cache must be closed first.
func (c *Cache) Close() error {
	if c.closed {
		return c.closedError("Close")
	}
	err := c.WriteBack()
	c.closed = true
	c.tree = memTree{}
	c.bytes = 0
	if err == nil && c.iters > 0 {
		err = fmt.Errorf("state: cache closed with %d open iterators", c.iters)
	}
	return err
}

// cacheIter merges a snapshot of the cache's tree with an iterator of the
// backend: a cached entry hides the backend's under the same key, and a
// cached deletion hides the key. Its contract is Iterator's.
type cacheIter struct {
	c            *Cache
	root         *memNode
	lower, upper []byte
	cur          memCursor
	cOK          bool // cur is on an entry within bounds
	bi           Iterator
	bOK          bool // bi is positioned
	key, value   []byte
	fromC, fromB bool // the current key's sources
	valid        bool
	closed       bool
	err          error
}

func (i *cacheIter) First() bool {
	if i.closed {
		return false
	}
	i.cOK = i.cur.seekGE(i.root, i.lower) && i.inBounds()
	i.bOK = i.bi.First()
	return i.settle()
}

func (i *cacheIter) Next() bool {
	if !i.valid {
		return false
	}
	if i.fromC {
		i.nextC()
	}
	if i.fromB {
		i.bOK = i.bi.Next()
	}
	return i.settle()
}

func (i *cacheIter) nextC() { i.cOK = i.cur.next() && i.inBounds() }

func (i *cacheIter) inBounds() bool {
	return i.upper == nil || bytes.Compare(i.cur.item().key(), i.upper) < 0
}

// settle positions the iterator on the smaller of the two sources' keys,
// skipping cached deletions.
func (i *cacheIter) settle() bool {
	for {
		if !i.bOK {
			if err := i.bi.Error(); err != nil {
				i.err, i.valid = err, false
				return false
			}
		}
		if !i.cOK && !i.bOK {
			i.valid = false
			return false
		}
		if i.cOK {
			it := i.cur.item()
			cmp := -1
			if i.bOK {
				cmp = bytes.Compare(it.key(), i.bi.Key())
			}
			if cmp <= 0 {
				i.fromC, i.fromB = true, cmp == 0
				if cacheFlags(it)&cacheGone != 0 {
					i.nextC()
					if i.fromB {
						i.bOK = i.bi.Next()
					}
					continue
				}
				i.key, i.value, i.valid = it.key(), cacheValue(it), true
				return true
			}
		}
		i.fromC, i.fromB = false, true
		i.key, i.value, i.valid = i.bi.Key(), i.bi.Value(), true
		return true
	}
}

func (i *cacheIter) Valid() bool { return i.valid }

// Key returns the current key. The returned slice must not be modified.
func (i *cacheIter) Key() []byte {
	if !i.valid {
		return nil
	}
	return i.key
}

// Value returns the current value. The returned slice must not be modified.
func (i *cacheIter) Value() []byte {
	if !i.valid {
		return nil
	}
	return i.value
}

func (i *cacheIter) Error() error { return i.err }

func (i *cacheIter) Close() error {
	if i.closed {
		return fmt.Errorf("%w: iterator closed twice", ErrClosed)
	}
	i.closed, i.valid = true, false
	i.root = nil
	err := i.bi.Close()
	if i.err != nil {
		err = i.err
	}
	i.c.iters--
	if i.c.iters == 0 {
		i.c.pinned = false // no iterator shares the nodes any more
	}
	return err
}
