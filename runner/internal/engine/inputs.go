package engine

import "github.com/weir-dev/weir/windowing"

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

// hold reports whether m must wait for the current alignment.
func (a *aligner) hold(m msg) bool {
	if a.id != 0 && a.got[m.sender] {
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
