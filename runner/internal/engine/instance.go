package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/windowing"
)

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

// tickInterval is how often the instance ticks: never in a bounded run,
// whose processing time stands still.
func (in *instance) tickInterval() time.Duration {
	if in.x.cfg.Bounded {
		return 0
	}
	return in.x.cfg.TickInterval
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
