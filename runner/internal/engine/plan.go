package engine

import (
	"context"
	"fmt"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

type stageKind uint8

const (
	stageSource stageKind = iota + 1
	stageKeyed
	stageSide
)

// route is how a port spreads elements over its stage's instances.
type route uint8

const (
	routeKeyGroup   route = iota + 1 // by the key's key group
	routeRoundRobin                  // batches in turn
	routeBroadcast                   // every element to every instance
	routeSingle                      // one instance (sinks)
)

// port is one input of a stage (or of a sink writer): the main input, or a
// side input of a side-input stage.
type port struct {
	name    string
	index   int // 0: main; i: side input i-1
	route   route
	inboxes []chan msg
	// senders is the number of sending stage instances; each has an id in
	// [0, senders).
	senders int
	// combine is set for the main port of a CombinePerKey whose windows do
	// not merge: senders pre-combine (combiner lifting).
	combine *graph.CombineSpec
	kv      *graph.KVInfo
	// node is the consumer the port feeds.
	node *graph.Node
}

type plan struct {
	stages []*stage
	// cacheBytes is each keyed instance's state cache budget.
	cacheBytes int64
	sinks      []*sinkWriter
	dead       *sinkWriter
	// ports by consumer node id and input index (0 main, i side i-1).
	ports map[portKey]*port
	// senderBase by (sending stage, port).
	senderBase map[senderKey]int
}

type portKey struct {
	node  int
	index int
}

type senderKey struct {
	stage *stage
	port  *port
}

type stage struct {
	// who numbers the instances as checkpoint participants (first
	// instance's number; the others follow).
	who       int
	name      string
	kind      stageKind
	head      *graph.Node
	instances int
	ports     []*port // keyed: [main]; side: [main, side1, ...]

	// Source stages.
	source connector.Source
	splits []connector.Split

	// What the instances of a run with checkpoints start from, read
	// before any of them runs (see restore): a keyed stage's input
	// watermark, a side-input stage's buffers by instance (nil: none).
	restoredWM windowing.Time
	sideSnaps  []*sideSnapshot
}

func buildPlan(ctx context.Context, g *graph.Graph, cfg *Config) (*plan, error) {
	pl := &plan{ports: map[portKey]*port{}, senderBase: map[senderKey]int{}}
	// Keyed state is addressed by a hash of the transform's name: two
	// names with one hash would share state.
	ids := map[uint32]*graph.Node{}
	for _, n := range g.Nodes {
		if !holdsState(n) {
			continue
		}
		if prev, dup := ids[opID(n.Name)]; dup {
			return nil, fmt.Errorf("engine: %s and %s hash to the same state id; rename one", prev, n)
		}
		ids[opID(n.Name)] = n
	}
	P := cfg.Parallelism
	newInboxes := func(n int) []chan msg {
		in := make([]chan msg, n)
		for i := range in {
			in[i] = make(chan msg, cfg.QueueLength)
		}
		return in
	}
	// Stages headed by sources, keyed transforms and side-input ParDos;
	// sink writers.
	for _, n := range g.Nodes {
		switch {
		case n.Kind == graph.KindSource:
			src, ok := cfg.Sources[n.Source.Binding]
			if !ok {
				return nil, fmt.Errorf("engine: %s: no source opened for %q", n, n.Source.Binding)
			}
			splits, err := src.Splits(ctx)
			if err != nil {
				return nil, fmt.Errorf("engine: binding %q: %w", n.Source.Binding, err)
			}
			// Each reader takes every inst-th split: in turn when bounded,
			// polled round-robin when not.
			inst := min(P, len(splits))
			pl.stages = append(pl.stages, &stage{name: n.Name, kind: stageSource, head: n, instances: inst, source: src, splits: splits})
		case n.Keyed():
			p := &port{name: n.Name, route: routeKeyGroup, inboxes: newInboxes(P), kv: n.Inputs[0].KV, node: n}
			if n.Kind == graph.KindCombinePerKey {
				p.combine = n.Combine
			}
			pl.ports[portKey{n.ID, 0}] = p
			pl.stages = append(pl.stages, &stage{name: n.Name, kind: stageKeyed, head: n, instances: P, ports: []*port{p}})
		case n.Kind == graph.KindParDo && len(n.Sides) > 0:
			st := &stage{name: n.Name, kind: stageSide, head: n, instances: P}
			inboxes := newInboxes(P) // all ports of a side stage share the inboxes
			main := &port{name: n.Name, index: 0, route: routeRoundRobin, inboxes: inboxes}
			pl.ports[portKey{n.ID, 0}] = main
			st.ports = append(st.ports, main)
			for i := range n.Sides {
				sp := &port{name: fmt.Sprintf("%s/side%d", n.Name, i), index: i + 1, route: routeBroadcast, inboxes: inboxes}
				pl.ports[portKey{n.ID, i + 1}] = sp
				st.ports = append(st.ports, sp)
			}
			pl.stages = append(pl.stages, st)
		case n.Kind == graph.KindSink:
			sw := &sinkWriter{binding: n.Sink.Binding, sink: cfg.Sinks[n.Sink.Binding]}
			sw.port = &port{name: n.Name, route: routeSingle, inboxes: newInboxes(1)}
			pl.ports[portKey{n.ID, 0}] = sw.port
			pl.sinks = append(pl.sinks, sw)
		}
	}
	pl.dead = &sinkWriter{binding: "dead-letter", sink: cfg.DeadLetter, dead: true}
	pl.dead.port = &port{name: "dead-letter", route: routeSingle, inboxes: newInboxes(1)}
	pl.sinks = append(pl.sinks, pl.dead)

	// Register senders: walk each stage's fused chain to find the ports
	// it sends to.
	for _, st := range pl.stages {
		reached := map[*port]bool{}
		var walk func(col *graph.PCol)
		seen := map[*graph.Node]bool{}
		walk = func(col *graph.PCol) {
			for _, e := range pl.edges(col) {
				if e.port != nil {
					reached[e.port] = true
					continue
				}
				if seen[e.node] {
					continue
				}
				seen[e.node] = true
				for _, out := range e.node.Outputs {
					walk(out)
				}
			}
		}
		for _, out := range st.head.Outputs {
			walk(out)
		}
		if st.kind == stageSource {
			reached[pl.dead.port] = true
		}
		for p := range reached {
			pl.senderBase[senderKey{st, p}] = p.senders
			p.senders += st.instances
		}
	}
	pl.cacheBytes = cacheBudget(pl.stages, cfg.StateCacheBytes)
	return pl, nil
}

// edge is one way an element of a collection reaches a consumer: as its
// main input (through port, or fused into the sender's chain when port is
// nil) or as one of its side inputs (through that side's port).
type edge struct {
	node *graph.Node
	port *port
}

// edges returns every edge from col to its consumers, in order. A consumer
// that reads col twice (a Flatten of a collection with itself, a ParDo whose
// side input is its own main input) has two edges.
func (pl *plan) edges(col *graph.PCol) []edge {
	var out []edge
	seen := map[*graph.Node]bool{}
	for _, c := range col.Consumers {
		if seen[c] {
			continue
		}
		seen[c] = true
		for _, in := range c.Inputs {
			if in != col {
				continue
			}
			var p *port
			if c.Kind == graph.KindSink || c.Keyed() || (c.Kind == graph.KindParDo && len(c.Sides) > 0) {
				p = pl.ports[portKey{c.ID, 0}]
			}
			out = append(out, edge{node: c, port: p})
		}
		for i, s := range c.Sides {
			if s.PCol == col {
				out = append(out, edge{node: c, port: pl.ports[portKey{c.ID, i + 1}]})
			}
		}
	}
	return out
}

// checkpointable reports what stops g from being checkpointed.
func (pl *plan) checkpointable(g *graph.Graph) error {
	for _, st := range pl.stages {
		switch st.kind {
		case stageSource:
			for _, s := range st.splits {
				if _, ok := s.(connector.ResumableSplit); !ok {
					return fmt.Errorf("engine: binding %q: split %s cannot resume from a position, so the job cannot be checkpointed", st.head.Source.Binding, s.ID())
				}
			}
		}
	}
	return nil
}

// join numbers every instance and sink writer as a checkpoint participant.
func (pl *plan) join(c *coordinator) {
	for _, st := range pl.stages {
		if st.instances == 0 {
			continue
		}
		st.who = c.join(st.kind == stageSource)
		for i := 1; i < st.instances; i++ {
			c.join(st.kind == stageSource)
		}
	}
	for _, s := range pl.sinks {
		s.who = c.join(false)
	}
}

// restore reads what the keyed and side-input instances of a run with
// checkpoints start from in backend b: the lowest input watermark the
// instances of a keyed stage saved at the checkpoint b holds, and the
// buffers each instance of a side-input stage gets back. It runs before
// any instance does: an instance writes its own at every barrier, beside
// the state, where an instance of its stage that started later (on a
// loaded machine, after the first barrier) would read them as the
// checkpoint's, and drop the data before the barrier as late.
func (pl *plan) restore(b state.Backend) error {
	for _, st := range pl.stages {
		st.restoredWM = windowing.MinTime
		if b == nil {
			continue
		}
		switch st.kind {
		case stageKeyed:
			wm, err := restoredInputWatermark(b, opID(st.head.Name))
			if err != nil {
				return fmt.Errorf("engine: %s: restoring its input watermark: %w", st.head, err)
			}
			st.restoredWM = wm
		case stageSide:
			op, codec := opID(st.head.Name), newSideCodec(st.head)
			st.sideSnaps = make([]*sideSnapshot, st.instances)
			for i := range st.sideSnaps {
				snap, err := restoreSide(b, op, i, st.instances, codec)
				if err != nil {
					return fmt.Errorf("engine: %s: restoring its side-input buffers: %w", st.head, err)
				}
				st.sideSnaps[i] = snap
			}
		}
	}
	return nil
}

// cacheBudget splits total among the instances of the keyed stages
// (state.DefaultCacheBytes each when total is 0).
func cacheBudget(stages []*stage, total int64) int64 {
	if total <= 0 {
		return state.DefaultCacheBytes
	}
	n := 0
	for _, st := range stages {
		if st.kind == stageKeyed {
			n += st.instances
		}
	}
	return max(total/int64(max(n, 1)), 1<<20)
}
