package engine

import (
	"fmt"
	"sync"
	"time"

	"github.com/weir-dev/weir/windowing"
)

// Checkpoints (Flink's aligned barriers, taken synchronously):
//
//   - Every interval the coordinator asks each reader for checkpoint id.
//     Between two batches the reader flushes, records its splits' positions
//     and watermarks, and sends a barrier after its data, to every
//     instance it writes to. It does not wait.
//   - A keyed or side-input instance or a sink writer aligns (inputs.go):
//     once a sender's barrier has arrived, that sender's later messages
//     wait in a queue until every sender's barrier (or end of stream) has.
//     Aligned, it forwards the barrier, acknowledges, and pauses until the
//     checkpoint is complete. A sink writer pre-commits its output first
//     (CheckpointSink).
//   - When every participant has acknowledged (or retired), all keyed state
//     in the backend is exactly the state after the data before the
//     barriers: the coordinator calls Config.OnCheckpoint, which copies the
//     backend and writes the positions and the sinks' pre-commit handles,
//     then releases everyone; sinks commit the checkpoint's output.
//
// On a stop request with checkpoints on, readers stop only after a final
// checkpoint, so a job restarted from it resumes exactly where it stopped.

// SplitState is what a checkpoint keeps of one split.
type SplitState struct {
	// Pos is where the split's reader resumes (connector.Positioned);
	// nil: the start.
	Pos []byte `json:"pos,omitempty"`
	// MaxSeen and Seen restore the split's watermark.
	MaxSeen windowing.Time `json:"maxSeen"`
	Seen    bool           `json:"seen"`
	// Done says the split was read to its end.
	Done bool `json:"done,omitempty"`
}

// SplitStates are split states by binding and split ID.
type SplitStates map[string]map[string]SplitState

type ckptEventKind uint8

const (
	ckptAck ckptEventKind = iota + 1
	ckptRetire
)

type ckptEvent struct {
	kind   ckptEventKind
	who    int
	id     int64
	splits SplitStates // readers only
	sink   string      // sink writers: the binding
	handle []byte      // and what its PreCommit returned
	failed bool        // a retire: the participant ended with an error
}

type ckptRequest struct {
	id    int64
	final bool
}

// coordinator runs checkpoints. It is created only when checkpoints are on.
type coordinator struct {
	x            *executor
	participants int
	requests     map[int]chan ckptRequest // by reader participant
	events       chan ckptEvent

	mu struct {
		sync.Mutex
		release map[int64]chan struct{} // closed when checkpoint id completes
	}
}

func newCoordinator(x *executor) *coordinator {
	c := &coordinator{x: x, requests: map[int]chan ckptRequest{}, events: make(chan ckptEvent, 64)}
	c.mu.release = map[int64]chan struct{}{}
	return c
}

// join registers a participant and returns its number.
func (c *coordinator) join(reader bool) int {
	who := c.participants
	c.participants++
	if reader {
		c.requests[who] = make(chan ckptRequest, 8)
	}
	return who
}

func (c *coordinator) releaseOf(id int64) chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch, ok := c.mu.release[id]
	if !ok {
		ch = make(chan struct{})
		c.mu.release[id] = ch
	}
	return ch
}

func (c *coordinator) send(e ckptEvent) {
	select {
	case c.events <- e:
	case <-c.x.ctx.Done():
		panic(abort{})
	}
}

// ack acknowledges checkpoint id and waits until it is complete.
func (c *coordinator) ack(who int, id int64, splits SplitStates, wait bool) {
	c.send(ckptEvent{kind: ckptAck, who: who, id: id, splits: splits})
	if wait {
		c.wait(id)
	}
}

// ackSink is a sink writer's ack, with its pre-commit handle; it waits.
func (c *coordinator) ackSink(who int, id int64, binding string, handle []byte) {
	c.send(ckptEvent{kind: ckptAck, who: who, id: id, sink: binding, handle: handle})
	c.wait(id)
}

func (c *coordinator) wait(id int64) {
	select {
	case <-c.releaseOf(id):
	case <-c.x.ctx.Done():
		panic(abort{})
	}
}

// retire says a participant is done; readers pass their final split states.
// A participant that failed (err is not nil, or it panicked) says so: a
// checkpoint in flight must then never complete, for the participant never
// got to its barrier. A participant defers it as
//
//	defer func() { coord.retire(who, splits, err, recover()) }()
//
// and the panic, if any, goes on.
func (c *coordinator) retire(who int, splits SplitStates, err error, panicked any) {
	select {
	case c.events <- ckptEvent{kind: ckptRetire, who: who, splits: splits, failed: err != nil || panicked != nil}:
	case <-c.x.ctx.Done():
	}
	if panicked != nil {
		panic(panicked)
	}
}

func (c *coordinator) run() error {
	cfg := c.x.cfg
	tick := time.NewTicker(cfg.CheckpointInterval)
	defer tick.Stop()
	stop, atEnd := cfg.Stop, c.x.allAtEnd
	next := cfg.FirstCheckpointID
	var (
		inflight    int64
		final       bool
		stopPending bool
		acked       = map[int]bool{}
		retired     = map[int]bool{}
		// A reader's positions for the checkpoint in flight come from its
		// ack for that checkpoint only: after its barrier it reads on,
		// and what it reads then is not in this checkpoint's state. A
		// reader that ended without acking it ended before its barrier,
		// so its final positions are the checkpoint's.
		ackSplits    = map[int]SplitStates{}
		retireSplits = map[int]SplitStates{}
		// Sinks' pre-commit handles for the checkpoint in flight.
		handles = map[string][]byte{}
	)
	start := func(fin bool) {
		next++
		inflight, final = next, fin
		clear(acked)
		clear(ackSplits)
		handles = map[string][]byte{}
		for who, ch := range c.requests {
			if !retired[who] {
				ch <- ckptRequest{id: inflight, final: fin}
			}
		}
	}
	for len(retired) < c.participants {
		select {
		case <-tick.C:
			if inflight == 0 && !stopPending {
				start(false)
			}
			continue
		case <-stop:
			stop = nil
			stopPending = true
			if inflight == 0 {
				start(true)
			}
			continue
		case <-atEnd:
			atEnd = nil
			stopPending = true
			if inflight == 0 {
				start(true)
			}
			continue
		case <-c.x.ctx.Done():
			return nil
		case e := <-c.events:
			switch e.kind {
			case ckptAck:
				if e.id == inflight {
					acked[e.who] = true
					if e.splits != nil {
						ackSplits[e.who] = e.splits
					}
					if e.handle != nil {
						handles[e.sink] = e.handle
					}
				}
			case ckptRetire:
				if e.failed || c.x.ctx.Err() != nil {
					return nil // the run failed: no checkpoint completes
				}
				retired[e.who] = true
				if e.splits != nil {
					retireSplits[e.who] = e.splits
				}
			}
		}
		if inflight == 0 || !allIn(c.participants, acked, retired) {
			continue
		}
		if c.x.ctx.Err() != nil {
			return nil // the run failed or was cancelled meanwhile
		}
		// Complete: everyone is at the barrier (or gone).
		{
			merged := SplitStates{}
			for who := range c.requests {
				s, ok := ackSplits[who]
				if !ok {
					s = retireSplits[who]
				}
				for b, m := range s {
					if merged[b] == nil {
						merged[b] = map[string]SplitState{}
					}
					for id, st := range m {
						merged[b][id] = st
					}
				}
			}
			begin := time.Now()
			if err := cfg.OnCheckpoint(inflight, final, merged, handles); err != nil {
				return fmt.Errorf("engine: checkpoint %d: %w", inflight, err)
			}
			cfg.Logger.Debug("checkpoint complete", "id", inflight, "took", time.Since(begin))
			close(c.releaseOf(inflight))
			inflight = 0
			if stopPending && !final {
				start(true)
			}
		}
	}
	return nil
}

func allIn(n int, acked, retired map[int]bool) bool {
	for who := 0; who < n; who++ {
		if !acked[who] && !retired[who] {
			return false
		}
	}
	return true
}

// forwardBarrier flushes and sends barrier id after this instance's output.
func (in *instance) forwardBarrier(id int64, final bool) {
	in.finishBundle()
	in.flush()
	for _, w := range in.writers {
		w.broadcast(msg{kind: msgBarrier, ckpt: id, final: final})
	}
}
