package engine

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// At a checkpoint's barrier the pending windows stay in memory: the
// instance writes a copy of them into its state, per key group, as a few
// large cells (chunks of about snapChunk bytes) that only a restore reads.
// Before, the barrier moved every pending window into the state as cells
// and a timer of its own, and the windows' later elements and their firing
// took the slower path through the state: with checkpoints every second
// that cost Nexmark Q5 two fifths of its speed.
//
// The chunks of key group kg are the cells named cellSnap of the empty key
// in the zero window (no window operator writes another cell of that
// name), with the chunk's number as sub-key. Each barrier rewrites them and
// deletes the chunks the previous barrier wrote beyond the new ones. They
// go to the backend directly, past the instance's state cache, which
// would keep a copy: nothing in a run reads them but its restore.
//
// A restored instance moves the windows of its key groups' chunks into the
// state as spill would have, and deletes the chunks: the state then holds
// windows, which keeps new elements of any window out of the pending set
// until those have fired (see pendingPanes.horizon), so a window is never
// both pending and in the state. Key groups are the unit of rescaling, so
// the chunks follow their groups to whichever instance owns them.
//
// A chunk is a format byte (snapCombine or snapGroup: what the operator
// was), then its panes: the encoded key (uvarint length first), the
// window's start and end (8 bytes each), the trigger-state cell as
// storeTrigger writes it (uvarint length first; a combine's accumulator is
// in it), and a GroupByKey's values (a 4-byte count, then each with its
// uvarint length). A pane with more values than a chunk holds continues,
// key, window and trigger state repeated, in the next chunk.

const (
	cellSnap  = "p"
	snapChunk = 256 << 10

	snapCombine = 'c'
	snapGroup   = 'g'
)

// errSnapCorrupt is returned for a pending-window chunk that cannot be
// read, or that another kind of transform wrote.
var errSnapCorrupt = errors.New("unreadable pending-window snapshot")

// snapGroupState is what an instance knows of one key group's chunks.
type snapGroupState struct {
	buf     []byte // the chunk being written
	chunks  uint32 // written at this barrier so far
	written uint32 // written at the previous barrier
}

// snapKey returns the key of chunk i of key group kg.
func (op *windowOp) snapKey(dst []byte, kg state.KeyGroup, i uint32) []byte {
	dst = state.AppendCell(dst, state.Cell{Op: op.env.op, KG: kg, Name: cellSnap})
	return binary.BigEndian.AppendUint32(dst, i)
}

func (op *windowOp) snapFormat() byte {
	if op.inline {
		return snapCombine
	}
	return snapGroup
}

// snapshot writes a copy of the pending windows into the state, for the
// checkpoint of the barrier being handled.
func (p *pendingPanes) snapshot() error {
	op, env := p.op, p.op.env
	if p.snap == nil {
		p.snap = make([]snapGroupState, env.hi-env.lo)
	}
	for _, pw := range p.order {
		for _, pp := range pw.list {
			g := &p.snap[pp.kg-env.lo]
			if err := p.appendPane(pp.kg, g, pp); err != nil {
				return err
			}
			if len(g.buf) >= snapChunk {
				if err := p.writeChunk(pp.kg, g); err != nil {
					return err
				}
			}
		}
	}
	for i := range p.snap {
		g, kg := &p.snap[i], env.lo+state.KeyGroup(i)
		if len(g.buf) > 0 {
			if err := p.writeChunk(kg, g); err != nil {
				return err
			}
		}
		for c := g.chunks; c < g.written; c++ {
			p.key = op.snapKey(p.key[:0], kg, c)
			if err := env.in.x.cfg.Backend.Delete(p.key); err != nil {
				return err
			}
		}
		g.written, g.chunks = g.chunks, 0
	}
	return nil
}

// appendPane appends pending pane pp to its key group's chunk. A
// GroupByKey's values that take the chunk past snapChunk continue in the
// next one, after the pane's key, window and trigger state again (a
// restore adds them to the same window).
func (p *pendingPanes) appendPane(kg state.KeyGroup, g *snapGroupState, pp *pendingPane) error {
	op := p.op
	op.acc = nil
	if pp.acc != nil {
		op.acc = pp.acc.Acc()
	}
	cell, err := op.triggerCell(&pp.ts)
	op.acc = nil
	if err != nil {
		return err
	}
	cell = append(p.cell[:0], cell...) // encoding the values reuses op.buf
	p.cell = cell
	var count int // where the value count of the pane's record goes
	header := func() {
		if len(g.buf) == 0 {
			g.buf = append(g.buf, op.snapFormat())
		}
		b := binary.AppendUvarint(g.buf, uint64(len(pp.keyBytes)))
		b = append(b, pp.keyBytes...)
		b = binary.BigEndian.AppendUint64(b, uint64(pp.w.Start))
		b = binary.BigEndian.AppendUint64(b, uint64(pp.w.End))
		b = binary.AppendUvarint(b, uint64(len(cell)))
		b = append(b, cell...)
		if !op.inline {
			count = len(b)
			b = binary.BigEndian.AppendUint32(b, 0)
		}
		g.buf = b
	}
	header()
	if op.inline {
		return nil
	}
	n := uint32(0)
	for _, v := range pp.vals {
		if n > 0 && len(g.buf) >= snapChunk {
			binary.BigEndian.PutUint32(g.buf[count:], n)
			if err := p.writeChunk(kg, g); err != nil {
				return err
			}
			header()
			n = 0
		}
		enc, err := op.gbk.ValueCoder.Append(op.buf[:0], v)
		if err != nil {
			return fmt.Errorf("engine: %s: encoding value: %w", op.node, err)
		}
		op.buf = enc
		g.buf = binary.AppendUvarint(g.buf, uint64(len(enc)))
		g.buf = append(g.buf, enc...)
		n++
	}
	binary.BigEndian.PutUint32(g.buf[count:], n)
	return nil
}

// writeChunk writes key group kg's current chunk.
func (p *pendingPanes) writeChunk(kg state.KeyGroup, g *snapGroupState) error {
	p.key = p.op.snapKey(p.key[:0], kg, g.chunks)
	if err := p.op.env.in.x.cfg.Backend.Set(p.key, g.buf); err != nil {
		return err
	}
	g.chunks++
	g.buf = g.buf[:0]
	return nil
}

// restoreSnapshot moves the pending windows of a checkpoint's chunks in the
// instance's key groups into the state, and deletes the chunks. It runs
// whether or not this run keeps windows pending.
func (op *windowOp) restoreSnapshot() error {
	env := op.env
	type chunk struct {
		kg       state.KeyGroup
		key, val []byte
	}
	var chunks []chunk
	for kg := env.lo; kg < env.hi; kg++ {
		prefix := state.AppendCell(nil, state.Cell{Op: env.op, KG: kg, Name: cellSnap})
		it, err := env.in.x.cfg.Backend.NewIter(prefix, state.PrefixEnd(prefix))
		if err != nil {
			return err
		}
		for ok := it.First(); ok; ok = it.Next() {
			chunks = append(chunks, chunk{kg, append([]byte(nil), it.Key()...), append([]byte(nil), it.Value()...)})
		}
		if err := it.Close(); err != nil {
			return err
		}
	}
	n := 0
	for _, c := range chunks {
		k, err := op.restoreChunk(c.kg, c.val)
		if err != nil {
			return fmt.Errorf("engine: %s: key group %d: %w", op.node, c.kg, err)
		}
		n += k
		if err := env.in.x.cfg.Backend.Delete(c.key); err != nil {
			return err
		}
	}
	if n > 0 && op.pend != nil {
		op.pend.horizon = windowing.MaxTime
	}
	return nil
}

// restoreChunk writes the panes of one chunk into the state and returns
// how many there were.
func (op *windowOp) restoreChunk(kg state.KeyGroup, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, errSnapCorrupt
	}
	if b[0] != op.snapFormat() {
		what := map[byte]string{snapCombine: "a combine", snapGroup: "a GroupByKey"}[b[0]]
		if what == "" {
			return 0, fmt.Errorf("%w: format %q", errSnapCorrupt, b[0])
		}
		return 0, fmt.Errorf("%w: it holds %s's windows, and this transform is not one (the pipeline changed)", errSnapCorrupt, what)
	}
	r := snapReader{b: b[1:]}
	sa := &op.env.sa
	n := 0
	for len(r.b) > 0 {
		key := r.bytes()
		w := windowing.Window{Start: windowing.Time(r.u64()), End: windowing.Time(r.u64())}
		cell := r.bytes()
		if r.bad {
			return n, errSnapCorrupt
		}
		sa.set(kg, key, w)
		if err := sa.setFixedTimer(timerEOW, graph.DomainEvent, w.MaxTimestamp(), false); err != nil {
			return n, err
		}
		if err := sa.Set(cellTrigger, nil, cell); err != nil {
			return n, err
		}
		if !op.inline {
			for k := r.u32(); k > 0 && !r.bad; k-- {
				v := r.bytes()
				if r.bad {
					break
				}
				seq, _ := sa.NextSeq(cellBag)
				if err := sa.Set(cellBag, seq, v); err != nil {
					return n, err
				}
			}
			if r.bad {
				return n, errSnapCorrupt
			}
		}
		n++
	}
	return n, nil
}

// snapReader reads a chunk; bad says it ran short.
type snapReader struct {
	b   []byte
	bad bool
}

func (r *snapReader) uvarint() uint64 {
	v, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[k:]
	return v
}

func (r *snapReader) bytes() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *snapReader) u32() uint32 {
	if len(r.b) < 4 {
		r.bad, r.b = true, nil
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *snapReader) u64() uint64 {
	if len(r.b) < 8 {
		r.bad, r.b = true, nil
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}
