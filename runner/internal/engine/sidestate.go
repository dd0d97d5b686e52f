package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/weir-dev/weir/internal/coder"
	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// A ParDo with side inputs keeps its buffers in memory: the side inputs'
// elements by window, and the main elements waiting for them. At a
// checkpoint each instance writes them to the backend as one value under
// the operator's metadata (sideSnapMeta + its index), with the watermarks
// its inputs had; a restored instance reads them back. Every instance holds
// the side data (it is broadcast), so a restore takes each window's data
// from any snapshot that has it, and the waiting main elements of snapshot
// j go to instance j mod the new parallelism.

const sideSnapMeta = "side/"

// sideSnapshot is what an instance of a side-input ParDo keeps.
type sideSnapshot struct {
	wms     []windowing.Time // the main input's, then each side input's
	pending []graph.Elem
	data    []map[windowing.Window][]any // by side input
}

// sideCodec encodes snapshots of one ParDo's instances.
type sideCodec struct {
	main  coder.Coder
	sides []coder.Coder
}

func newSideCodec(n *graph.Node) sideCodec {
	c := sideCodec{main: coder.For(n.Inputs[0].Type)}
	for _, s := range n.Sides {
		c.sides = append(c.sides, coder.For(s.PCol.Type))
	}
	return c
}

const sideSnapVersion = 1

func (c sideCodec) encode(s *sideSnapshot) ([]byte, error) {
	b := []byte{sideSnapVersion}
	b = binary.AppendUvarint(b, uint64(len(s.wms)))
	for _, wm := range s.wms {
		b = appendTime(b, wm)
	}
	b = binary.AppendUvarint(b, uint64(len(s.pending)))
	var v []byte
	var err error
	for _, e := range s.pending {
		b = appendTime(appendTime(appendTime(b, e.Time), e.Window.Start), e.Window.End)
		b = binary.AppendVarint(b, e.Pane.Index)
		flags := byte(e.Pane.Timing) << 2
		if e.Pane.IsFirst {
			flags |= 1
		}
		if e.Pane.IsLast {
			flags |= 2
		}
		b = append(b, flags)
		if v, err = c.main.Append(v[:0], e.Value); err != nil {
			return nil, err
		}
		b = appendBlob(b, v)
	}
	b = binary.AppendUvarint(b, uint64(len(s.data)))
	for i, byWin := range s.data {
		b = binary.AppendUvarint(b, uint64(len(byWin)))
		for w, vals := range byWin {
			b = appendTime(appendTime(b, w.Start), w.End)
			b = binary.AppendUvarint(b, uint64(len(vals)))
			for _, x := range vals {
				if v, err = c.sides[i].Append(v[:0], x); err != nil {
					return nil, err
				}
				b = appendBlob(b, v)
			}
		}
	}
	return b, nil
}

var errShortSnapshot = errors.New("short side-input snapshot")

func (c sideCodec) decode(b []byte) (*sideSnapshot, error) {
	if len(b) == 0 || b[0] != sideSnapVersion {
		return nil, errors.New("unknown side-input snapshot format")
	}
	r := &snapReader{b: b[1:], short: errShortSnapshot}
	s := &sideSnapshot{}
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		s.wms = append(s.wms, r.time())
	}
	for n := r.uvarint(); n > 0 && r.err == nil; n-- {
		var e graph.Elem
		e.Time, e.Window.Start, e.Window.End = r.time(), r.time(), r.time()
		e.Pane.Index = r.varint()
		flags := r.byte1()
		e.Pane.Timing = windowing.PaneTiming(flags >> 2)
		e.Pane.IsFirst, e.Pane.IsLast = flags&1 != 0, flags&2 != 0
		e.Value = r.value(c.main)
		s.pending = append(s.pending, e)
	}
	sides := r.uvarint()
	if r.err == nil && sides != uint64(len(c.sides)) {
		return nil, fmt.Errorf("the snapshot has %d side inputs, the ParDo %d", sides, len(c.sides))
	}
	for i := 0; i < int(sides) && r.err == nil; i++ {
		byWin := map[windowing.Window][]any{}
		for n := r.uvarint(); n > 0 && r.err == nil; n-- {
			w := windowing.Window{Start: r.time(), End: r.time()}
			var vals []any
			for m := r.uvarint(); m > 0 && r.err == nil; m-- {
				vals = append(vals, r.value(c.sides[i]))
			}
			byWin[w] = vals
		}
		s.data = append(s.data, byWin)
	}
	if r.err != nil {
		return nil, r.err
	}
	return s, nil
}

func sideSnapKey(op uint32, idx int) []byte {
	return state.MetaKey(op, sideSnapMeta+strconv.Itoa(idx))
}

// saveSide writes instance idx's snapshot.
func saveSide(b state.Backend, op uint32, idx int, c sideCodec, s *sideSnapshot) error {
	v, err := c.encode(s)
	if err != nil {
		return err
	}
	return b.Set(sideSnapKey(op, idx), v)
}

// restoreSide returns what instance idx of instances gets back from the
// snapshots in the backend: the union of the side data, the waiting main
// elements of every snapshot j with j mod instances == idx, and the lowest
// watermark of each input. It returns nil if there is no snapshot. It is
// read for every instance before any runs (plan.restore): each instance
// writes its own snapshot at every barrier, and instance 0 deletes the
// snapshots of instances that no longer exist at its first (see
// dropStaleSide).
func restoreSide(b state.Backend, op uint32, idx, instances int, c sideCodec) (*sideSnapshot, error) {
	prefix := state.MetaKey(op, sideSnapMeta)
	it, err := b.NewIter(prefix, state.PrefixEnd(prefix))
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out *sideSnapshot
	for ok := it.First(); ok; ok = it.Next() {
		j, err := strconv.Atoi(string(it.Key()[len(prefix):]))
		if err != nil {
			continue
		}
		s, err := c.decode(it.Value())
		if err != nil {
			return nil, fmt.Errorf("side-input snapshot %d: %w", j, err)
		}
		if out == nil {
			out = &sideSnapshot{wms: s.wms, data: make([]map[windowing.Window][]any, len(c.sides))}
			for i := range out.data {
				out.data[i] = map[windowing.Window][]any{}
			}
		}
		for i := range out.wms {
			if i < len(s.wms) {
				out.wms[i] = windowing.MinOf(out.wms[i], s.wms[i])
			}
		}
		if j%instances == idx {
			out.pending = append(out.pending, s.pending...)
		}
		for i, byWin := range s.data {
			for w, vals := range byWin {
				if _, ok := out.data[i][w]; !ok {
					out.data[i][w] = vals
				}
			}
		}
	}
	return out, it.Error()
}

// dropStaleSide deletes the snapshots of instances idx >= instances, left by
// a run with a higher parallelism.
func dropStaleSide(b state.Backend, op uint32, instances int) error {
	prefix := state.MetaKey(op, sideSnapMeta)
	keys, err := state.KeysIn(b, prefix, state.PrefixEnd(prefix))
	if err != nil {
		return err
	}
	for _, k := range keys {
		if j, err := strconv.Atoi(string(k[len(prefix):])); err == nil && j >= instances {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
	}
	return nil
}
