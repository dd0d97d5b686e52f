package state

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cespare/xxhash/v2"

	"github.com/weir-dev/weir/windowing"
)

// KeyGroup is a hash bucket of element keys. Keyed state is partitioned by
// key group, and a worker owns a contiguous range of groups.
type KeyGroup uint16

// DefaultKeyGroups is the number of key groups of a pipeline unless it says
// otherwise (Flink's default maximum parallelism). It bounds parallelism:
// a pipeline never runs more keyed workers than it has key groups. It must not
// change between runs that share state.
const DefaultKeyGroups = 128

// KeyGroupOf returns the key group of an encoded element key. The hash is
// xxhash64 of the key bytes, so it is stable across processes and versions.
func KeyGroupOf(key []byte, groups int) KeyGroup {
	return KeyGroup(xxhash.Sum64(key) % uint64(groups))
}

// GroupRange returns the key groups [lo, hi) owned by worker w of n workers,
// for groups key groups: contiguous ranges as even as possible.
func GroupRange(w, n, groups int) (lo, hi KeyGroup) {
	return KeyGroup(w * groups / n), KeyGroup((w + 1) * groups / n)
}

// WorkerOf returns the worker that owns key group kg under GroupRange.
func WorkerOf(kg KeyGroup, n, groups int) int {
	return (int(kg)*n + n - 1) / groups
}

// Key tags: the first byte of every key says what it addresses.
const (
	tagCell       = 's' // state cell: op kg key window name [sub]
	tagTimer      = 't' // timer, ordered by time: op kg domain time key window name
	tagTimerIndex = 'u' // timer index: op kg key window domain name -> time
	tagMeta       = 'm' // operator metadata: op name
)

// ErrCorruptKey is returned when a stored key cannot be decoded.
var ErrCorruptKey = errors.New("state: corrupt key")

func appendU32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }
func appendU16(dst []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(dst, v) }

// appendTime encodes t so that byte order equals numeric order.
func appendTime(dst []byte, t windowing.Time) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(t)^(1<<63))
}

func readTime(b []byte) windowing.Time {
	return windowing.Time(binary.BigEndian.Uint64(b) ^ (1 << 63))
}

func appendBytes(dst, b []byte) []byte {
	dst = appendU32(dst, uint32(len(b)))
	return append(dst, b...)
}

func appendWindow(dst []byte, w windowing.Window) []byte {
	return appendTime(appendTime(dst, w.Start), w.End)
}

// Cell addresses one state cell: the state named Name of operator Op, for
// element key Key (encoded) in Window. Key must hash to KG.
type Cell struct {
	Op     uint32
	KG     KeyGroup
	Key    []byte
	Window windowing.Window
	Name   string
}

// AppendOperatorPrefix appends the prefix of every cell of operator op in key
// group kg.
func AppendOperatorPrefix(dst []byte, op uint32, kg KeyGroup) []byte {
	dst = append(dst, tagCell)
	dst = appendU32(dst, op)
	return appendU16(dst, uint16(kg))
}

// AppendKeyPrefix appends the prefix of every cell of one element key.
func AppendKeyPrefix(dst []byte, op uint32, kg KeyGroup, key []byte) []byte {
	return appendBytes(AppendOperatorPrefix(dst, op, kg), key)
}

// AppendWindowPrefix appends the prefix of every cell of one key and window;
// deleting its range clears the window's state (garbage collection).
func AppendWindowPrefix(dst []byte, op uint32, kg KeyGroup, key []byte, w windowing.Window) []byte {
	return appendWindow(AppendKeyPrefix(dst, op, kg, key), w)
}

// AppendCell appends the key of cell c. Multi-entry cells (bags, maps) append
// their entry's sub-key after it, so that AppendCell is the prefix of all of
// the cell's entries.
func AppendCell(dst []byte, c Cell) []byte {
	dst = AppendWindowPrefix(dst, c.Op, c.KG, c.Key, c.Window)
	dst = appendU16(dst, uint16(len(c.Name)))
	return append(dst, c.Name...)
}

// DecodeCell decodes a key written by AppendCell and returns the cell and the
// remaining sub-key. The cell's Key and the sub-key alias b.
func DecodeCell(b []byte) (Cell, []byte, error) {
	var c Cell
	if len(b) < 1+4+2+4 || b[0] != tagCell {
		return c, nil, fmt.Errorf("%w: cell key %x", ErrCorruptKey, b)
	}
	c.Op = binary.BigEndian.Uint32(b[1:])
	c.KG = KeyGroup(binary.BigEndian.Uint16(b[5:]))
	n := uint64(binary.BigEndian.Uint32(b[7:]))
	b = b[11:]
	if uint64(len(b)) < n+16+2 { // in uint64: n+18 may overflow an int
		return c, nil, fmt.Errorf("%w: short cell key", ErrCorruptKey)
	}
	c.Key = b[:n:n]
	b = b[n:]
	c.Window = windowing.Window{Start: readTime(b), End: readTime(b[8:])}
	b = b[16:]
	m := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < m {
		return c, nil, fmt.Errorf("%w: short cell name", ErrCorruptKey)
	}
	c.Name = string(b[:m])
	return c, b[m:], nil
}

// GroupRanges returns the key ranges, [start, end) pairs, of operator op's
// cells, timers and timer index in key groups [lo, hi): what a keyed
// instance owning those groups alone writes (Cache.Own).
func GroupRanges(op uint32, lo, hi KeyGroup) [][2][]byte {
	var rs [][2][]byte
	for _, tag := range []byte{tagCell, tagTimer, tagTimerIndex} {
		at := func(kg KeyGroup) []byte {
			k := binary.BigEndian.AppendUint32([]byte{tag}, op)
			return binary.BigEndian.AppendUint16(k, uint16(kg))
		}
		rs = append(rs, [2][]byte{at(lo), at(hi)})
	}
	return rs
}

// PrefixEnd returns the smallest key greater than every key with the given
// prefix, or nil if there is none (the prefix is all 0xff).
func PrefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// MetaKey returns the key of operator-level metadata named name.
func MetaKey(op uint32, name string) []byte {
	dst := append([]byte{tagMeta}, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(dst[1:], op)
	return append(dst, name...)
}
