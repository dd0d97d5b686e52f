package windowing

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// PaneTiming says when a pane fired relative to the watermark.
type PaneTiming uint8

const (
	// TimingUnknown is the timing of elements that never went through a
	// grouping (Beam's NO_FIRING pane).
	TimingUnknown PaneTiming = iota
	// Early panes fire before the watermark passes the end of the window.
	Early
	// OnTime is the one pane that fires when the watermark passes the end
	// of the window.
	OnTime
	// Late panes fire after the on-time pane, for data within the allowed
	// lateness.
	Late
)

func (t PaneTiming) String() string {
	switch t {
	case Early:
		return "early"
	case OnTime:
		return "on-time"
	case Late:
		return "late"
	}
	return "unknown"
}

// Pane describes one firing of a window: its index among the window's
// firings, its timing, and whether it is the first or the last.
type Pane struct {
	Index   int64
	Timing  PaneTiming
	IsFirst bool
	IsLast  bool
}

// NoFiring is the pane of elements that were never grouped.
var NoFiring = Pane{Timing: TimingUnknown, IsFirst: true, IsLast: true}

func (p Pane) String() string {
	s := fmt.Sprintf("%s#%d", p.Timing, p.Index)
	if p.IsFirst {
		s += ",first"
	}
	if p.IsLast {
		s += ",last"
	}
	return s
}

// Firing is the condition for an early or late pane: a number of elements
// since the last pane, or a processing-time delay after the first element
// since the last pane, whichever comes first when both are set.
type Firing struct {
	// Count fires after this many elements since the last pane; 0 means
	// no count condition.
	Count int64
	// Delay fires this long (processing time) after the first element
	// since the last pane; 0 means no delay condition.
	Delay time.Duration
}

// AfterCount fires after n elements since the last pane.
func AfterCount(n int64) Firing { return Firing{Count: n} }

// AfterProcessingTime fires d after the first element since the last pane.
func AfterProcessingTime(d time.Duration) Firing { return Firing{Delay: d} }

// Or returns a firing that fires when either f or o would (Beam's AfterAny
// of a count and a delay).
func (f Firing) Or(o Firing) Firing {
	if o.Count > 0 && (f.Count == 0 || o.Count < f.Count) {
		f.Count = o.Count
	}
	if o.Delay > 0 && (f.Delay == 0 || o.Delay < f.Delay) {
		f.Delay = o.Delay
	}
	return f
}

func (f Firing) isSet() bool { return f.Count > 0 || f.Delay > 0 }

func (f Firing) String() string {
	var parts []string
	if f.Count > 0 {
		parts = append(parts, fmt.Sprintf("count(%d)", f.Count))
	}
	if f.Delay > 0 {
		parts = append(parts, fmt.Sprintf("delay(%s)", f.Delay))
	}
	if len(parts) == 0 {
		return "never"
	}
	return strings.Join(parts, "|")
}

type triggerKind uint8

const (
	atWatermark triggerKind = iota
	repeatedly
)

// Trigger decides when a window's panes fire. The zero Trigger is the
// default: AtWatermark with late firings on every late element.
type Trigger struct {
	kind   triggerKind
	early  Firing // atWatermark: early firings, if set
	late   Firing // atWatermark: late firings; unset means AfterCount(1)
	repeat Firing // repeatedly: the firing condition
}

// AtWatermark fires the on-time pane when the watermark passes the end of
// the window. Without WithLateFirings, every element that arrives after the
// on-time pane and within the allowed lateness fires a late pane at once
// (Beam's default trigger).
func AtWatermark() Trigger { return Trigger{kind: atWatermark} }

// Repeatedly fires whenever f is met, whatever the watermark (useful in the
// global window); the window's last pane fires when it is garbage collected.
func Repeatedly(f Firing) Trigger { return Trigger{kind: repeatedly, repeat: f} }

// WithEarlyFirings adds early panes before the watermark.
func (t Trigger) WithEarlyFirings(f Firing) Trigger { t.early = f; return t }

// WithLateFirings sets when late panes fire after the on-time pane.
func (t Trigger) WithLateFirings(f Firing) Trigger { t.late = f; return t }

func (t Trigger) String() string {
	if t.kind == repeatedly {
		return "repeatedly(" + t.repeat.String() + ")"
	}
	s := "at-watermark"
	if t.early.isSet() {
		s += " early=" + t.early.String()
	}
	s += " late=" + t.lateFiring().String()
	return s
}

// Validate reports a trigger that could never fire its conditions.
func (t Trigger) Validate() error {
	var errs []error
	check := func(what string, f Firing) {
		if f.Count < 0 {
			errs = append(errs, fmt.Errorf("windowing: %s firing count %d must not be negative", what, f.Count))
		}
		if f.Delay < 0 {
			errs = append(errs, fmt.Errorf("windowing: %s firing delay %s must not be negative", what, f.Delay))
		}
	}
	check("early", t.early)
	check("late", t.late)
	check("repeated", t.repeat)
	if t.kind == repeatedly && !t.repeat.isSet() {
		errs = append(errs, errors.New("windowing: Repeatedly needs a count or a delay"))
	}
	return errors.Join(errs...)
}

// WaitsForWatermark reports whether the trigger fires nothing before the
// watermark passes the end of the window (AtWatermark without early
// firings): a window's data may then be held back until that watermark.
func (t Trigger) WaitsForWatermark() bool {
	return t.kind == atWatermark && !t.early.isSet()
}

// HasDelay reports whether the trigger ever waits on processing time.
func (t Trigger) HasDelay() bool {
	return t.early.Delay > 0 || t.late.Delay > 0 || t.repeat.Delay > 0
}

func (t Trigger) lateFiring() Firing {
	if t.late.isSet() {
		return t.late
	}
	return AfterCount(1)
}

// firing returns the condition that applies in the trigger's current phase.
func (t Trigger) firing(s *TriggerState) Firing {
	switch {
	case t.kind == repeatedly:
		return t.repeat
	case s.OnTimeFired:
		return t.lateFiring()
	default:
		return t.early
	}
}

// TriggerState is what the runner keeps per key and window for its trigger.
// It is a plain value: the runner encodes it into the state backend.
type TriggerState struct {
	// Count is the number of elements since the last pane.
	Count int64
	// Deadline is the processing time at which a delay firing is due, or
	// 0 when none is pending.
	Deadline Time
	// OnTimeFired says the on-time pane has fired.
	OnTimeFired bool
	// Panes is the number of panes fired so far (the next pane's index).
	Panes int64
}

// OnElement records an element arriving at processing time now. It returns
// the processing time at which the trigger must be evaluated again, or 0 if
// no processing-time timer is needed.
func (t Trigger) OnElement(s *TriggerState, now Time) (deadline Time) {
	s.Count++
	f := t.firing(s)
	if f.Delay > 0 && s.Deadline == 0 {
		s.Deadline = now + FromDuration(f.Delay)
		return s.Deadline
	}
	return 0
}

// ShouldFire reports whether a pane of w is due given the input watermark wm
// and the processing time now, and with which timing. The on-time pane is
// due once the watermark passes w's maximum timestamp; it fires even if no
// element arrived since an early pane (Beam's FIRE_ALWAYS on-time
// behaviour), as long as the window ever held data.
func (t Trigger) ShouldFire(s *TriggerState, w Window, wm, now Time) (PaneTiming, bool) {
	passed := wm > w.MaxTimestamp()
	if t.kind == atWatermark && !s.OnTimeFired && passed {
		return OnTime, true
	}
	if s.Count == 0 {
		return TimingUnknown, false
	}
	f := t.firing(s)
	due := f.Count > 0 && s.Count >= f.Count || s.Deadline != 0 && now >= s.Deadline
	if !due {
		return TimingUnknown, false
	}
	if passed {
		return Late, true
	}
	return Early, true
}

// OnFire records that a pane with the given timing fired, and returns that
// pane. last marks the window's final pane (at garbage collection).
func (t Trigger) OnFire(s *TriggerState, timing PaneTiming, last bool) Pane {
	p := Pane{Index: s.Panes, Timing: timing, IsFirst: s.Panes == 0, IsLast: last}
	s.Panes++
	s.Count = 0
	s.Deadline = 0
	if timing == OnTime {
		s.OnTimeFired = true
	}
	return p
}

// MergeStates combines the trigger states of windows merged into to, given
// the input watermark wm. Counts add up, the earliest deadline wins, and the
// merged window is in its late phase only if the watermark has passed its end.
func (t Trigger) MergeStates(states []TriggerState, to Window, wm Time) TriggerState {
	var m TriggerState
	for _, s := range states {
		m.Count += s.Count
		if s.Deadline != 0 && (m.Deadline == 0 || s.Deadline < m.Deadline) {
			m.Deadline = s.Deadline
		}
		if s.Panes > m.Panes {
			m.Panes = s.Panes
		}
		m.OnTimeFired = m.OnTimeFired || s.OnTimeFired
	}
	if wm <= to.MaxTimestamp() {
		m.OnTimeFired = false
	}
	return m
}

// AccumulationMode says whether a window's panes repeat earlier panes' data.
type AccumulationMode uint8

const (
	// Discarding panes hold only the data since the previous pane (Beam's
	// default).
	Discarding AccumulationMode = iota
	// Accumulating panes hold all the data of the window so far.
	Accumulating
)

func (m AccumulationMode) String() string {
	if m == Accumulating {
		return "accumulating"
	}
	return "discarding"
}

// Strategy is the windowing of a collection: how elements are assigned to
// windows, when panes fire, and how late data may be.
type Strategy struct {
	Fn              WindowFn
	Trigger         Trigger
	Mode            AccumulationMode
	AllowedLateness time.Duration
}

// DefaultStrategy is the windowing of a collection that was never windowed:
// the global window, fired at the watermark, discarding, no lateness.
func DefaultStrategy() Strategy { return Strategy{Fn: Global()} }

// Validate reports every problem with the strategy.
func (s Strategy) Validate() error {
	var errs []error
	if err := Validate(s.Fn); err != nil {
		errs = append(errs, err)
	}
	if err := s.Trigger.Validate(); err != nil {
		errs = append(errs, err)
	}
	if s.AllowedLateness < 0 {
		errs = append(errs, fmt.Errorf("windowing: allowed lateness %s must not be negative", s.AllowedLateness))
	}
	return errors.Join(errs...)
}

// Merging reports whether the strategy's windows merge.
func (s Strategy) Merging() bool {
	_, ok := s.Fn.(MergingWindowFn)
	return ok
}

// GCTime is when the state of window w is garbage collected: its maximum
// timestamp plus the allowed lateness. Data for w arriving when the input
// watermark has passed GCTime is droppably late.
func (s Strategy) GCTime(w Window) Time {
	return w.MaxTimestamp().Add(s.AllowedLateness)
}

// IsLate reports whether data for window w is droppably late under the input
// watermark wm (Beam: the window's maximum timestamp plus the allowed
// lateness is before the watermark).
func (s Strategy) IsLate(w Window, wm Time) bool {
	return s.GCTime(w) < wm
}

func (s Strategy) String() string {
	return fmt.Sprintf("%s trigger=%s %s lateness=%s", s.Fn, s.Trigger, s.Mode, s.AllowedLateness)
}
