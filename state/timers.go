package state

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/weir-dev/weir/windowing"
)

// TimeDomain says which clock a timer follows.
type TimeDomain uint8

const (
	// EventTime timers fire when the operator's input watermark passes them.
	EventTime TimeDomain = 1
	// ProcessingTime timers fire when the wall clock passes them (in a
	// backfill, at the end of input).
	ProcessingTime TimeDomain = 2
)

func (d TimeDomain) String() string {
	switch d {
	case EventTime:
		return "event-time"
	case ProcessingTime:
		return "processing-time"
	}
	return fmt.Sprintf("domain(%d)", uint8(d))
}

// Timer is a timer of one key and window of a keyed operator. Timers with the
// same operator, key, window, domain and name are the same timer: setting it
// again moves it (Beam's semantics).
type Timer struct {
	Op     uint32
	KG     KeyGroup
	Domain TimeDomain
	Time   windowing.Time
	Key    []byte
	Window windowing.Window
	Name   string
}

func appendTimerKey(dst []byte, t Timer) []byte {
	dst = slices.Grow(dst, timerKeyLen(t)) // one allocation, not five
	dst = append(dst, tagTimer)
	dst = appendU32(dst, t.Op)
	dst = appendU16(dst, uint16(t.KG))
	dst = append(dst, byte(t.Domain))
	dst = appendTime(dst, t.Time)
	dst = appendBytes(dst, t.Key)
	dst = appendWindow(dst, t.Window)
	return append(dst, t.Name...)
}

// timerKeyLen is the length of t's timer key, and of its index key.
func timerKeyLen(t Timer) int { return 1 + 4 + 2 + 1 + 8 + 4 + len(t.Key) + 16 + len(t.Name) }

func appendTimerIndex(dst []byte, t Timer) []byte {
	dst = slices.Grow(dst, timerKeyLen(t)-8)
	dst = append(dst, tagTimerIndex)
	dst = appendU32(dst, t.Op)
	dst = appendU16(dst, uint16(t.KG))
	dst = appendBytes(dst, t.Key)
	dst = appendWindow(dst, t.Window)
	dst = append(dst, byte(t.Domain))
	return append(dst, t.Name...)
}

func decodeTimerKey(b []byte) (Timer, error) {
	var t Timer
	if len(b) < 1+4+2+1+8+4 || b[0] != tagTimer {
		return t, fmt.Errorf("%w: timer key %x", ErrCorruptKey, b)
	}
	t.Op = binary.BigEndian.Uint32(b[1:])
	t.KG = KeyGroup(binary.BigEndian.Uint16(b[5:]))
	t.Domain = TimeDomain(b[7])
	t.Time = readTime(b[8:])
	n := uint64(binary.BigEndian.Uint32(b[16:]))
	b = b[20:]
	if uint64(len(b)) < n+16 { // in uint64: n+16 may overflow an int
		return t, fmt.Errorf("%w: short timer key", ErrCorruptKey)
	}
	t.Key = append([]byte(nil), b[:n]...)
	b = b[n:]
	t.Window = windowing.Window{Start: readTime(b), End: readTime(b[8:])}
	t.Name = string(b[16:])
	return t, nil
}

// SetTimer sets t, replacing the timer of the same identity if one is set.
func SetTimer(b Backend, t Timer) error {
	idx := appendTimerIndex(nil, t)
	old, ok, err := b.Get(idx)
	if err != nil {
		return err
	}
	if ok && len(old) == 8 {
		prev := t
		prev.Time = readTime(old)
		if prev.Time == t.Time {
			return nil
		}
		if err := b.Delete(appendTimerKey(nil, prev)); err != nil {
			return err
		}
	}
	tk := appendTimerKey(nil, t)
	var err2 error
	if c, isCache := b.(*Cache); isCache && !ok {
		// No index, so the backend holds no key of this timer but those
		// the cache knows it deleted: a cache may forget the timer key
		// when it is deleted before it was written back.
		err2 = c.SetNew(tk, nil)
	} else {
		err2 = b.Set(tk, nil)
	}
	if err2 != nil {
		return err2
	}
	return b.Set(idx, appendTime(nil, t.Time))
}

// SetNewTimer sets t for a caller that knows no timer of t's identity is
// set: it skips SetTimer's read of the timer's index. On a Cache, a timer set
// this way and deleted before the cache writes back never reaches the
// backend.
func SetNewTimer(b Backend, t Timer) error {
	set := b.Set
	if c, ok := b.(*Cache); ok {
		set = c.SetNew
	}
	if err := set(appendTimerKey(nil, t), nil); err != nil {
		return err
	}
	return set(appendTimerIndex(nil, t), appendTime(nil, t.Time))
}

// DeleteTimer clears the timer with t's identity (t.Time is ignored).
func DeleteTimer(b Backend, t Timer) error {
	idx := appendTimerIndex(nil, t)
	old, ok, err := b.Get(idx)
	if err != nil || !ok || len(old) != 8 {
		return err
	}
	t.Time = readTime(old)
	if err := b.Delete(appendTimerKey(nil, t)); err != nil {
		return err
	}
	return b.Delete(idx)
}

// A fixed timer is one whose time follows from its identity, such as the
// timer at the end of a window: nobody needs to look its time up, so it is
// kept without the index that SetTimer keeps beside each timer (a timer
// key alone: one write to set it, one to clear it). Set, test and clear
// fixed timers with the three functions below only, and always with their
// time.

// SetFixedTimer sets the fixed timer t; isNew says the caller knows it is
// not set (on a Cache, a timer set so and cleared before the cache writes
// back never reaches the backend).
func SetFixedTimer(b Backend, t Timer, isNew bool) error {
	if c, ok := b.(*Cache); ok && isNew {
		return c.SetNew(appendTimerKey(nil, t), nil)
	}
	return b.Set(appendTimerKey(nil, t), nil)
}

// FixedTimerSet reports whether the fixed timer t is set.
func FixedTimerSet(b Backend, t Timer) (bool, error) {
	k := appendTimerKey(nil, t)
	if c, ok := b.(*Cache); ok {
		_, ok, err := c.View(k)
		return ok, err
	}
	_, ok, err := b.Get(k)
	return ok, err
}

// DeleteFixedTimer clears the fixed timer t. It also deletes the index
// SetTimer would have kept, so that a timer set by SetTimer (by an earlier
// version of Weir, in a checkpoint restored now) goes entirely; on a Cache
// that knows the backend has no such index this costs nothing.
func DeleteFixedTimer(b Backend, t Timer) error {
	if err := b.Delete(appendTimerKey(nil, t)); err != nil {
		return err
	}
	return b.Delete(appendTimerIndex(nil, t))
}

// NextTimer returns the earliest timer of operator op in key group kg and
// domain d whose time is at most upTo, if any.
func NextTimer(b Backend, op uint32, kg KeyGroup, d TimeDomain, upTo windowing.Time) (Timer, bool, error) {
	return NextTimerFrom(b, op, kg, d, math.MinInt64, upTo)
}

// NextTimerFrom is NextTimer for a caller that knows no timer is set before
// from. Starting the search there skips the deletion markers that fired
// timers leave behind in an LSM store, which a search from the start of
// time would step over one by one.
func NextTimerFrom(b Backend, op uint32, kg KeyGroup, d TimeDomain, from, upTo windowing.Time) (Timer, bool, error) {
	ts, err := DueTimers(b, op, kg, d, from, upTo, nil, 1)
	if err != nil || len(ts) == 0 {
		return Timer{}, false, err
	}
	return ts[0], true, nil
}

// DueTimers appends to dst, in firing order (by time, then key), the first
// max timers of operator op in key group kg and domain d whose times are in
// [from, upTo]. One search finds many timers: a caller that fires them checks
// that each is still set (TimerTime) before firing it, since firing one may
// move or delete the others, and searches again when firing sets a timer
// before the last one found.
func DueTimers(b Backend, op uint32, kg KeyGroup, d TimeDomain, from, upTo windowing.Time, dst []Timer, max int) ([]Timer, error) {
	prefix := appendTimerKey(nil, Timer{Op: op, KG: kg, Domain: d})[:1+4+2+1]
	lower := prefix
	if from != math.MinInt64 {
		lower = appendTime(append([]byte(nil), prefix...), from)
	}
	var upper []byte
	if upTo == math.MaxInt64 {
		upper = PrefixEnd(prefix) // upTo+1 would wrap around to the minimum
	} else {
		upper = appendTime(append([]byte(nil), prefix...), upTo+1)
	}
	it, err := b.NewIter(lower, upper)
	if err != nil {
		return dst, err
	}
	for ok := it.First(); ok && max > 0; ok = it.Next() {
		var t Timer
		if t, err = decodeTimerKey(it.Key()); err != nil {
			break
		}
		dst = append(dst, t)
		max--
	}
	if cerr := it.Close(); err == nil {
		err = cerr
	}
	return dst, err
}

// EarliestTimer returns the time of the earliest timer of op in kg and domain
// d, or MaxTime if there is none.
func EarliestTimer(b Backend, op uint32, kg KeyGroup, d TimeDomain) (windowing.Time, error) {
	t, ok, err := NextTimer(b, op, kg, d, windowing.MaxTime)
	if err != nil || !ok {
		return windowing.MaxTime, err
	}
	return t.Time, nil
}

// TimerTime returns the time the timer with t's identity is set for.
func TimerTime(b Backend, t Timer) (windowing.Time, bool, error) {
	old, ok, err := b.Get(appendTimerIndex(nil, t))
	if err != nil || !ok || len(old) != 8 {
		return 0, false, err
	}
	return readTime(old), true, nil
}
