package sdk

import (
	"fmt"
	"reflect"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/windowing"
)

// WindowInto assigns every element to windows of fn and sets how the
// collection's groupings fire (Trigger, Accumulating, AllowedLateness).
//
// Data that arrives when the watermark has passed the end of its window plus
// the allowed lateness is late: it does not enter the windowed collection but
// goes to LateData(windowed), which can be written to a sink. Late data that
// no transform reads is counted and logged, never dropped silently.
//
// Options: Trigger, Accumulating, AllowedLateness, Named.
func WindowInto[T any](in PCollection[T], fn windowing.WindowFn, opts ...Option) PCollection[T] {
	if !in.valid() {
		panic("sdk: WindowInto on a zero PCollection")
	}
	p := in.p
	o := collect(opts)
	name := o.nameOr("WindowInto(" + fmt.Sprint(fn) + ")")
	o.only(p.g, fmt.Sprintf("WindowInto %q", name), "Trigger", "Accumulating", "AllowedLateness")
	s := windowing.Strategy{Fn: fn}
	if o.trigger != nil {
		s.Trigger = *o.trigger
	}
	if o.accumulating {
		s.Mode = windowing.Accumulating
	}
	if o.lateness != nil {
		s.AllowedLateness = time.Duration(*o.lateness)
	}
	t := reflect.TypeFor[T]()
	n := p.g.AddNode(graph.KindWindowInto, name, []*graph.PCol{in.col}, t, t)
	if err := s.Validate(); err != nil {
		p.g.Fail(fmt.Errorf("%w: %s: %v", graph.ErrInvalid, n, err))
		s = windowing.DefaultStrategy()
	}
	n.Window = &graph.WindowSpec{Strategy: s}
	n.Outputs[0].Strategy = s
	n.Outputs[1].Strategy = in.col.Strategy
	return output[T](p, n, 0)
}

// LateData returns the late elements of a WindowInto: those that arrived too
// late for every window they belong to. windowed must be the output of
// WindowInto.
func LateData[T any](windowed PCollection[T]) PCollection[T] {
	n := windowed.col.Producer
	if n == nil || n.Kind != graph.KindWindowInto || n.Outputs[0] != windowed.col {
		windowed.p.g.Fail(fmt.Errorf("%w: LateData of %s: it is not the output of a WindowInto", graph.ErrInvalid, windowed.col))
		return windowed
	}
	return output[T](windowed.p, n, 1)
}

// Trigger sets when the panes of a window fire (default: at the watermark).
func Trigger(t windowing.Trigger) Option {
	return optionFunc{"Trigger", func(o *options) { o.trigger = &t }}
}

// Accumulating makes each pane hold all of the window's data so far, instead
// of only what arrived since the previous pane.
func Accumulating() Option {
	return optionFunc{"Accumulating", func(o *options) { o.accumulating = true }}
}

// AllowedLateness keeps a window's state for d after the watermark passes its
// end; data arriving in that time fires late panes. Default 0.
func AllowedLateness(d time.Duration) Option {
	return optionFunc{"AllowedLateness", func(o *options) { x := int64(d); o.lateness = &x }}
}
