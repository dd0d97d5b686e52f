package state

import (
	"encoding/binary"
	"fmt"
)

// ChangeLog receives every change made through a Logged backend: Samza's and
// Kafka Streams' changelog, from which a fresh machine rebuilds the state.
// A connector (io/kafka) writes it to a compacted topic per operator.
type ChangeLog interface {
	// Changed records that key now holds value; a nil value records a
	// deletion. It must not keep key or value after it returns. It may be
	// called concurrently, but never for one key at once: changes to one
	// key are recorded in order.
	Changed(key, value []byte) error
}

// Logged returns b with every change also recorded in l: Set and Delete as
// they are, DeleteRange as the deletion of each key in the range (a
// changelog has no range deletes). Reads, Checkpoint and Close go to b.
func Logged(b Backend, l ChangeLog) Backend { return &logged{Backend: b, l: l} }

type logged struct {
	Backend
	l ChangeLog
}

func (lb *logged) Set(key, value []byte) error {
	if err := lb.Backend.Set(key, value); err != nil {
		return err
	}
	if value == nil {
		value = []byte{} // an empty value, not a deletion
	}
	return lb.l.Changed(key, value)
}

func (lb *logged) Delete(key []byte) error {
	if err := lb.Backend.Delete(key); err != nil {
		return err
	}
	return lb.l.Changed(key, nil)
}

func (lb *logged) DeleteRange(start, end []byte) error {
	keys, err := KeysIn(lb.Backend, start, end)
	if err != nil {
		return err
	}
	if err := lb.Backend.DeleteRange(start, end); err != nil {
		return err
	}
	for _, k := range keys {
		if err := lb.l.Changed(k, nil); err != nil {
			return err
		}
	}
	return nil
}

// KeysIn returns copies of the keys of b in [lower, upper).
func KeysIn(b Backend, lower, upper []byte) ([][]byte, error) {
	it, err := b.NewIter(lower, upper)
	if err != nil {
		return nil, err
	}
	var keys [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, append([]byte(nil), it.Key()...))
	}
	if err := it.Close(); err != nil {
		return nil, err
	}
	return keys, nil
}

// KeyRoute returns the operator of a stored key, and its key group (0 for
// operator metadata, which has none). A changelog routes changes by them: a
// topic per operator, a partition per range of key groups.
func KeyRoute(key []byte) (op uint32, kg KeyGroup, err error) {
	if len(key) < 5 {
		return 0, 0, fmt.Errorf("%w: %x", ErrCorruptKey, key)
	}
	op = binary.BigEndian.Uint32(key[1:])
	switch key[0] {
	case tagMeta:
		return op, 0, nil
	case tagCell, tagTimer, tagTimerIndex:
		if len(key) < 7 {
			return 0, 0, fmt.Errorf("%w: %x", ErrCorruptKey, key)
		}
		return op, KeyGroup(binary.BigEndian.Uint16(key[5:])), nil
	}
	return 0, 0, fmt.Errorf("%w: unknown tag in %x", ErrCorruptKey, key)
}

// Unlogged returns the backend under a Logged one, or b itself: for data a
// run rebuilds from elsewhere at each start (tables), which a changelog need
// not keep.
func Unlogged(b Backend) Backend {
	if l, ok := b.(*logged); ok {
		return l.Backend
	}
	return b
}
