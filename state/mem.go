package state

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/weir-dev/weir/internal/fsutil"
)

// ErrCorruptCheckpoint is returned by LoadMem when the snapshot file is
// damaged or not a memory snapshot.
var ErrCorruptCheckpoint = errors.New("state: corrupt checkpoint")

// memSnapshotFile is the name of the single file a Mem checkpoint writes.
const memSnapshotFile = "weir-mem-state"

// memMagic starts a memory snapshot file; its last byte is the format
// version.
var memMagic = [8]byte{'W', 'E', 'I', 'R', 'M', 'E', 'M', 1}

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Mem is the in-memory Backend, for tests, small pipelines and benchmarks.
// It holds its keys in a copy-on-write B-tree, so that iterators and
// checkpoints read a consistent snapshot without blocking writers: taking a
// snapshot is O(1), and the first writes after it copy the nodes they touch.
//
// Every method is safe for concurrent use. Checkpoint writes one file that
// LoadMem reads back.
type Mem struct {
	// mu guards the tree and everything about it. Reads hold it for
	// reading; writes, and NewIter (which starts a snapshot), for writing.
	mu struct {
		sync.RWMutex
		tree   memTree
		bytes  int64 // bytes of keys and values
		closed bool
		// dirty says the tree has nodes that a new snapshot must not share
		// with later writes: it changed since the last snapshot.
		dirty bool
		iters map[*memIter]struct{} // open iterators
	}
}

var _ Backend = (*Mem)(nil)

// NewMem returns an empty in-memory Backend.
func NewMem() *Mem {
	m := &Mem{}
	m.mu.iters = make(map[*memIter]struct{})
	return m
}

func memClosedError(op string) error {
	return fmt.Errorf("%w: %s on memory store", ErrClosed, op)
}

// newMemItem copies key and value into one allocation.
func newMemItem(key, value []byte) memItem {
	kv := make([]byte, len(key)+len(value))
	copy(kv, key)
	copy(kv[len(key):], value)
	return memItem{kv: kv, klen: len(key)}
}

// Get implements Backend.
func (m *Mem) Get(key []byte) ([]byte, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.mu.closed {
		return nil, false, memClosedError("Get")
	}
	it, ok := m.mu.tree.get(key)
	if !ok {
		return nil, false, nil
	}
	v := it.value()
	out := make([]byte, len(v))
	copy(out, v)
	return out, true, nil
}

// Set implements Backend.
func (m *Mem) Set(key, value []byte) error {
	if len(key) == 0 {
		m.mu.RLock()
		defer m.mu.RUnlock()
		if m.mu.closed {
			return memClosedError("Set")
		}
		return ErrEmptyKey
	}
	it := newMemItem(key, value)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return memClosedError("Set")
	}
	old, replaced := m.mu.tree.set(it)
	if replaced {
		m.mu.bytes -= int64(len(old.kv))
	}
	m.mu.bytes += int64(len(it.kv))
	m.mu.dirty = true
	return nil
}

// Delete implements Backend.
func (m *Mem) Delete(key []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return memClosedError("Delete")
	}
	m.deleteLocked(key)
	return nil
}

func (m *Mem) deleteLocked(key []byte) {
	if old, ok := m.mu.tree.delete(key); ok {
		m.mu.bytes -= int64(len(old.kv))
		m.mu.dirty = true
	}
}

// DeleteRange implements Backend. A nil end deletes to the last key. It
// costs O(log n) per key deleted.
func (m *Mem) DeleteRange(start, end []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return memClosedError("DeleteRange")
	}
	var c memCursor
	for {
		// Deleting restructures the tree, so seek afresh every time.
		if !c.seekGE(m.mu.tree.root, start) {
			return nil
		}
		key := c.item().key()
		if end != nil && bytes.Compare(key, end) >= 0 {
			return nil
		}
		m.deleteLocked(key)
	}
}

// NewIter implements Backend. The iterator reads a consistent snapshot of
// the store as of the call: later writes are not visible to it, and it never
// blocks them.
func (m *Mem) NewIter(lower, upper []byte) (Iterator, error) {
	it := &memIter{m: m}
	if lower != nil || upper != nil {
		buf := make([]byte, 0, len(lower)+len(upper))
		buf = append(buf, lower...)
		it.lower = buf[:len(lower):len(lower)]
		if upper != nil {
			it.upper = append(buf, upper...)[len(lower):]
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return nil, memClosedError("NewIter")
	}
	it.root = m.snapshotLocked()
	m.mu.iters[it] = struct{}{}
	return it, nil
}

// snapshotLocked returns the root of a tree that later writes will not
// change. m.mu must be held for writing.
func (m *Mem) snapshotLocked() *memNode {
	if m.mu.dirty {
		// From now on the nodes of the tree are shared with the snapshot:
		// writes must copy them.
		m.mu.tree.gen++
		m.mu.dirty = false
	}
	return m.mu.tree.root
}

// Checkpoint implements Backend. It writes a snapshot of the store into one
// file in dir; LoadMem reads it back. Writers are blocked only while the
// snapshot is taken, not while it is written.
func (m *Mem) Checkpoint(dir string) error {
	m.mu.Lock()
	if m.mu.closed {
		m.mu.Unlock()
		return memClosedError("Checkpoint")
	}
	root, count := m.snapshotLocked(), m.mu.tree.count
	m.mu.Unlock()

	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("state: checkpoint: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrCheckpointExists, dir)
		}
		return fmt.Errorf("state: checkpoint: %w", err)
	}
	if err := writeMemSnapshot(dir, root, count); err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("state: checkpoint %s: %w", dir, err)
	}
	return nil
}

// writeMemSnapshot writes the snapshot file: the magic, the number of
// entries as a uvarint, each entry as uvarint key length, key, uvarint value
// length, value, in key order, and the CRC-32C of everything before it. The
// file is written under a temporary name and renamed once synced, so a
// checkpoint directory never holds half a snapshot under the real name.
func writeMemSnapshot(dir string, root *memNode, count int) (err error) {
	tmp := filepath.Join(dir, memSnapshotFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if f != nil {
			_ = f.Close()
		}
	}()
	crc := crc32.New(crcTable)
	w := bufio.NewWriterSize(io.MultiWriter(f, crc), 1<<16)
	var scratch [binary.MaxVarintLen64]byte
	writeUvarint := func(v uint64) {
		_, _ = w.Write(binary.AppendUvarint(scratch[:0], v))
	}
	_, _ = w.Write(memMagic[:])
	writeUvarint(uint64(count))
	var c memCursor
	for ok := c.seekGE(root, nil); ok; ok = c.next() {
		it := c.item()
		writeUvarint(uint64(it.klen))
		_, _ = w.Write(it.key())
		v := it.value()
		writeUvarint(uint64(len(v)))
		_, _ = w.Write(v)
	}
	if err := w.Flush(); err != nil { // bufio keeps the first write error
		return err
	}
	if _, err := f.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32())); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	err, f = f.Close(), nil
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, memSnapshotFile)); err != nil {
		return err
	}
	return fsutil.SyncDir(dir)
}

// LoadMem returns a memory store holding the checkpoint that Mem.Checkpoint
// wrote into dir. A damaged snapshot returns an error wrapping
// ErrCorruptCheckpoint.
func LoadMem(dir string) (*Mem, error) {
	path := filepath.Join(dir, memSnapshotFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("state: load memory checkpoint: %w", err)
	}
	corrupt := func(what string) error {
		return fmt.Errorf("%w: %s: %s", ErrCorruptCheckpoint, path, what)
	}
	if len(data) < len(memMagic)+4 || !bytes.Equal(data[:len(memMagic)], memMagic[:]) {
		return nil, corrupt("not a memory snapshot")
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return nil, corrupt("checksum mismatch")
	}
	b := body[len(memMagic):]
	readBytes := func() ([]byte, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return nil, false
		}
		out := b[k : k+int(n)]
		b = b[k+int(n):]
		return out, true
	}
	count, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, corrupt("bad entry count")
	}
	b = b[k:]
	m := NewMem()
	var prev []byte
	for i := uint64(0); i < count; i++ {
		key, ok1 := readBytes()
		value, ok2 := readBytes()
		if !ok1 || !ok2 {
			return nil, corrupt(fmt.Sprintf("entry %d of %d is truncated", i, count))
		}
		if i > 0 && bytes.Compare(prev, key) >= 0 {
			return nil, corrupt(fmt.Sprintf("entry %d is out of order", i))
		}
		prev = key
		it := newMemItem(key, value)
		m.mu.tree.set(it)
		m.mu.bytes += int64(len(it.kv))
	}
	if len(b) != 0 {
		return nil, corrupt("trailing bytes after the last entry")
	}
	m.mu.dirty = true
	return m, nil
}

// Flush implements Backend; memory has nothing to make durable.
func (m *Mem) Flush() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.mu.closed {
		return memClosedError("Flush")
	}
	return nil
}

// memItemOverhead estimates the bytes a stored entry costs beyond its key
// and value: its item slot (32 bytes) in nodes that are on average about
// three quarters full, and the allocation rounding of its buffer.
const memItemOverhead = 56

// Metrics implements Backend: Keys is exact, MemBytes an estimate.
func (m *Mem) Metrics() Metrics {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.mu.closed {
		return Metrics{Keys: -1}
	}
	n := int64(m.mu.tree.count)
	return Metrics{Keys: n, MemBytes: m.mu.bytes + n*memItemOverhead}
}

// Close implements Backend and releases the store's memory. Iterators still
// open are closed and reported in the error; using them afterwards returns
// ErrClosed.
func (m *Mem) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return memClosedError("Close")
	}
	m.mu.closed = true
	m.mu.tree = memTree{}
	m.mu.bytes = 0
	leaked := len(m.mu.iters)
	for it := range m.mu.iters {
		it.root = nil
		it.valid = false
		it.err = memClosedError("iterator use")
	}
	m.mu.iters = nil
	if leaked > 0 {
		return fmt.Errorf("state: memory store closed with %d open iterators", leaked)
	}
	return nil
}

// memIter iterates over a snapshot of a Mem. It is not safe for concurrent
// use, and it must not be used concurrently with Close of its store.
type memIter struct {
	m            *Mem
	root         *memNode // the snapshot; nil once closed
	lower, upper []byte
	c            memCursor
	valid        bool
	closed       bool
	err          error // set when the store closed the iterator
}

func (i *memIter) First() bool {
	i.valid = i.root != nil && i.c.seekGE(i.root, i.lower) && i.inBounds()
	return i.valid
}

func (i *memIter) Next() bool {
	i.valid = i.valid && i.c.next() && i.inBounds()
	return i.valid
}

func (i *memIter) inBounds() bool {
	return i.upper == nil || bytes.Compare(i.c.item().key(), i.upper) < 0
}

func (i *memIter) Valid() bool { return i.valid }

// Key returns the current key. The returned slice must not be modified.
func (i *memIter) Key() []byte {
	if !i.valid {
		return nil
	}
	return i.c.item().key()
}

// Value returns the current value. The returned slice must not be modified.
func (i *memIter) Value() []byte {
	if !i.valid {
		return nil
	}
	return i.c.item().value()
}

func (i *memIter) Error() error { return i.err }

func (i *memIter) Close() error {
	if i.closed {
		return fmt.Errorf("%w: iterator closed twice", ErrClosed)
	}
	i.closed = true
	i.valid = false
	if i.err != nil {
		return i.err // closed by the store
	}
	i.root = nil
	i.m.mu.Lock()
	delete(i.m.mu.iters, i)
	i.m.mu.Unlock()
	return nil
}
