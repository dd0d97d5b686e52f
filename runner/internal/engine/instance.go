package engine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

type msgKind uint8

const (
	msgData msgKind = iota + 1
	msgWatermark
	msgIdle
	msgEOS     // the sender is done; its last watermark stands
	msgBarrier // checkpoint ckpt: everything before it is in the checkpoint
)

// msg is what travels between stage instances. Data and watermarks from one
// sender arrive in the order they were sent.
type msg struct {
	port   int
	sender int
	kind   msgKind
	elems  []shuffled
	wm     windowing.Time
	ckpt   int64
	final  bool // a stop's last checkpoint
}

// shuffled is an element on its way to another stage.
type shuffled struct {
	e        graph.Elem
	key      any
	keyBytes []byte
	kg       state.KeyGroup
	// n is the number of input elements a lifted accumulator stands for.
	n      int64
	lifted bool
}

// abort unwinds a stage instance's chain when the run is cancelled or a
// transform failed; goStage recovers it.
type abort struct{}

// instance is one running instance of a stage: it owns its fused chain and
// its port writers.
type instance struct {
	x     *executor
	st    *stage
	idx   int
	outWM windowing.Time
	now   windowing.Time

	writers   map[*port]*portWriter
	nodes     map[*graph.Node]graph.Emit
	finishers []func()
	teardowns []func() error
	idle      bool
	// active is the transform whose code runs now: callUser sets it, and
	// so does a transform's unboxed input (graph.UnboxedLink), which runs
	// inside its producer's callUser; a panic is blamed on it.
	active *graph.Node

	// capture, when set (by tests), receives what the instance would emit
	// to collections that have no consumer.
	capture func(col *graph.PCol) graph.Emit
}

func newInstance(x *executor, st *stage, idx int) *instance {
	return &instance{x: x, st: st, idx: idx, outWM: windowing.MinTime, now: windowing.MinTime,
		writers: map[*port]*portWriter{}, nodes: map[*graph.Node]graph.Emit{}}
}

func (in *instance) ctx() context.Context { return in.x.ctx }

// fail records err and unwinds the chain.
func (in *instance) fail(err error) {
	in.x.fail(err)
	panic(abort{})
}

// send delivers m, blocking while the inbox is full (backpressure).
func (in *instance) send(ch chan msg, m msg) {
	select {
	case ch <- m:
	case <-in.x.ctx.Done():
		panic(abort{})
	}
}

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

// writer returns this instance's writer to port p.
func (in *instance) writer(p *port) *portWriter {
	if w, ok := in.writers[p]; ok {
		return w
	}
	base, ok := in.x.plan.senderBase[senderKey{in.st, p}]
	if !ok {
		in.fail(fmt.Errorf("engine: internal error: %s sends to %s without being registered", in.st.name, p.name))
	}
	w := &portWriter{in: in, p: p, sender: base + in.idx, bufs: make([][]shuffled, len(p.inboxes)), rr: in.idx}
	if p.combine != nil {
		w.lift = newLifter(p.combine, p.node.Inputs[0].Strategy)
		// Under windows that merge, a window held here could merge
		// with another sender's that the grouping fires meanwhile:
		// such accumulators go at every watermark, combined within
		// the batch only.
		st := p.node.Inputs[0].Strategy
		w.liftHold = st.Trigger.WaitsForWatermark() && !st.Merging()
	}
	in.writers[p] = w
	return w
}

// flush sends every partial batch.
func (in *instance) flush() {
	for _, w := range in.writers {
		w.flush()
	}
}

// forwardWatermark flushes, then sends wm to every instance of every port
// this instance writes to.
func (in *instance) forwardWatermark(wm windowing.Time) {
	if wm <= in.outWM && !in.idle {
		return
	}
	in.finishBundle()
	if wm > in.outWM {
		in.outWM = wm
	}
	in.idle = false
	for _, w := range in.writers {
		// Lifted accumulators of windows that the watermark cannot close
		// yet stay to combine more: flushing all of them at every
		// watermark (each read batch) left little to combine.
		w.flushLiftedUpTo(in.outWM)
		w.broadcast(msg{kind: msgWatermark, wm: in.outWM})
	}
}

// markIdle tells downstream that this instance is idle.
func (in *instance) markIdle() {
	if in.idle {
		return
	}
	in.finishBundle()
	in.flush()
	in.idle = true
	for _, w := range in.writers {
		w.broadcast(msg{kind: msgIdle})
	}
}

// finish sends EOS downstream. Every port the stage is registered with must
// get it, even those the chain never wrote to.
func (in *instance) finish() {
	in.finishBundle()
	in.flush()
	for key := range in.x.plan.senderBase {
		if key.stage == in.st {
			in.writer(key.port)
		}
	}
	for _, w := range in.writers {
		w.broadcast(msg{kind: msgEOS})
	}
}

// portWriter batches elements from one instance to one port.
type portWriter struct {
	in     *instance
	p      *port
	sender int
	bufs   [][]shuffled
	rr     int
	lift   *lifter
	keyBuf []byte // scratch for encoding keys
	one    [1]windowing.Window
	// liftHold: the combine's trigger fires nothing before the watermark,
	// so lifted accumulators wait until the watermark can close their
	// window; with early or repeated firings they go with every watermark.
	liftHold bool
}

func (w *portWriter) emit(e graph.Elem) {
	p := w.p
	switch p.route {
	case routeKeyGroup:
		w.one[0] = e.Window
		w.emitWindows(e, w.one[:])
	case routeRoundRobin:
		w.push(w.rr%len(p.inboxes), shuffled{e: e, n: 1})
		if len(w.bufs[w.rr%len(p.inboxes)]) == 0 {
			w.rr++
		}
	default:
		w.push(0, shuffled{e: e, n: 1})
	}
}

// emitWindows sends e, in each of wins, to a port routed by key group.
func (w *portWriter) emitWindows(e graph.Elem, wins []windowing.Window) {
	p := w.p
	// The key is encoded into a scratch buffer, and copied only where
	// it is kept: the lifter looks its entries up by it.
	kb, err := p.kv.AppendKey(w.keyBuf[:0], e.Value)
	if err != nil {
		w.in.fail(fmt.Errorf("engine: %s: encoding key: %w", p.name, err))
	}
	w.keyBuf = kb
	kg := state.KeyGroupOf(kb, w.in.x.cfg.KeyGroups)
	if w.lift != nil {
		// The combine's AddInput runs here, before the shuffle.
		prev := w.in.active
		w.in.active = p.node
		w.lift.add(p.kv, kb, kg, e, wins...)
		w.in.active = prev
		if w.lift.held() >= 4*w.in.x.cfg.BatchSize {
			w.flushLifted()
		}
		return
	}
	d := state.WorkerOf(kg, len(p.inboxes), w.in.x.cfg.KeyGroups)
	key, kept := p.kv.Key(e.Value), bytes.Clone(kb) // read only downstream: shared
	for _, win := range wins {
		e.Window = win
		w.push(d, shuffled{e: e, key: key, keyBytes: kept, kg: kg, n: 1})
	}
}

func (w *portWriter) push(d int, s shuffled) {
	w.bufs[d] = append(w.bufs[d], s)
	if len(w.bufs[d]) >= w.in.x.cfg.BatchSize {
		w.sendBatch(d)
	}
}

func (w *portWriter) sendBatch(d int) {
	b := w.bufs[d]
	if len(b) == 0 {
		return
	}
	// Data after an idle marker makes this instance active again for its
	// receivers, so a later idle spell must be announced anew.
	w.in.idle = false
	w.bufs[d] = w.in.x.newBatch()
	if w.p.route == routeBroadcast {
		for _, ch := range w.p.inboxes {
			w.in.send(ch, msg{port: w.p.index, sender: w.sender, kind: msgData, elems: b})
		}
		return
	}
	w.in.send(w.p.inboxes[d], msg{port: w.p.index, sender: w.sender, kind: msgData, elems: b})
}

func (w *portWriter) flushLifted() {
	if w.lift == nil {
		return
	}
	p := w.p
	for _, s := range w.lift.drain() {
		d := state.WorkerOf(s.kg, len(p.inboxes), w.in.x.cfg.KeyGroups)
		w.push(d, s)
	}
}

// flushLiftedUpTo sends the lifted accumulators of the windows that
// watermark wm closes (their maximum timestamp is at or before it), when
// the trigger waits for the watermark (all of them otherwise). Downstream,
// data is late and windows fire by window, never by element time, so the
// others may wait for a later watermark.
func (w *portWriter) flushLiftedUpTo(wm windowing.Time) {
	if w.lift == nil {
		return
	}
	if !w.liftHold {
		w.flushLifted()
		return
	}
	p := w.p
	for _, s := range w.lift.drainUpTo(wm) {
		d := state.WorkerOf(s.kg, len(p.inboxes), w.in.x.cfg.KeyGroups)
		w.push(d, s)
	}
}

func (w *portWriter) flush() {
	w.flushLifted()
	w.sendBatches()
}

func (w *portWriter) sendBatches() {
	for d := range w.bufs {
		w.sendBatch(d)
	}
}

// broadcast sends what is batched, then m to every instance of the port. A
// watermark's sender has flushed the lifted accumulators it must have
// (flushLiftedUpTo); anything else goes after all of them.
func (w *portWriter) broadcast(m msg) {
	if m.kind != msgWatermark {
		w.flushLifted()
	}
	w.sendBatches()
	m.port, m.sender = w.p.index, w.sender
	for _, ch := range w.p.inboxes {
		w.in.send(ch, m)
	}
}

// lifter pre-combines the values of a CombinePerKey per key and window before
// the shuffle (Beam's combiner lifting). Its accumulators are found by key,
// then by window among the key's few: an element in several windows
// (sliding windows) looks its key up once. Under windows that merge
// (sessions) a key's windows merge here as they will downstream, with
// their accumulators: the grouping then merges what each sender sends
// as it merges elements' windows.
type lifter struct {
	fn      *graph.CombineSpec
	merging windowing.MergingWindowFn // nil unless the windows merge
	keys    map[string]*liftedKey
	// order is every accumulator, in first-seen order; merged counts
	// those in it that merged into another (gone), kept there until
	// order is next compacted.
	order  []*lifted
	merged int
	wins   []windowing.Window // merge's scratch
	// free holds drained accumulators' records for reuse (their cells
	// went downstream with them, so never their cells).
	free []*lifted
}

// liftedKey is one key's accumulators, one per window; the key and its
// encoding are shared by them (read only downstream).
type liftedKey struct {
	kb    string
	bytes []byte
	key   any
	accs  []*lifted
}

type lifted struct {
	s    shuffled // its Value is set when it leaves
	lk   *liftedKey
	cell graph.CombineCell
	// gone: merged into another accumulator (in order still, skipped).
	gone bool
}

func newLifter(fn *graph.CombineSpec, s windowing.Strategy) *lifter {
	l := &lifter{fn: fn, keys: map[string]*liftedKey{}}
	if s.Merging() {
		l.merging, _ = s.Fn.(windowing.MergingWindowFn)
	}
	return l
}

// held returns the number of accumulators held.
func (l *lifter) held() int { return len(l.order) - l.merged }

// add adds element e, of key kb (encoded; the caller's buffer) and key
// group kg, to its key's accumulator in each of wins.
func (l *lifter) add(kv *graph.KVInfo, kb []byte, kg state.KeyGroup, e graph.Elem, wins ...windowing.Window) {
	lk := l.keys[string(kb)] // no copy of kb to look up
	if lk == nil {
		lk = &liftedKey{kb: string(kb), bytes: bytes.Clone(kb), key: kv.Key(e.Value), accs: make([]*lifted, 0, len(wins))}
		l.keys[lk.kb] = lk
	}
	for _, w := range wins {
		var a *lifted
		for _, x := range lk.accs {
			if x.s.e.Window == w {
				a = x
				break
			}
		}
		if a == nil {
			if n := len(l.free); n > 0 {
				a, l.free = l.free[n-1], l.free[:n-1]
			} else {
				a = new(lifted)
			}
			*a = lifted{lk: lk, cell: l.fn.Cell(), s: shuffled{e: graph.Elem{Time: e.Time, Window: w, Pane: windowing.NoFiring},
				key: lk.key, keyBytes: lk.bytes, kg: kg, lifted: true}}
			lk.accs = append(lk.accs, a)
			l.order = append(l.order, a)
		}
		a.cell.AddKV(e.Value)
		a.s.n++
		if e.Time < a.s.e.Time {
			a.s.e.Time = e.Time
		}
		if l.merging != nil && len(lk.accs) > 1 {
			l.merge(lk)
		}
	}
}

// merge merges the windows of key lk that the window function merges, and
// their accumulators: each merge's result keeps the accumulator seen
// first.
func (l *lifter) merge(lk *liftedKey) {
	slices.SortFunc(lk.accs, func(a, b *lifted) int { return cmp.Compare(a.s.e.Window.Start, b.s.e.Window.Start) })
	l.wins = l.wins[:0]
	for _, a := range lk.accs {
		l.wins = append(l.wins, a.s.e.Window)
	}
	merges := l.merging.MergeWindows(l.wins)
	if len(merges) == 0 {
		return
	}
	for _, m := range merges {
		var into *lifted
		for _, a := range lk.accs {
			if a.gone || !slices.Contains(m.From, a.s.e.Window) {
				continue
			}
			if into == nil {
				into = a
				continue
			}
			into.cell.Merge(a.cell.Acc())
			into.s.n += a.s.n
			into.s.e.Time = min(into.s.e.Time, a.s.e.Time)
			a.gone = true
			l.merged++
		}
		if into != nil {
			into.s.e.Window = m.To
		}
	}
	lk.accs = slices.DeleteFunc(lk.accs, func(a *lifted) bool { return a.gone })
	if l.merged > len(l.order)/2 {
		l.order = slices.DeleteFunc(l.order, func(a *lifted) bool { return a.gone })
		l.merged = 0
	}
}

// remove forgets accumulator a.
func (l *lifter) remove(a *lifted) {
	lk := a.lk
	lk.accs = slices.DeleteFunc(lk.accs, func(x *lifted) bool { return x == a })
	if len(lk.accs) == 0 {
		delete(l.keys, lk.kb)
	}
}

// drainUpTo returns, in first-seen order, the accumulators of the windows
// whose maximum timestamp is at or before wm, and keeps the others.
func (l *lifter) drainUpTo(wm windowing.Time) []shuffled {
	var out []shuffled
	kept := l.order[:0]
	for _, a := range l.order {
		if a.gone {
			continue
		}
		if a.s.e.Window.MaxTimestamp() > wm {
			kept = append(kept, a)
			continue
		}
		a.s.e.Value = a.cell.Acc()
		out = append(out, a.s)
		l.remove(a)
		*a = lifted{}
		l.free = append(l.free, a)
	}
	clear(l.order[len(kept):])
	l.order, l.merged = kept, 0
	return out
}

// drain returns the accumulators in first-seen order and empties the lifter.
func (l *lifter) drain() []shuffled {
	out := make([]shuffled, 0, l.held())
	for _, a := range l.order {
		if !a.gone {
			a.s.e.Value = a.cell.Acc()
			out = append(out, a.s)
		}
		*a = lifted{}
		l.free = append(l.free, a)
	}
	clear(l.keys)
	clear(l.order)
	l.order, l.merged = l.order[:0], 0
	return out
}

// sinkWriter writes one binding's values to its sink from one goroutine.
type sinkWriter struct {
	who     int // checkpoint participant number
	binding string
	sink    connector.Sink
	port    *port
	dead    bool
}

func (s *sinkWriter) run(x *executor) (err error) {
	if x.coord != nil {
		defer func() { x.coord.retire(s.who, nil, err, recover()) }()
	}
	if s.port.senders == 0 {
		return nil
	}
	written := x.cfg.Metrics.Written(s.binding)
	cs, _ := s.sink.(connector.CheckpointSink)
	al := newAligner(s.port.senders)
	// aligned pre-commits the checkpoint's output, waits for the
	// checkpoint to complete, and commits it.
	aligned := func(id int64) error {
		var handle []byte
		if cs != nil {
			var err error
			if handle, err = cs.PreCommit(x.ctx, id); err != nil {
				return fmt.Errorf("engine: pre-committing %q for checkpoint %d: %w", s.binding, id, err)
			}
		}
		x.coord.ackSink(s.who, id, s.binding, handle)
		if cs != nil {
			if err := cs.CommitCheckpoint(x.ctx, id); err != nil {
				return fmt.Errorf("engine: committing %q for checkpoint %d: %w", s.binding, id, err)
			}
		}
		x.sinkCommitted(id)
		return nil
	}
	eos := 0
	vals := make([]any, 0, x.cfg.BatchSize)
	var replay []msg
	for {
		var m msg
		if len(replay) > 0 {
			m, replay = replay[0], replay[1:]
		} else {
			select {
			case m = <-s.port.inboxes[0]:
			case <-x.ctx.Done():
				return context.Cause(x.ctx)
			}
		}
		if al.hold(m) {
			continue
		}
		switch m.kind {
		case msgBarrier:
			if al.barrier(m) {
				if err := aligned(al.id); err != nil {
					return err
				}
				replay = append(al.done(), replay...)
			}
		case msgEOS:
			eos++
			if al.end(m.sender) {
				if err := aligned(al.id); err != nil {
					return err
				}
				replay = append(al.done(), replay...)
			}
			if eos == s.port.senders {
				return nil
			}
		case msgData:
			vals = vals[:0]
			for _, e := range m.elems {
				vals = append(vals, e.e.Value)
			}
			if s.sink != nil {
				if err := s.sink.Write(x.ctx, vals); err != nil {
					if errors.Is(err, context.Canceled) {
						return err
					}
					return fmt.Errorf("engine: writing %q: %w", s.binding, err)
				}
			}
			x.freeBatch(m.elems)
			if s.dead && s.sink == nil {
				continue // counted by the readers
			}
			written.Add(int64(len(vals)))
		}
	}
}
