package engine

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/windowing"
)

// TestBarrierAlignment drives one instance's inputs through the scenarios
// in testdata/checkpoint: messages from its senders in a given order, and
// prints what the instance is handed, in order. It specifies barrier
// alignment together with the watermark merge, idleness and end of stream
// around it.
//
// Commands:
//
//	senders N                  one port, main, of N senders, numbered 0 to N-1
//	ports NAME=N NAME=N ...    ports in order (the first is main), with their
//	                           senders; a side stage's ports
//	restore NAME=TIME ...      a restored input watermark for a port's senders
//	recv SENDER data V...      a batch of elements, printed by value
//	recv SENDER watermark TIME
//	recv SENDER idle
//	recv SENDER barrier ID [final]
//	recv SENDER eos
//	tick                       a stream run's tick
//
// A SENDER is NAME/N, sender N of port NAME, or N alone for the first
// port's. Times are durations since the epoch ("1m30s"); "+inf" is the end
// of time.
//
// What the instance is handed prints as:
//
//	held                       the message waits for the alignment in progress
//	data NAME: V...            a batch of elements for port NAME
//	watermark NAME TIME        port NAME's merged watermark advanced to TIME
//	all idle NAME              every sender of port NAME still running is idle
//	aligned ID [final]         checkpoint ID is aligned; "replays K" follows
//	                           when K held messages are handled next, in the
//	                           order they arrived
//	tick
//	end                        every sender has ended
func TestBarrierAlignment(t *testing.T) {
	datadriven.Walk(t, "testdata/checkpoint", func(t *testing.T, path string) {
		var h *alignHarness
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "senders":
				n, err := strconv.Atoi(d.CmdArgs[0].Key)
				if err != nil {
					d.Fatalf(t, "senders: %v", err)
				}
				h = newAlignHarness([]string{"main"}, []int{n})
			case "ports":
				var names []string
				var senders []int
				for _, a := range d.CmdArgs {
					n, err := strconv.Atoi(a.SingleVal(t))
					if err != nil {
						d.Fatalf(t, "ports: %v", err)
					}
					names, senders = append(names, a.Key), append(senders, n)
				}
				h = newAlignHarness(names, senders)
			case "restore":
				for _, a := range d.CmdArgs {
					h.ins.restore(h.port(t, d, a.Key), parseTime(t, a.SingleVal(t)))
				}
			case "recv":
				h.recv(t, d)
			case "tick":
				if err := h.ins.tick(); err != nil {
					t.Fatal(err)
				}
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
			}
			return h.flush()
		})
	})
}

// alignHarness feeds messages to an inputs as its inbox would, and records
// what the inputs hand the instance.
type alignHarness struct {
	ins   *inputs
	names []string
	now   windowing.Time
	out   strings.Builder
	ended bool
}

func newAlignHarness(names []string, senders []int) *alignHarness {
	h := &alignHarness{names: names}
	h.ins = newInputs(nil, senders, &h.now)
	h.ins.h = inputHandlers{
		data: func(p int, elems []shuffled) error {
			vals := make([]string, len(elems))
			for i, e := range elems {
				vals[i] = e.e.Value.(string)
			}
			fmt.Fprintf(&h.out, "data %s: %s\n", h.names[p], strings.Join(vals, " "))
			return nil
		},
		watermark: func(p int) error {
			fmt.Fprintf(&h.out, "watermark %s %s\n", h.names[p], fmtTime(h.ins.watermark(p)))
			return nil
		},
		idle: func(p int) error {
			fmt.Fprintf(&h.out, "all idle %s\n", h.names[p])
			return nil
		},
		aligned: func(id int64, final bool) error {
			fmt.Fprintf(&h.out, "aligned %d", id)
			if final {
				h.out.WriteString(" final")
			}
			if n := len(h.ins.al.queue); n > 0 {
				fmt.Fprintf(&h.out, "; replays %d", n)
			}
			h.out.WriteString("\n")
			return nil
		},
		tick: func() error {
			h.out.WriteString("tick\n")
			return nil
		},
	}
	return h
}

// port returns the index of port name.
func (h *alignHarness) port(t *testing.T, d *datadriven.TestData, name string) int {
	for i, n := range h.names {
		if n == name {
			return i
		}
	}
	d.Fatalf(t, "no port %q", name)
	return 0
}

// recv hands the inputs a message as it would come from the inbox: its
// sender numbered within its port.
func (h *alignHarness) recv(t *testing.T, d *datadriven.TestData) {
	if len(d.CmdArgs) < 2 {
		d.Fatalf(t, "recv SENDER KIND [ARGS]")
	}
	name, num, ok := strings.Cut(d.CmdArgs[0].Key, "/")
	if !ok {
		name, num = h.names[0], name
	}
	m := msg{port: h.port(t, d, name)}
	var err error
	if m.sender, err = strconv.Atoi(num); err != nil || m.sender >= h.ins.senders[m.port] {
		d.Fatalf(t, "port %s has no sender %q", name, num)
	}
	args := d.CmdArgs[2:]
	switch kind := d.CmdArgs[1].Key; kind {
	case "data":
		m.kind = msgData
		for _, a := range args {
			m.elems = append(m.elems, shuffled{e: graph.Elem{Value: a.Key}, n: 1})
		}
	case "watermark":
		m.kind, m.wm = msgWatermark, parseTime(t, args[0].Key)
	case "idle":
		m.kind = msgIdle
	case "barrier":
		m.kind = msgBarrier
		if m.ckpt, err = strconv.ParseInt(args[0].Key, 10, 64); err != nil {
			d.Fatalf(t, "barrier: %v", err)
		}
		m.final = len(args) > 1 && args[1].Key == "final"
	case "eos":
		m.kind = msgEOS
	default:
		d.Fatalf(t, "unknown message kind %q", kind)
	}
	if h.ins.al.holding(m.sender + h.ins.base[m.port]) {
		h.out.WriteString("held\n")
	}
	if err := h.ins.receive(m); err != nil {
		t.Fatal(err)
	}
	if h.ins.allEnded() && !h.ended {
		h.ended = true
		h.out.WriteString("end\n")
	}
}

func (h *alignHarness) flush() string {
	s := h.out.String()
	h.out.Reset()
	return s
}
