package engine

import (
	"bytes"
	"fmt"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

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
