package windowing

import (
	"errors"
	"fmt"
	"sort"
	"time"
)

// WindowFn assigns windows to elements by their timestamps.
type WindowFn interface {
	// AssignWindows appends the windows of an element with timestamp t to
	// dst and returns it. Every element is in at least one window.
	AssignWindows(t Time, dst []Window) []Window
	// String describes the function for logs and errors ("fixed(1h)").
	String() string
}

// MergingWindowFn is a WindowFn whose windows merge, such as sessions.
type MergingWindowFn interface {
	WindowFn
	// MergeWindows returns the merges to apply to a key's set of active
	// windows (sorted by start). Each merge replaces its From windows (two
	// or more) with To. Windows in no merge stay as they are.
	MergeWindows(active []Window) []Merge
}

// Merge is one merge of windows: From are replaced by To.
type Merge struct {
	From []Window
	To   Window
}

// ErrBadWindowFn reports invalid window parameters.
var ErrBadWindowFn = errors.New("windowing: bad window function")

type globalFn struct{}

// Global returns the WindowFn that puts every element in the global window:
// the windowing of a collection that was never windowed.
func Global() WindowFn { return globalFn{} }

func (globalFn) AssignWindows(_ Time, dst []Window) []Window { return append(dst, GlobalWindow) }

// IsGlobal reports whether fn is the global window function (or nil, which
// means the same).
func IsGlobal(fn WindowFn) bool {
	_, ok := fn.(globalFn)
	return ok || fn == nil
}
func (globalFn) String() string { return "global" }

// FixedFn is tumbling windows of Size, aligned to the epoch plus Offset.
type FixedFn struct {
	Size, Offset Time
}

// Fixed returns tumbling windows of the given size, aligned to the epoch.
func Fixed(size time.Duration) FixedFn { return FixedFn{Size: FromDuration(size)} }

// AssignWindows puts t in the one window that contains it.
func (f FixedFn) AssignWindows(t Time, dst []Window) []Window {
	start := t - mod(t-f.Offset, f.Size)
	return append(dst, Window{Start: start, End: start + f.Size})
}

func (f FixedFn) String() string { return fmt.Sprintf("fixed(%s)", f.Size.duration()) }

// SlidingFn is windows of Size starting every Period, aligned to the epoch
// plus Offset. An element is in Size/Period windows (rounded up).
type SlidingFn struct {
	Size, Period, Offset Time
}

// Sliding returns windows of the given size that start every period.
func Sliding(size, period time.Duration) SlidingFn {
	return SlidingFn{Size: FromDuration(size), Period: FromDuration(period)}
}

// AssignWindows returns every window of the slide that contains t, latest
// start first (as Beam does).
func (f SlidingFn) AssignWindows(t Time, dst []Window) []Window {
	last := t - mod(t-f.Offset, f.Period)
	for start := last; start > t-f.Size; start -= f.Period {
		dst = append(dst, Window{Start: start, End: start + f.Size})
	}
	return dst
}

func (f SlidingFn) String() string {
	return fmt.Sprintf("sliding(%s every %s)", f.Size.duration(), f.Period.duration())
}

// SessionsFn is session windows: each element starts a window [t, t+Gap) and
// windows of one key that overlap merge.
type SessionsFn struct {
	Gap Time
}

// Sessions returns session windows with the given gap.
func Sessions(gap time.Duration) SessionsFn { return SessionsFn{Gap: FromDuration(gap)} }

// AssignWindows returns the element's proto-session [t, t+Gap).
func (f SessionsFn) AssignWindows(t Time, dst []Window) []Window {
	return append(dst, Window{Start: t, End: t + f.Gap})
}

// MergeWindows merges overlapping sessions. Windows that merely touch
// (one's End equals the other's Start) do not merge, as in Beam.
func (f SessionsFn) MergeWindows(active []Window) []Merge {
	ws := append([]Window(nil), active...)
	sort.Slice(ws, func(i, j int) bool {
		if ws[i].Start != ws[j].Start {
			return ws[i].Start < ws[j].Start
		}
		return ws[i].End < ws[j].End
	})
	var merges []Merge
	var cur Merge
	flush := func() {
		if len(cur.From) > 1 {
			merges = append(merges, cur)
		}
	}
	for i, w := range ws {
		if i > 0 && w.Start < cur.To.End {
			cur.From = append(cur.From, w)
			cur.To = cur.To.Span(w)
			continue
		}
		if i > 0 {
			flush()
		}
		cur = Merge{From: []Window{w}, To: w}
	}
	if len(ws) > 0 {
		flush()
	}
	return merges
}

func (f SessionsFn) String() string { return fmt.Sprintf("sessions(gap %s)", f.Gap.duration()) }

// Validate reports a window function with impossible parameters.
func Validate(fn WindowFn) error {
	switch f := fn.(type) {
	case nil:
		return fmt.Errorf("%w: nil", ErrBadWindowFn)
	case FixedFn:
		if f.Size <= 0 {
			return fmt.Errorf("%w: fixed window size %v must be positive", ErrBadWindowFn, f.Size.duration())
		}
	case SlidingFn:
		var errs []error
		if f.Size <= 0 {
			errs = append(errs, fmt.Errorf("%w: sliding window size %v must be positive", ErrBadWindowFn, f.Size.duration()))
		}
		if f.Period <= 0 {
			errs = append(errs, fmt.Errorf("%w: sliding window period %v must be positive", ErrBadWindowFn, f.Period.duration()))
		} else if f.Period > f.Size {
			errs = append(errs, fmt.Errorf("%w: sliding window period %v is longer than its size %v (elements would fall between windows)", ErrBadWindowFn, f.Period.duration(), f.Size.duration()))
		}
		return errors.Join(errs...)
	case SessionsFn:
		if f.Gap <= 0 {
			return fmt.Errorf("%w: session gap %v must be positive", ErrBadWindowFn, f.Gap.duration())
		}
	}
	return nil
}

func mod(a, b Time) Time {
	r := a % b
	if r < 0 {
		r += b
	}
	return r
}

func (t Time) duration() time.Duration { return time.Duration(t) * time.Millisecond }
