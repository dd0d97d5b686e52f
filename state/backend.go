// Package state is Weir's keyed state: an ordered key-value Backend (Pebble on
// disk by default, or memory), the encoding of state and timer keys, and key
// groups.
//
// Every keyed operator of a running pipeline keeps its state cells and timers
// in one Backend, under keys that encode the operator, the key group, the
// element key, the window and the state name (see keys.go). Key groups are a
// fixed number of hash buckets of element keys (DefaultKeyGroups, as Flink's
// default maximum parallelism); workers own ranges of them, so keyed state
// can later move between workers and processes a key group at a time.
//
// Dependency direction: state imports windowing (for Time and Window) and
// Pebble; it never imports sdk, runner or io.
package state

import "errors"

// Errors returned by backends. They are package-prefixed sentinels; test for
// them with errors.Is.
var (
	// ErrClosed is returned by operations on a closed Backend.
	ErrClosed = errors.New("state: backend closed")
	// ErrCheckpointExists is returned by Checkpoint when the target exists.
	ErrCheckpointExists = errors.New("state: checkpoint directory already exists")
	// ErrEmptyKey is returned by Set for an empty key. Weir's keys always
	// start with a tag byte, and Pebble handles the empty key poorly (its
	// invariant checks, on under -race, reject it as the first key of an
	// sstable), so no backend stores it.
	ErrEmptyKey = errors.New("state: empty key")
	// ErrDiskFull is returned by every operation of a store whose disk
	// filled up under it (PebbleOptions.OnFailure).
	ErrDiskFull = errors.New("state: no space left on the state directory's disk")
)

// Backend is an ordered byte key-value store shared by all keyed operators of
// one process. Implementations are safe for concurrent use; keyed operators
// write disjoint key ranges, so no further coordination is needed.
//
// Keys and values passed in are not retained: the caller may reuse them when
// the call returns.
type Backend interface {
	// Get returns a copy of the value stored under key, and whether the key
	// exists.
	Get(key []byte) (value []byte, ok bool, err error)
	// Set stores value under key, which must not be empty (ErrEmptyKey).
	Set(key, value []byte) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(key []byte) error
	// DeleteRange removes every key in [start, end). A nil end means no
	// upper bound, as in NewIter (PrefixEnd returns nil for a prefix of
	// 0xff bytes). An empty or inverted range removes nothing.
	DeleteRange(start, end []byte) error
	// NewIter returns an iterator over the keys in [lower, upper), in
	// ascending byte order. A nil upper bound means no upper bound; an empty
	// or inverted range yields no keys. The iterator reads a consistent
	// snapshot of the store as of the call: later writes are not visible to
	// it.
	NewIter(lower, upper []byte) (Iterator, error)
	// Checkpoint writes a consistent, self-contained copy of the store to
	// dir, which must not exist. The copy can be opened as a store of the
	// same kind (OpenPebble on the directory, or LoadMem for memory).
	// Writes that returned before Checkpoint was called are in the copy.
	Checkpoint(dir string) error
	// Flush makes every write so far durable.
	Flush() error
	// Metrics returns size information for logs and benchmarks.
	Metrics() Metrics
	// Close flushes and releases the store, after waiting for calls in
	// flight. Reopening a closed on-disk store loses nothing that was
	// written before Close. Afterwards every method returns an error
	// wrapping ErrClosed (Metrics reports Keys -1).
	//
	// Iterators must be closed first, as in Pebble, and must not be in use
	// during Close. Iterators left open are closed and reported in Close's
	// error; using them afterwards returns ErrClosed.
	Close() error
}

// Metrics describes a backend's size.
type Metrics struct {
	// Keys is the number of live keys if known exactly (memory), else an
	// estimate or -1.
	Keys int64
	// DiskBytes is the size of the store on disk (0 for memory).
	DiskBytes int64
	// MemBytes is memory held by the store (memtables, block cache in use).
	MemBytes int64
}

// Iterator walks the keys of a Backend in ascending order. Its contract
// follows Pebble's:
//
//   - A new iterator is unpositioned; call First to position it on the first
//     key in its bounds.
//   - First and Next return whether the iterator is positioned on a key
//     (Valid). Once they return false, the iterator is exhausted or failed;
//     Error tells which.
//   - Next on an unpositioned or exhausted iterator returns false.
//   - Key and Value are valid only while positioned, and only until the next
//     call to First, Next or Close; copy them to keep them, and do not
//     modify them.
//   - Close releases the iterator and returns the first error met, if any.
//     Every iterator must be closed, once; closing it again returns an
//     error wrapping ErrClosed.
//   - An iterator is not safe for concurrent use.
type Iterator interface {
	First() bool
	Next() bool
	Valid() bool
	Key() []byte
	Value() []byte
	Error() error
	Close() error
}
