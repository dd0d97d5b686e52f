package windowing

import (
	"fmt"
	"math"
	"time"
)

// Time is an event-time instant in milliseconds since the Unix epoch, the
// resolution Beam uses (mtime.Time). Weir keeps it as a plain int64 so that
// elements, windows and watermarks stay allocation-free.
type Time int64

const (
	// MinTime is the start of time: the watermark of an input that has
	// not yet said anything.
	MinTime Time = math.MinInt64 / 2
	// MaxTime is the end of time: the watermark of a finished input. Every
	// window has ended by then.
	MaxTime Time = math.MaxInt64 / 2
	// EndOfGlobalWindow is the maximum timestamp of the global window; as in
	// Beam it lies one day before the end of time, so that timers set at the
	// end of the global window still fire when the watermark reaches MaxTime.
	EndOfGlobalWindow Time = MaxTime - Time(24*time.Hour/time.Millisecond)
)

// FromTime converts a time.Time to Time.
func FromTime(t time.Time) Time { return Time(t.UnixMilli()) }

// FromDuration converts a duration to milliseconds of event time.
func FromDuration(d time.Duration) Time { return Time(d / time.Millisecond) }

// Std returns t as a time.Time in UTC.
func (t Time) Std() time.Time { return time.UnixMilli(int64(t)).UTC() }

// Add returns t+d, saturating at MinTime and MaxTime.
func (t Time) Add(d time.Duration) Time {
	r := t + FromDuration(d)
	if d > 0 && r < t || r > MaxTime {
		return MaxTime
	}
	if d < 0 && r > t || r < MinTime {
		return MinTime
	}
	return r
}

// String formats t as RFC 3339, or as -inf / +inf at the ends of time.
func (t Time) String() string {
	switch {
	case t <= MinTime:
		return "-inf"
	case t >= MaxTime:
		return "+inf"
	}
	return t.Std().Format("2006-01-02T15:04:05.000Z")
}

// MinOf returns the smaller of a and b.
func MinOf(a, b Time) Time {
	if a < b {
		return a
	}
	return b
}

// MaxOf returns the larger of a and b.
func MaxOf(a, b Time) Time {
	if a > b {
		return a
	}
	return b
}

// Window is an event-time interval [Start, End). Weir represents every window
// as an interval, the global window included (Start=MinTime, End=MaxTime);
// this covers Beam's IntervalWindow and GlobalWindow, which are the windows
// that fixed, sliding, session and nearly all custom WindowFns produce, and
// keeps windows comparable values rather than interfaces.
type Window struct {
	Start, End Time
}

// GlobalWindow is the single window of an unwindowed collection.
var GlobalWindow = Window{Start: MinTime, End: MaxTime}

// IsGlobal reports whether w is the global window.
func (w Window) IsGlobal() bool { return w == GlobalWindow }

// MaxTimestamp is the last instant inside the window (End-1; for the global
// window, EndOfGlobalWindow). An on-time pane fires when the watermark passes
// it, and elements emitted by a window's panes carry it as their timestamp.
func (w Window) MaxTimestamp() Time {
	if w.IsGlobal() {
		return EndOfGlobalWindow
	}
	return w.End - 1
}

// Contains reports whether t lies in the window.
func (w Window) Contains(t Time) bool { return t >= w.Start && t < w.End }

// Intersects reports whether the two windows overlap.
func (w Window) Intersects(o Window) bool { return w.Start < o.End && o.Start < w.End }

// Span returns the smallest window covering both.
func (w Window) Span(o Window) Window {
	return Window{Start: MinOf(w.Start, o.Start), End: MaxOf(w.End, o.End)}
}

func (w Window) String() string {
	if w.IsGlobal() {
		return "[global]"
	}
	return fmt.Sprintf("[%s, %s)", w.Start, w.End)
}
