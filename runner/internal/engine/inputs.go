package engine

import (
	"context"
	"time"

	"github.com/weir-dev/weir/windowing"
)

// The message protocol between stage instances. An instance sends, to each
// port it writes to, batches of data, and after them watermarks, idle
// markers, checkpoint barriers and, last, an end of stream (instance.go,
// portwriter.go). Messages from one sender arrive in the order they were
// sent, so no element is overtaken by a watermark or barrier computed after
// it.
//
// Every receiving instance (keyed, side input, sink writer) reads its inbox
// through one inputs, which does for it what the protocol asks of every
// receiver:
//
//   - numbers the senders of all its ports in one range: a side-input
//     stage's ports share its inbox, and its barriers align across them;
//   - merges the watermarks of each port's senders (windowing.Merger), an
//     idle sender not holding them back, a sender that ended standing at
//     its last watermark;
//   - aligns checkpoint barriers (aligner): once a sender's barrier has
//     arrived, its later messages, watermarks and idle markers included,
//     wait until every sender's barrier has arrived or the sender ended.
//     An idle sender is no exception: readers send their barriers whether
//     or not they read anything, so alignment waits for it. Aligned, the
//     instance takes its part of the checkpoint; then the messages held
//     are handled in the order they arrived, before the inbox is read
//     again;
//   - counts ends of stream, and returns when every sender has ended;
//   - ticks processing time in a stream run, until a stop's final
//     checkpoint is aligned: after it nothing may change the instance's
//     state (processing-time timers included) or send output, or the
//     checkpoint would no longer hold them.

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

// inputHandlers is what a stage instance does with its inputs. A handler
// left nil ignores its event (a sink writer has no use for watermarks). An
// error ends inputs.run with it.
type inputHandlers struct {
	// data handles a batch of elements for port. The batch is the
	// handler's: it may free it (executor.freeBatch) when it was not
	// broadcast.
	data func(port int, elems []shuffled) error
	// watermark: the merged watermark of port advanced (inputs.watermark).
	watermark func(port int) error
	// idle: an idle marker arrived for port, and every sender of port
	// short of the end of time is now idle (windowing.Merger.AllIdle).
	idle func(port int) error
	// aligned: every sender's barrier of checkpoint id has arrived, or the
	// sender ended; final marks a stop's last checkpoint. The messages held
	// meanwhile are handled once it returns.
	aligned func(id int64, final bool) error
	// tick: processing time may have advanced, in a stream run; never
	// after a final checkpoint.
	tick func() error
}

// inputs reads a stage instance's inbox: it merges watermarks, aligns
// barriers and counts ends of stream for all the instance's ports, and
// calls the instance's handlers (see the protocol above). One goroutine,
// the instance's, owns it.
type inputs struct {
	inbox <-chan msg
	// senders and base are by port: its number of senders, and the number
	// of its first sender in the range of all ports.
	senders []int
	base    []int
	mergers []*windowing.Merger // by port
	al      *aligner
	total   int // senders of all ports
	ended   int // senders whose end of stream was handled
	// replay holds the messages the last alignment released, not yet
	// handled: they go before anything new from the inbox.
	replay []msg
	// now is the instance's processing time, which the mergers record.
	now *windowing.Time
	// frozen: a final checkpoint is aligned; no more ticks.
	frozen bool
	h      inputHandlers
}

// newInputs returns the inputs of an instance whose ports have the given
// numbers of senders, reading inbox, with every watermark at the start of
// time.
func newInputs(inbox <-chan msg, senders []int, now *windowing.Time) *inputs {
	ins := &inputs{inbox: inbox, senders: senders, base: make([]int, len(senders)),
		mergers: make([]*windowing.Merger, len(senders)), now: now}
	for p, n := range senders {
		ins.base[p] = ins.total
		ins.mergers[p] = windowing.NewMerger(n, 0, *now)
		ins.total += n
	}
	ins.al = newAligner(ins.total)
	return ins
}

// restore sets every sender of port p at watermark wm, the input watermark
// the checkpoint restored kept: it is where the senders resume, and what
// lateness is decided against until they speak.
func (ins *inputs) restore(p int, wm windowing.Time) {
	for s := 0; s < ins.senders[p]; s++ {
		ins.mergers[p].Advance(s, wm, *ins.now)
	}
}

// watermark returns the merged watermark of port p.
func (ins *inputs) watermark(p int) windowing.Time { return ins.mergers[p].Current() }

// allEnded reports whether every sender has ended.
func (ins *inputs) allEnded() bool { return ins.ended == ins.total }

// run hands what arrives to h until every sender has ended (at once when
// there are none), ctx is done (it returns ctx's cause) or a handler fails.
// With every > 0 and a tick handler, it ticks that often.
func (ins *inputs) run(ctx context.Context, every time.Duration, h inputHandlers) error {
	ins.h = h
	var tick <-chan time.Time
	if every > 0 && h.tick != nil {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	for !ins.allEnded() {
		select {
		case m := <-ins.inbox:
			if err := ins.receive(m); err != nil {
				return err
			}
		case <-tick:
			if err := ins.tick(); err != nil {
				return err
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
	return nil
}

// tick hands the instance a tick, unless a final checkpoint froze it.
func (ins *inputs) tick() error {
	if ins.frozen {
		return nil
	}
	return ins.h.tick()
}

// receive handles m, just read from the inbox, and then whatever an
// alignment it completes releases.
func (ins *inputs) receive(m msg) error {
	m.sender += ins.base[m.port] // one range for the aligner
	if err := ins.handle(m); err != nil {
		return err
	}
	for len(ins.replay) > 0 {
		m, ins.replay = ins.replay[0], ins.replay[1:]
		if err := ins.handle(m); err != nil {
			return err
		}
	}
	return nil
}

// handle handles m (its sender in the range of all ports), unless the
// alignment in progress holds it.
func (ins *inputs) handle(m msg) error {
	if ins.al.hold(m) {
		return nil
	}
	h, mg, s := &ins.h, ins.mergers[m.port], m.sender-ins.base[m.port]
	switch m.kind {
	case msgData:
		mg.Active(s, *ins.now)
		return h.data(m.port, m.elems)
	case msgWatermark:
		if mg.Advance(s, m.wm, *ins.now) && h.watermark != nil {
			return h.watermark(m.port)
		}
	case msgIdle:
		if mg.SetIdle(s) && h.watermark != nil {
			if err := h.watermark(m.port); err != nil {
				return err
			}
		}
		if mg.AllIdle() && h.idle != nil {
			return h.idle(m.port)
		}
	case msgBarrier:
		if ins.al.barrier(m) {
			return ins.aligned()
		}
	case msgEOS:
		ins.ended++
		if ins.al.end(m.sender) {
			return ins.aligned()
		}
	}
	return nil
}

// aligned calls the aligned handler and queues the messages held during
// the alignment, in order, before those still to replay.
func (ins *inputs) aligned() error {
	if ins.h.aligned != nil {
		if err := ins.h.aligned(ins.al.id, ins.al.final); err != nil {
			return err
		}
	}
	ins.frozen = ins.frozen || ins.al.final
	ins.replay = append(ins.al.done(), ins.replay...)
	return nil
}

// aligner holds back the messages of senders whose barrier has arrived
// until every sender's has (or the sender ended).
type aligner struct {
	senders int
	id      int64
	final   bool
	got     map[int]bool
	ended   map[int]bool
	queue   []msg
}

func newAligner(senders int) *aligner {
	return &aligner{senders: senders, got: map[int]bool{}, ended: map[int]bool{}}
}

// holding reports whether the messages of sender wait for the current
// alignment: its barrier has arrived.
func (a *aligner) holding(sender int) bool { return a.id != 0 && a.got[sender] }

// hold reports whether m must wait for the current alignment, and then
// queues it.
func (a *aligner) hold(m msg) bool {
	if a.holding(m.sender) {
		a.queue = append(a.queue, m)
		return true
	}
	return false
}

// barrier records a barrier and reports whether alignment is complete.
func (a *aligner) barrier(m msg) bool {
	a.id, a.final = m.ckpt, m.final
	a.got[m.sender] = true
	return a.complete()
}

// end records a sender's end of stream and reports whether an alignment in
// progress is now complete.
func (a *aligner) end(sender int) bool {
	a.ended[sender] = true
	return a.complete()
}

func (a *aligner) complete() bool {
	if a.id == 0 {
		return false
	}
	for s := 0; s < a.senders; s++ {
		if !a.got[s] && !a.ended[s] {
			return false
		}
	}
	return true
}

// done ends the alignment and returns the held messages, in order.
func (a *aligner) done() []msg {
	q := a.queue
	a.queue, a.id = nil, 0
	clear(a.got)
	return q
}
