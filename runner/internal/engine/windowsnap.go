package engine

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// At a checkpoint's barrier the pending windows stay in memory: the
// instance writes a copy of them to the backend, per key group, as a few
// large values (chunks of at most snapChunk bytes, unless one window's
// record alone is larger) that only a restore reads. Before, the barrier
// moved every pending window into the state as cells and a timer of its
// own, and the windows' later elements and their firing took the slower
// path through the state: with checkpoints every second that cost Nexmark
// Q5 two fifths of its speed.
//
// The chunks are operator metadata (snapMeta, then the key group and the
// chunk's number, 2 and 4 bytes), outside the key ranges the instance's
// state cache owns, and they go to the backend directly, past the cache,
// which would keep a copy: nothing in a run reads them but its restore.
// Each barrier rewrites every key group's, one chunk at least, and deletes
// the chunks the previous barrier wrote beyond the new ones. Each chunk
// carries the instance's horizon: every window in the state of its key
// groups ends at or before it.
//
// A restored instance moves the windows of its key groups' chunks into the
// state as spill would have, and deletes the chunks. The state then holds
// windows, so new elements of windows that end at or before the horizon
// go to the state, and a window is never both pending and in the state:
// the restored horizon is the latest of its key groups' saved ones (after
// rescaling they come from several former instances) and of the restored
// windows' ends; without any (state from an older version), the end of
// time, until the state's timers have all fired. Key groups are the unit
// of rescaling, and an instance reads and writes only its own groups'
// chunks.
//
// A chunk is a format byte (snapCombine or snapGroup: what the operator
// was) and the horizon (8 bytes), then records: the encoded key (uvarint
// length first), the
// window's start and end (8 bytes each), the trigger-state cell as
// storeTrigger writes it (uvarint length first; a combine's accumulator is
// in it), and a GroupByKey's values (a 4-byte count, then each with its
// uvarint length). A window with more values than a chunk holds continues
// in the next chunk, in a record of its own (key, window and trigger state
// repeated), which a restore adds to the same window.

const (
	snapMeta   = "pending/"
	snapChunk  = 256 << 10
	snapHeader = 9 // format and horizon

	snapCombine = 'c'
	snapGroup   = 'g'
)

// errSnapCorrupt is returned for a pending-window chunk that cannot be
// read, or that another kind of transform wrote.
var errSnapCorrupt = errors.New("unreadable pending-window snapshot")

// snapPrefix returns the prefix of the chunk keys of key group kg.
func (op *windowOp) snapPrefix(dst []byte, kg state.KeyGroup) []byte {
	dst = append(dst, state.MetaKey(op.env.op, snapMeta)...)
	return binary.BigEndian.AppendUint16(dst, uint16(kg))
}

// snapKey returns the key of chunk i of key group kg.
func (op *windowOp) snapKey(dst []byte, kg state.KeyGroup, i uint32) []byte {
	return binary.BigEndian.AppendUint32(op.snapPrefix(dst, kg), i)
}

func (op *windowOp) snapFormat() byte {
	if op.inline {
		return snapCombine
	}
	return snapGroup
}

// snapWriter writes one key group's chunks at a barrier.
type snapWriter struct {
	p      *pendingPanes
	kg     state.KeyGroup
	buf    []byte // the chunk being written
	chunks uint32 // written so far
	count  int    // where the open record's value count is in buf; 0: none
	n      uint32 // the open record's values so far
}

// snapshot writes a copy of the pending windows, and the horizon, to the
// backend for the checkpoint of the barrier being handled.
func (p *pendingPanes) snapshot() error {
	op, env := p.op, p.op.env
	be := env.in.x.cfg.Backend
	if p.written == nil {
		p.written = make([]uint32, env.hi-env.lo)
	}
	panes := p.snapPanes[:0]
	for _, pw := range p.order {
		panes = append(panes, pw.list...)
	}
	slices.SortStableFunc(panes, func(a, b *pendingPane) int { return cmp.Compare(a.kg, b.kg) })
	w := snapWriter{p: p, buf: p.snapBuf[:0]}
	// done finishes key group w.kg: its last chunk, and the deletion of
	// the previous barrier's chunks beyond the new ones.
	done := func() error {
		if err := w.flush(); err != nil {
			return err
		}
		i := w.kg - env.lo
		for c := w.chunks; c < p.written[i]; c++ {
			p.key = op.snapKey(p.key[:0], w.kg, c)
			if err := be.Delete(p.key); err != nil {
				return err
			}
		}
		p.written[i] = w.chunks
		return nil
	}
	j := 0
	for kg := env.lo; kg < env.hi; kg++ {
		w.kg, w.chunks = kg, 0
		for ; j < len(panes) && panes[j].kg == kg; j++ {
			if err := w.pane(panes[j]); err != nil {
				return err
			}
		}
		if err := done(); err != nil {
			return err
		}
	}
	clear(panes)
	p.snapPanes = panes[:0]
	if cap(w.buf) <= 2*snapChunk {
		p.snapBuf = w.buf[:0]
	} else {
		p.snapBuf = nil // one large window's: not kept
	}
	return nil
}

// start starts a chunk in buf: the format and the horizon.
func (w *snapWriter) start() {
	w.buf = appendTime(append(w.buf, w.p.op.snapFormat()), w.p.horizon)
}

// open starts a record with header hdr, writing the chunk first if the
// record (next more bytes after it) would take it past snapChunk.
func (w *snapWriter) open(hdr []byte, next int) error {
	w.closeRecord()
	if len(w.buf) > snapHeader && len(w.buf)+len(hdr)+next > snapChunk {
		if err := w.flush(); err != nil {
			return err
		}
	}
	if len(w.buf) == 0 {
		w.start()
	}
	w.buf = append(w.buf, hdr...)
	if !w.p.op.inline {
		w.count, w.n = len(w.buf), 0
		w.buf = binary.BigEndian.AppendUint32(w.buf, 0)
	}
	return nil
}

// closeRecord writes the open record's value count.
func (w *snapWriter) closeRecord() {
	if w.count > 0 {
		binary.BigEndian.PutUint32(w.buf[w.count:], w.n)
		w.count = 0
	}
}

// flush writes the chunk being written, if it holds anything or is the
// key group's first.
func (w *snapWriter) flush() error {
	w.closeRecord()
	if len(w.buf) <= snapHeader && w.chunks > 0 {
		return nil
	}
	if len(w.buf) == 0 {
		w.start()
	}
	w.p.key = w.p.op.snapKey(w.p.key[:0], w.kg, w.chunks)
	if err := w.p.op.env.in.x.cfg.Backend.Set(w.p.key, w.buf); err != nil {
		return err
	}
	w.chunks++
	w.buf = w.buf[:0]
	return nil
}

// pane writes pending pane pp's records.
func (w *snapWriter) pane(pp *pendingPane) error {
	p, op := w.p, w.p.op
	op.acc = nil
	if pp.acc != nil {
		op.acc = pp.acc.Acc()
	}
	cell, err := op.triggerCell(&pp.ts)
	op.acc = nil
	if err != nil {
		return err
	}
	hdr := appendBlob(p.hdr[:0], pp.keyBytes)
	hdr = appendTime(appendTime(hdr, pp.w.Start), pp.w.End)
	hdr = appendBlob(hdr, cell)
	p.hdr = hdr
	if op.inline || len(pp.vals) == 0 {
		return w.open(hdr, 0)
	}
	for i, v := range pp.vals {
		enc, err := op.gbk.ValueCoder.Append(op.buf[:0], v)
		if err != nil {
			return fmt.Errorf("engine: %s: encoding value: %w", op.node, err)
		}
		op.buf = enc
		size := binary.MaxVarintLen64 + len(enc)
		switch {
		case i == 0:
			if err := w.open(hdr, 4+size); err != nil {
				return err
			}
		case len(w.buf)+size > snapChunk:
			if err := w.flush(); err != nil {
				return err
			}
			if err := w.open(hdr, 4+size); err != nil {
				return err
			}
		}
		w.buf = appendBlob(w.buf, enc)
		w.n++
	}
	return nil
}

// restoreSnapshot moves the pending windows of a checkpoint's chunks in the
// instance's key groups into the state, deletes the chunks, and sets the
// horizon. It runs whether or not this run keeps windows pending.
func (op *windowOp) restoreSnapshot() error {
	env := op.env
	be := env.in.x.cfg.Backend
	latest := windowing.MinTime // of the restored windows' ends
	var saved *windowing.Time   // the latest saved horizon
	var keys [][]byte
	for kg := env.lo; kg < env.hi; kg++ {
		prefix := op.snapPrefix(nil, kg)
		it, err := be.NewIter(prefix, state.PrefixEnd(prefix))
		if err != nil {
			return err
		}
		keys = keys[:0]
		for ok := it.First(); ok; ok = it.Next() {
			h, end, err := op.restoreChunk(kg, it.Value())
			if err != nil {
				it.Close()
				return fmt.Errorf("engine: %s: key group %d: %w", op.node, kg, err)
			}
			latest = max(latest, end)
			if saved == nil || h > *saved {
				saved = &h
			}
			keys = append(keys, append([]byte(nil), it.Key()...))
		}
		if err := it.Close(); err != nil {
			return err
		}
		for _, k := range keys {
			if err := be.Delete(k); err != nil {
				return err
			}
		}
	}
	if p := op.pend; p != nil && saved != nil {
		p.horizon = max(*saved, latest)
		p.resetHorizon()
	}
	return nil
}

// restoreChunk writes the windows of one chunk into the state and returns
// the horizon saved with it and the latest of the windows' maximum
// timestamps.
func (op *windowOp) restoreChunk(kg state.KeyGroup, b []byte) (horizon, latest windowing.Time, err error) {
	latest = windowing.MinTime
	if len(b) < snapHeader {
		return horizon, latest, errSnapCorrupt
	}
	if b[0] != op.snapFormat() {
		what := map[byte]string{snapCombine: "a combine", snapGroup: "a GroupByKey"}[b[0]]
		if what == "" {
			return horizon, latest, fmt.Errorf("%w: format %q", errSnapCorrupt, b[0])
		}
		return horizon, latest, fmt.Errorf("%w: it holds %s's windows, and this transform is not one (the pipeline changed)", errSnapCorrupt, what)
	}
	horizon = windowing.Time(binary.BigEndian.Uint64(b[1:]))
	r := snapReader{b: b[snapHeader:], short: errSnapCorrupt}
	sa := &op.env.sa
	for len(r.b) > 0 {
		key := r.blob()
		w := windowing.Window{Start: r.time(), End: r.time()}
		cell := r.blob()
		if r.err != nil || w.Start >= w.End || len(cell) < 25 || op.inline != (len(cell) > 25 && cell[25] == inlineMark) {
			return horizon, latest, errSnapCorrupt
		}
		latest = max(latest, w.MaxTimestamp())
		sa.set(kg, key, w)
		if err := sa.setFixedTimer(timerEOW, graph.DomainEvent, w.MaxTimestamp(), false); err != nil {
			return horizon, latest, err
		}
		if err := sa.Set(cellTrigger, nil, cell); err != nil {
			return horizon, latest, err
		}
		if !op.inline {
			for k := r.u32(); k > 0 && r.err == nil; k-- {
				v := r.blob()
				if r.err != nil {
					break
				}
				seq, _ := sa.NextSeq(cellBag)
				if err := sa.Set(cellBag, seq, v); err != nil {
					return horizon, latest, err
				}
			}
			if r.err != nil {
				return horizon, latest, errSnapCorrupt
			}
		}
	}
	return horizon, latest, nil
}
