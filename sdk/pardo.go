package sdk

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"unsafe"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/windowing"
)

// DoFn processes the elements of a ParDo. Each worker runs its own shallow
// copy of the DoFn value, so fields set in Setup are per worker.
//
// A DoFn may also implement any of:
//
//	Setup(ctx *Context) error                               // once per worker
//	FinishBundle(ctx *Context, emit Emitter[O]) error      // after each batch
//	OnTimer(ctx *Context, t Timer, emit Emitter[O]) error  // timers (stateful)
//	Teardown() error                                        // once, at the end
type DoFn[I, O any] interface {
	ProcessElement(ctx *Context, in I, emit Emitter[O]) error
}

// Context describes the element (or timer) being processed.
type Context struct {
	x *graph.ExecCtx
	// buf holds the encoding of the state value being written.
	buf []byte
}

// Context returns the run's context.
func (c *Context) Context() context.Context { return c.x.Ctx }

// Timestamp is the element's event time (a timer's time in OnTimer).
func (c *Context) Timestamp() Time { return c.x.Time }

// Window is the element's window.
func (c *Context) Window() windowing.Window { return c.x.Window }

// Pane is the pane the element was produced in.
func (c *Context) Pane() windowing.Pane { return c.x.Pane }

// Watermark is the input watermark of the transform.
func (c *Context) Watermark() Time { return c.x.InputWatermark }

// ProcessingTime is the current processing time. In a backfill it stands
// still at the start of time until the input ends.
func (c *Context) ProcessingTime() Time { return c.x.Now }

// Transform is the transform's name.
func (c *Context) Transform() string { return c.x.Transform }

// Key returns the key of the element or timer in a stateful DoFn; K must be
// the input's key type.
func Key[K any](c *Context) K {
	k, _ := c.x.Key.(K)
	return k
}

// Emitter outputs elements from a DoFn. Emit uses the element's (or timer's)
// timestamp and window; EmitAt sets the timestamp.
type Emitter[O any] struct {
	x   *graph.ExecCtx
	out graph.Emit
	// unboxed, when set, is the next transform of the chain taking v
	// without the allocation of boxing it (graph.UnboxedLink).
	unboxed func(O, graph.Elem)
}

// Emit outputs v with the current timestamp and window.
func (e Emitter[O]) Emit(v O) {
	if e.unboxed != nil {
		e.unboxed(v, graph.Elem{Time: e.x.Time, Window: e.x.Window, Pane: e.x.Pane})
		return
	}
	e.out(graph.Elem{Value: v, Time: e.x.Time, Window: e.x.Window, Pane: e.x.Pane})
}

// EmitAt outputs v with timestamp t in the current window.
func (e Emitter[O]) EmitAt(v O, t Time) {
	if e.unboxed != nil {
		e.unboxed(v, graph.Elem{Time: t, Window: e.x.Window, Pane: e.x.Pane})
		return
	}
	e.out(graph.Elem{Value: v, Time: t, Window: e.x.Window, Pane: e.x.Pane})
}

// setUnboxed implements graph.UnboxedOut for a DoFn of one output of type
// O.
func setUnboxed[O any](dst *func(O, graph.Elem), i int, f any) bool {
	u, ok := f.(func(O, graph.Elem))
	if !ok || i != 0 {
		return false
	}
	*dst = u
	return true
}

// Timer is a timer that fired.
type Timer struct {
	Name string
	Time Time
	// EventTime is true for event-time timers, false for processing-time.
	EventTime bool
}

type setupFn interface{ Setup(*Context) error }
type teardownFn interface{ Teardown() error }

// doFnAdapter runs a typed DoFn behind graph.DoFn.
type doFnAdapter[I, O any] struct {
	fn      DoFn[I, O]
	ctx     Context
	unboxed func(O, graph.Elem)
}

func (a *doFnAdapter[I, O]) SetUnboxedOut(i int, f any) bool {
	return setUnboxed(&a.unboxed, i, f)
}

func (a *doFnAdapter[I, O]) Setup(x *graph.ExecCtx) error {
	a.ctx.x = x
	if s, ok := a.fn.(setupFn); ok {
		return s.Setup(&a.ctx)
	}
	return nil
}

func (a *doFnAdapter[I, O]) Process(x *graph.ExecCtx, e graph.Elem, out []graph.Emit) error {
	return a.fn.ProcessElement(&a.ctx, e.Value.(I), Emitter[O]{x: x, out: out[0], unboxed: a.unboxed})
}

func (a *doFnAdapter[I, O]) OnTimer(x *graph.ExecCtx, out []graph.Emit) error {
	t, ok := a.fn.(interface {
		OnTimer(*Context, Timer, Emitter[O]) error
	})
	if !ok {
		return fmt.Errorf("sdk: %s: a timer fired but the DoFn has no OnTimer method", x.Transform)
	}
	ft := Timer{Name: x.Timer.Name, Time: x.Timer.Time, EventTime: x.Timer.Domain == graph.DomainEvent}
	return t.OnTimer(&a.ctx, ft, Emitter[O]{x: x, out: out[0], unboxed: a.unboxed})
}

func (a *doFnAdapter[I, O]) FinishBundle(x *graph.ExecCtx, out []graph.Emit) error {
	if f, ok := a.fn.(interface {
		FinishBundle(*Context, Emitter[O]) error
	}); ok {
		return f.FinishBundle(&a.ctx, Emitter[O]{x: x, out: out[0], unboxed: a.unboxed})
	}
	return nil
}

func (a *doFnAdapter[I, O]) Teardown() error {
	if t, ok := a.fn.(teardownFn); ok {
		return t.Teardown()
	}
	return nil
}

// copyDoFn returns a shallow copy of fn: a copy of the struct, or of the
// struct a pointer points to.
func copyDoFn[I, O any](fn DoFn[I, O]) DoFn[I, O] {
	v := reflect.ValueOf(fn)
	switch {
	case v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct:
		c := reflect.New(v.Elem().Type())
		c.Elem().Set(v.Elem())
		return c.Interface().(DoFn[I, O])
	default:
		return fn // values are copied by the interface already
	}
}

// ParDo applies a DoFn to every element. On a keyed input (KV[K, V]) with
// state or timers declared (State), it runs keyed: each key's state and timers
// live in the state backend, per key and window.
//
// Options: State, SideInputs, Named.
func ParDo[I, O any](in PCollection[I], fn DoFn[I, O], opts ...Option) PCollection[O] {
	if !in.valid() {
		panic("sdk: ParDo on a zero PCollection")
	}
	p := in.p
	o := collect(opts)
	name := o.nameOr("ParDo(" + typeName(fn) + ")")
	o.only(p.g, fmt.Sprintf("ParDo %q", name), "State", "SideInputs")
	n := p.g.AddNode(graph.KindParDo, name, []*graph.PCol{in.col}, reflect.TypeFor[O]())
	spec := &graph.DoFnSpec{
		New: func() graph.DoFn { return &doFnAdapter[I, O]{fn: copyDoFn(fn)} },
	}
	seen := map[string]bool{}
	for _, s := range o.states {
		if err := s.declare(spec); err != nil {
			p.g.Fail(fmt.Errorf("%w: %s: %v", graph.ErrInvalid, n, err))
		}
	}
	for _, d := range spec.States {
		if strings.HasPrefix(d.Name, "__") || d.Name == "" || seen[d.Name] {
			p.g.Fail(fmt.Errorf("%w: %s: state %q: names must be unique, non-empty and not start with __ (reserved)", graph.ErrInvalid, n, d.Name))
		}
		seen[d.Name] = true
	}
	for _, d := range spec.Timers {
		if strings.HasPrefix(d.Name, "__") || d.Name == "" || seen["timer "+d.Name] {
			p.g.Fail(fmt.Errorf("%w: %s: timer %q: names must be unique, non-empty and not start with __ (reserved)", graph.ErrInvalid, n, d.Name))
		}
		seen["timer "+d.Name] = true
	}
	spec.Stateful = len(spec.States)+len(spec.Timers) > 0 && in.col.KV != nil
	n.DoFn = spec
	for _, s := range o.sides {
		if s.pipeline() != p {
			p.g.Fail(fmt.Errorf("%w: %s: side input from another pipeline", graph.ErrInvalid, n))
			continue
		}
		n.Sides = append(n.Sides, s.side())
		s.side().PCol.Consumers = append(s.side().PCol.Consumers, n)
	}
	if spec.Stateful && len(n.Sides) > 0 {
		p.g.Fail(fmt.Errorf("%w: %s: side inputs on a stateful ParDo are not supported yet; join the side data into the keyed input (CoGroupByKey or a Flatten of tagged values)", graph.ErrInvalid, n))
	}
	return output[O](p, n, 0)
}

func typeName(v any) string {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "nil"
	}
	if t.Name() == "" {
		return t.Kind().String()
	}
	return t.Name()
}

// simpleFn is the DoFn of Map, FlatMap, Filter, KeyBy and Values: no
// context, no state, no errors. body is the transform itself, on an
// unboxed value; out, when it is unboxed, is the next transform's input.
// Its input runs either boxed (Process) or unboxed (DoFnSpec.Unboxed).
type simpleFn[I, O any] struct {
	body func(v I, e graph.Elem, out func(O, graph.Elem))
	out  func(O, graph.Elem)
	// keep is Filter's predicate: a boxed element it keeps goes on in
	// the box it came in.
	keep func(I) bool
	// mapFn is Map's function when its input and output types are the
	// same: a boxed element it returns unchanged goes on in the box it
	// came in (a box is immutable).
	mapFn func(I) O
}

func (f *simpleFn[I, O]) SetUnboxedOut(i int, next any) bool {
	return setUnboxed(&f.out, i, next)
}

func (*simpleFn[I, O]) Setup(*graph.ExecCtx) error { return nil }
func (f *simpleFn[I, O]) Process(_ *graph.ExecCtx, e graph.Elem, out []graph.Emit) error {
	v := e.Value.(I)
	switch {
	case f.out != nil:
	case f.keep != nil:
		if f.keep(v) {
			out[0](e)
		}
		return nil
	case f.mapFn != nil:
		o := f.mapFn(v)
		if !sameBytes(&v, &o) {
			e.Value = o
		}
		out[0](e)
		return nil
	default:
		f.out = boxing[O](out[0])
	}
	f.body(v, e, f.out)
	return nil
}
func (*simpleFn[I, O]) OnTimer(x *graph.ExecCtx, _ []graph.Emit) error {
	return fmt.Errorf("sdk: %s: unexpected timer", x.Transform)
}
func (*simpleFn[I, O]) FinishBundle(*graph.ExecCtx, []graph.Emit) error { return nil }
func (*simpleFn[I, O]) Teardown() error                                 { return nil }

// sameBytes reports whether *a and *b, of the same type, hold the same
// bytes (then they are the same value; equal values with different bytes,
// such as -0 and +0, merely report false).
func sameBytes[I, O any](a *I, b *O) bool {
	n := unsafe.Sizeof(*a)
	return n == unsafe.Sizeof(*b) && string(unsafe.Slice((*byte)(unsafe.Pointer(a)), n)) == string(unsafe.Slice((*byte)(unsafe.Pointer(b)), n))
}

// boxing returns what passes a value to out in an Elem.
func boxing[O any](out graph.Emit) func(O, graph.Elem) {
	return func(v O, e graph.Elem) {
		e.Value = v
		out(e)
	}
}

// unboxedInput builds the unboxed input of a simpleFn with this body
// (graph.DoFnSpec.Unboxed).
func unboxedInput[I, O any](body func(I, graph.Elem, func(O, graph.Elem)), l graph.UnboxedLink) any {
	out := boxing[O](l.Out)
	if l.Unboxed != nil {
		u, ok := l.Unboxed.(func(O, graph.Elem))
		if !ok {
			return nil
		}
		out = u
	}
	node, active := l.Node, l.Active
	return func(v I, e graph.Elem) {
		prev := *active
		*active = node
		body(v, e, out)
		*active = prev
	}
}

func elementwise[I, O any](in PCollection[I], kind string, opts []Option, body func(v I, e graph.Elem, out func(O, graph.Elem))) PCollection[O] {
	return elementwiseFn(in, kind, opts, simpleFn[I, O]{body: body})
}

func elementwiseFn[I, O any](in PCollection[I], kind string, opts []Option, f simpleFn[I, O]) PCollection[O] {
	if !in.valid() {
		panic("sdk: " + kind + " on a zero PCollection")
	}
	p := in.p
	o := collect(opts)
	name := o.nameOr(kind)
	o.only(p.g, fmt.Sprintf("%s %q", kind, name))
	n := p.g.AddNode(graph.KindParDo, name, []*graph.PCol{in.col}, reflect.TypeFor[O]())
	n.DoFn = &graph.DoFnSpec{
		New:            func() graph.DoFn { c := f; return &c },
		WindowAgnostic: true,
		Unboxed:        func(l graph.UnboxedLink) any { return unboxedInput(f.body, l) },
	}
	return output[O](p, n, 0)
}

// Map applies fn to every element.
func Map[I, O any](in PCollection[I], fn func(I) O, opts ...Option) PCollection[O] {
	f := simpleFn[I, O]{body: func(v I, e graph.Elem, out func(O, graph.Elem)) {
		out(fn(v), e)
	}}
	if reflect.TypeFor[I]() == reflect.TypeFor[O]() {
		f.mapFn = fn
	}
	return elementwiseFn(in, "Map", opts, f)
}

// FlatMap applies fn to every element and outputs every value it returns.
func FlatMap[I, O any](in PCollection[I], fn func(I) []O, opts ...Option) PCollection[O] {
	return elementwise(in, "FlatMap", opts, func(v I, e graph.Elem, out func(O, graph.Elem)) {
		for _, o := range fn(v) {
			out(o, e)
		}
	})
}

// Filter keeps the elements for which keep returns true.
func Filter[T any](in PCollection[T], keep func(T) bool, opts ...Option) PCollection[T] {
	return elementwiseFn(in, "Filter", opts, simpleFn[T, T]{
		body: func(v T, e graph.Elem, out func(T, graph.Elem)) {
			if keep(v) {
				out(v, e)
			}
		},
		keep: keep,
	})
}

// KeyBy keys every element by key(element).
func KeyBy[T, K any](in PCollection[T], key func(T) K, opts ...Option) PCollection[KV[K, T]] {
	return elementwise(in, "KeyBy", opts, func(v T, e graph.Elem, out func(KV[K, T], graph.Elem)) {
		out(KV[K, T]{Key: key(v), Value: v}, e)
	})
}

// Values drops the keys of a keyed collection.
func Values[K, V any](in PCollection[KV[K, V]], opts ...Option) PCollection[V] {
	return elementwise(in, "Values", opts, func(kv KV[K, V], e graph.Elem, out func(V, graph.Elem)) {
		out(kv.Value, e)
	})
}

// Flatten merges collections of the same type and windowing into one.
func Flatten[T any](ins ...PCollection[T]) PCollection[T] {
	if len(ins) == 0 || !ins[0].valid() {
		panic("sdk: Flatten needs at least one PCollection")
	}
	p := ins[0].p
	cols := make([]*graph.PCol, len(ins))
	for i, in := range ins {
		cols[i] = in.col
	}
	n := p.g.AddNode(graph.KindFlatten, "Flatten", cols, reflect.TypeFor[T]())
	for i, in := range ins {
		if in.p != p {
			p.g.Fail(fmt.Errorf("%w: %s: input %d is from another pipeline", graph.ErrInvalid, n, i))
		}
		if !sameWindowing(in.col.Strategy, ins[0].col.Strategy) {
			p.g.Fail(fmt.Errorf("%w: %s: input %d is windowed %s but input 0 is windowed %s; window them alike first", graph.ErrInvalid, n, i, in.col.Strategy, ins[0].col.Strategy))
		}
	}
	return output[T](p, n, 0)
}

func sameWindowing(a, b windowing.Strategy) bool {
	return reflect.DeepEqual(a.Fn, b.Fn) && a.Trigger == b.Trigger && a.Mode == b.Mode && a.AllowedLateness == b.AllowedLateness
}
