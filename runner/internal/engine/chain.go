package engine

import (
	"errors"
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/windowing"
)

// emitterFor returns the function that passes an element of col to all of
// col's consumers, compiling stateless consumers into this instance's chain.
func (in *instance) emitterFor(col *graph.PCol) graph.Emit {
	var outs []graph.Emit
	for _, e := range in.x.plan.edges(col) {
		if e.port != nil {
			outs = append(outs, in.writer(e.port).emit)
			continue
		}
		outs = append(outs, in.compile(e.node))
	}
	if len(outs) == 0 && in.capture != nil {
		return in.capture(col)
	}
	if len(outs) == 0 {
		if n := col.Producer; n != nil && n.Kind == graph.KindWindowInto && col == n.Outputs[1] {
			return in.lateCounter(n)
		}
		return func(graph.Elem) {}
	}
	if len(outs) == 1 {
		return outs[0]
	}
	return func(e graph.Elem) {
		for _, o := range outs {
			o(e)
		}
	}
}

// lateCounter counts and logs late data that no transform reads.
func (in *instance) lateCounter(n *graph.Node) graph.Emit {
	c := in.x.cfg.Metrics.Late(n.Name)
	log := in.x.cfg.Logger
	return func(e graph.Elem) {
		k := c.Add(1)
		if k <= 10 || k%10000 == 0 {
			log.Warn("late data dropped (bind it with LateData to keep it)", "transform", n.Name, "timestamp", e.Time, "watermark", in.outWM, "count", k)
		}
	}
}

// userErr wraps an error returned by pipeline code of node n.
func userErr(n *graph.Node, err error) error {
	if err == nil || errors.Is(err, ErrUserCode) {
		return err
	}
	return fmt.Errorf("%w: %s: %w", ErrUserCode, n, err)
}

// callUser runs f, which runs pipeline code of node n (and the engine around
// it). An error or a panic fails the run with an error that names n; a
// panic's stack goes to the debug log.
func (in *instance) callUser(n *graph.Node, f func() error) {
	prev := in.active
	in.active = n
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(abort); ok {
				panic(r)
			}
			// A transform fused after n, taking n's output unboxed, runs
			// inside this call and marks itself active.
			blame := in.active
			in.x.cfg.Logger.Debug("panic in pipeline code", "transform", blame.Name, "stack", string(debug.Stack()))
			in.fail(fmt.Errorf("%w: %s: panic: %v", ErrUserCode, blame, r))
		}
	}()
	if err := f(); err != nil {
		if !errors.Is(err, ErrUserCode) {
			err = fmt.Errorf("engine: %s: %w", n, err)
		}
		in.fail(err)
	}
	in.checkActive(n)
	in.active = prev
}

// checkActive fails the run when a step fused after n is still marked
// active once n has returned: it panicked, and pipeline code that n ran
// recovered the panic across its Emit instead of letting it fail the run.
func (in *instance) checkActive(n *graph.Node) {
	if a := in.active; a != n {
		in.fail(fmt.Errorf("%w: %s: panicked, and the panic was recovered by pipeline code of %s", ErrUserCode, a, n))
	}
}

// compile instantiates stateless node c in this instance's chain (once) and
// returns its input.
func (in *instance) compile(c *graph.Node) graph.Emit {
	if e, ok := in.nodes[c]; ok {
		return e
	}
	// Break cycles of memoisation for Flatten reached twice: register a
	// forwarding stub first.
	var target graph.Emit
	in.nodes[c] = func(e graph.Elem) { target(e) }
	switch c.Kind {
	case graph.KindFlatten:
		target = in.emitterFor(c.Outputs[0])
	case graph.KindWindowInto:
		target = in.compileWindowInto(c)
	case graph.KindParDo:
		target = in.compileParDo(c)
	default:
		in.fail(fmt.Errorf("engine: %s cannot run in a fused chain", c))
	}
	in.nodes[c] = target
	return target
}

func (in *instance) compileWindowInto(c *graph.Node) graph.Emit {
	return in.windowInto(c, c.Outputs[0])
}

// windowInto assigns the windows of WindowInto c to elements and passes
// them to the consumers of col (c's output, or the output of the
// window-agnostic ParDos moved before it). An element in several windows
// (sliding windows) goes downstream once per window; a Map or Filter that
// directly follows is run first, once per element, when nothing else reads
// c's output or its late data (which has the type of c's input): the
// elements reaching its consumers are the same, with fewer calls and
// allocations.
func (in *instance) windowInto(c *graph.Node, col *graph.PCol) graph.Emit {
	if p := in.agnosticConsumer(col); p != nil && len(in.x.plan.edges(c.Outputs[1])) == 0 {
		return in.compileParDoInto(p, []graph.Emit{in.windowInto(c, p.Outputs[0])})
	}
	s := c.Window.Strategy
	emitAll := in.windowsEmitter(col)
	late := in.emitterFor(c.Outputs[1])
	partial := in.x.cfg.Metrics.Late(c.Name)
	var wins []windowing.Window
	return func(e graph.Elem) {
		prev := in.active
		in.active = c
		wins = s.Fn.AssignWindows(e.Time, wins[:0])
		in.active = prev
		// A merging window function's proto-window can only grow by
		// merging, so it is late exactly when it is late on its own.
		accepted := slices.DeleteFunc(wins, func(w windowing.Window) bool { return s.IsLate(w, in.outWM) })
		dropped := len(wins) - len(accepted)
		switch {
		case len(accepted) == 0:
			late(e)
		default:
			emitAll(e, accepted)
			if dropped == 0 {
				break
			}
			// Late for some of its windows only: it is in the others,
			// so it is not late data; the windows it missed are counted.
			if k := partial.Add(int64(dropped)); k <= 10 || k%10000 == 0 {
				in.x.cfg.Logger.Warn("element too late for some of its windows", "transform", c.Name, "timestamp", e.Time, "windows_missed", dropped, "watermark", in.outWM)
			}
		}
	}
}

// windowsEmitter returns what passes an element, once per window, to the
// consumers of col. When col goes straight to a keyed port, the element's
// key is encoded and hashed once for all its windows (a sliding window of
// 10s every 2s puts each element in five).
func (in *instance) windowsEmitter(col *graph.PCol) func(e graph.Elem, wins []windowing.Window) {
	if es := in.x.plan.edges(col); len(es) == 1 && es[0].port != nil && es[0].port.route == routeKeyGroup && in.capture == nil {
		wr := in.writer(es[0].port)
		return func(e graph.Elem, wins []windowing.Window) {
			e.Pane = windowing.NoFiring
			wr.emitWindows(e, wins)
		}
	}
	main := in.emitterFor(col)
	return func(e graph.Elem, wins []windowing.Window) {
		for _, w := range wins {
			main(graph.Elem{Value: e.Value, Time: e.Time, Window: w, Pane: windowing.NoFiring})
		}
	}
}

// agnosticConsumer returns the one transform that reads col, when it is a
// window-agnostic ParDo of one input and one output running in this chain.
func (in *instance) agnosticConsumer(col *graph.PCol) *graph.Node {
	es := in.x.plan.edges(col)
	if len(es) != 1 || es[0].port != nil {
		return nil
	}
	n := es[0].node
	if n.Kind != graph.KindParDo || n.DoFn == nil || !n.DoFn.WindowAgnostic || n.DoFn.Stateful ||
		len(n.Inputs) != 1 || len(n.Sides) != 0 || len(n.Outputs) != 1 {
		return nil
	}
	return n
}

func (in *instance) compileParDo(c *graph.Node) graph.Emit {
	fn := c.DoFn.New()
	outs := make([]graph.Emit, len(c.Outputs))
	for i, o := range c.Outputs {
		if u, ok := fn.(graph.UnboxedOut); ok {
			if next := in.unboxedInput(o); next != nil {
				if !u.SetUnboxedOut(i, next) {
					in.fail(fmt.Errorf("engine: internal error: %s does not take %s's output unboxed", in.x.plan.edges(o)[0].node, c))
				}
				outs[i] = func(graph.Elem) {
					in.fail(fmt.Errorf("engine: internal error: %s emitted boxed to an unboxed output", c))
				}
				continue
			}
		}
		outs[i] = in.emitterFor(o)
	}
	return in.compileDoFn(c, fn, outs)
}

// unboxedInput returns the unboxed input (graph.UnboxedLink) of the one
// transform that reads col, compiling it into this chain, or nil when col
// has several readers or its reader takes only boxed elements. A
// window-agnostic reader of a WindowInto that reads col counts: it runs
// before the WindowInto (see windowInto).
func (in *instance) unboxedInput(col *graph.PCol) any {
	es := in.x.plan.edges(col)
	if len(es) != 1 || es[0].port != nil || in.nodes[es[0].node] != nil {
		return nil
	}
	n := es[0].node
	var out func() graph.Emit
	if n.Kind == graph.KindWindowInto {
		c := n
		if n = in.agnosticConsumer(c.Outputs[0]); n == nil || len(in.x.plan.edges(c.Outputs[1])) != 0 {
			return nil
		}
		out = func() graph.Emit { return in.windowInto(c, n.Outputs[0]) }
	}
	if n.Kind != graph.KindParDo || n.DoFn == nil || n.DoFn.Unboxed == nil || n.DoFn.Stateful ||
		len(n.Inputs) != 1 || len(n.Sides) != 0 || len(n.Outputs) != 1 {
		return nil
	}
	link := graph.UnboxedLink{Node: n, Active: &in.active}
	switch {
	case out != nil:
		link.Out = out()
	default:
		if link.Unboxed = in.unboxedInput(n.Outputs[0]); link.Unboxed == nil {
			link.Out = in.emitterFor(n.Outputs[0])
		}
	}
	f := n.DoFn.Unboxed(link)
	if f == nil {
		in.fail(fmt.Errorf("engine: internal error: %s cannot take its input unboxed", n))
	}
	// n has one input, col, so nothing else compiles it; should
	// anything try, it fails loudly rather than run n twice.
	in.nodes[n] = func(graph.Elem) {
		in.fail(fmt.Errorf("engine: internal error: %s, linked unboxed, was passed a boxed element", n))
	}
	return f
}

// compileParDoInto compiles ParDo c with its outputs going to outs.
func (in *instance) compileParDoInto(c *graph.Node, outs []graph.Emit) graph.Emit {
	return in.compileDoFn(c, c.DoFn.New(), outs)
}

// compileDoFn compiles ParDo c, instance fn, with its outputs going to outs.
func (in *instance) compileDoFn(c *graph.Node, fn graph.DoFn, outs []graph.Emit) graph.Emit {
	x := &graph.ExecCtx{Ctx: in.x.ctx, Transform: c.Name}
	in.callUser(c, func() error { return userErr(c, fn.Setup(x)) })
	in.finishers = append(in.finishers, func() {
		in.callUser(c, func() error { return userErr(c, fn.FinishBundle(x, outs)) })
	})
	in.teardowns = append(in.teardowns, fn.Teardown)
	// The chain runs inside its stage's callUser (per read batch, per
	// keyed operator call): a transform only marks itself active, so
	// that a panic is blamed on it, without a deferred recover per
	// element and transform.
	return func(e graph.Elem) {
		x.Time, x.Window, x.Pane = e.Time, e.Window, e.Pane
		x.InputWatermark, x.Now = in.outWM, in.now
		prev := in.active
		in.active = c
		if err := fn.Process(x, e, outs); err != nil {
			in.fail(userErr(c, err))
		}
		in.checkActive(c)
		in.active = prev
	}
}

// finishBundle calls the FinishBundle of every DoFn in the chain.
func (in *instance) finishBundle() {
	for _, f := range in.finishers {
		f()
	}
}

func (in *instance) teardown() {
	for _, t := range in.teardowns {
		if err := t(); err != nil {
			in.x.cfg.Logger.Warn("teardown failed", "stage", in.st.name, "err", err)
		}
	}
}
