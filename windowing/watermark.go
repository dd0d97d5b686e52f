package windowing

import (
	"errors"
	"fmt"
	"time"
)

// WatermarkStrategy is how a source split estimates its watermark.
type WatermarkStrategy struct {
	// OutOfOrderness is the largest delay expected between the highest
	// event time seen on a split and a later element's event time: the
	// split's watermark is the highest event time seen minus this bound.
	// Default 0 (in-order data).
	OutOfOrderness time.Duration
	// Idleness is how long (processing time) a split may go without a
	// record before it stops holding the watermark back. 0 means never
	// (the default); only unbounded sources go idle.
	Idleness time.Duration
}

// Validate reports every problem with the strategy.
func (s WatermarkStrategy) Validate() error {
	var errs []error
	if s.OutOfOrderness < 0 {
		errs = append(errs, fmt.Errorf("windowing: out-of-orderness %s must not be negative", s.OutOfOrderness))
	}
	if s.Idleness < 0 {
		errs = append(errs, fmt.Errorf("windowing: idleness timeout %s must not be negative", s.Idleness))
	}
	return errors.Join(errs...)
}

// SplitWatermark tracks the watermark of one split under bounded
// out-of-orderness. Its zero value (via NewSplitWatermark) is at MinTime until
// the first element.
type SplitWatermark struct {
	delay Time
	max   Time
	seen  bool
}

// NewSplitWatermark returns a tracker for the strategy.
func NewSplitWatermark(s WatermarkStrategy) SplitWatermark {
	return SplitWatermark{delay: FromDuration(s.OutOfOrderness), max: MinTime}
}

// Observe records an element's event time.
func (w *SplitWatermark) Observe(t Time) {
	if !w.seen || t > w.max {
		w.max = t
		w.seen = true
	}
}

// State returns what a checkpoint keeps of the tracker: the highest event
// time seen, and whether any was.
func (w *SplitWatermark) State() (max Time, seen bool) { return w.max, w.seen }

// Restore sets the tracker to a state State returned.
func (w *SplitWatermark) Restore(max Time, seen bool) { w.max, w.seen = max, seen }

// Current is the highest event time seen minus the out-of-orderness bound,
// or MinTime before the first element. An element whose timestamp is at or
// after the watermark is never late.
func (w *SplitWatermark) Current() Time {
	if !w.seen {
		return MinTime
	}
	return w.max - w.delay
}

// Merger combines the watermarks of several inputs into one. This is the
// watermark rule of every Weir operator and source:
//
//	output = max(previous output, min over active inputs of their watermark)
//
// An input is active unless it has been marked idle, or it has reported
// nothing for longer than the idleness timeout (when one is set). An idle
// input stops holding the output back; it becomes active again when it
// reports. When every input is idle, the output advances to the highest
// watermark among them (nothing is pending anywhere, so the input that got
// furthest is not held back by one that has nothing to say) and AllIdle
// reports true, so the owner can mark its own output idle downstream.
// Outputs never go back: an idle input that resumes behind the output sends
// late data, the price of idleness in every runner that has it.
type Merger struct {
	in        []mergerInput
	idleAfter Time
	out       Time
}

type mergerInput struct {
	wm         Time
	idle       bool
	lastActive Time
}

// NewMerger returns a merger of n inputs, all at MinTime. An idleness of 0
// disables the timeout; inputs then go idle only through SetIdle.
func NewMerger(n int, idleness time.Duration, now Time) *Merger {
	m := &Merger{in: make([]mergerInput, n), idleAfter: FromDuration(idleness), out: MinTime}
	for i := range m.in {
		m.in[i] = mergerInput{wm: MinTime, lastActive: now}
	}
	m.recompute() // no inputs at all: already at the end of time
	return m
}

// Advance records that input i reports watermark wm at processing time now;
// an input's watermark never goes back. It returns whether the output
// advanced.
func (m *Merger) Advance(i int, wm, now Time) bool {
	in := &m.in[i]
	in.wm = MaxOf(in.wm, wm)
	in.idle = false
	in.lastActive = now
	return m.recompute()
}

// Active records that input i delivered data at processing time now without
// reporting a watermark: it is no longer idle.
func (m *Merger) Active(i int, now Time) bool {
	in := &m.in[i]
	in.lastActive = now
	if in.idle {
		in.idle = false
		return m.recompute()
	}
	return false
}

// SetIdle marks input i idle (an upstream said so). It returns whether the
// output advanced.
func (m *Merger) SetIdle(i int) bool {
	m.in[i].idle = true
	return m.recompute()
}

// Tick applies the idleness timeout at processing time now. It returns
// whether the output advanced.
func (m *Merger) Tick(now Time) bool {
	if m.idleAfter <= 0 {
		return false
	}
	changed := false
	for i := range m.in {
		in := &m.in[i]
		if !in.idle && in.wm < MaxTime && now-in.lastActive >= m.idleAfter {
			in.idle = true
			changed = true
		}
	}
	return changed && m.recompute()
}

// Current returns the merged watermark.
func (m *Merger) Current() Time { return m.out }

// Input returns input i's watermark and whether it is idle.
func (m *Merger) Input(i int) (Time, bool) { return m.in[i].wm, m.in[i].idle }

// AllIdle reports whether every input is idle (finished inputs count as
// neither idle nor holding).
func (m *Merger) AllIdle() bool {
	any := false
	for _, in := range m.in {
		if in.wm >= MaxTime {
			continue
		}
		if !in.idle {
			return false
		}
		any = true
	}
	return any
}

func (m *Merger) recompute() bool {
	min := MaxTime
	active := false
	for _, in := range m.in {
		if in.idle {
			continue
		}
		active = true
		if in.wm < min {
			min = in.wm
		}
	}
	if !active {
		// Every input idle (or none at all): the furthest one.
		min = MinTime
		for _, in := range m.in {
			min = MaxOf(min, in.wm)
		}
		if len(m.in) == 0 {
			min = MaxTime
		}
	}
	if min > m.out {
		m.out = min
		return true
	}
	return false
}
