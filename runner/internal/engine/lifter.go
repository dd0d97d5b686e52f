package engine

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// lifter pre-combines the values of a CombinePerKey per key and window before
// the shuffle (Beam's combiner lifting). Its accumulators are found by key,
// then by window among the key's few: an element in several windows
// (sliding windows) looks its key up once. Under windows that merge
// (sessions) a key's windows merge here as they will downstream, with
// their accumulators: the grouping then merges what each sender sends
// as it merges elements' windows.
type lifter struct {
	fn      *graph.CombineSpec
	merging windowing.MergingWindowFn // nil unless the windows merge
	keys    map[string]*liftedKey
	// order is every accumulator, in first-seen order; merged counts
	// those in it that merged into another (gone), kept there until
	// order is next compacted.
	order  []*lifted
	merged int
	wins   []windowing.Window // merge's scratch
	// free holds drained accumulators' records for reuse (their cells
	// went downstream with them, so never their cells).
	free []*lifted
}

// liftedKey is one key's accumulators, one per window; the key and its
// encoding are shared by them (read only downstream).
type liftedKey struct {
	kb    string
	bytes []byte
	key   any
	accs  []*lifted
}

type lifted struct {
	s    shuffled // its Value is set when it leaves
	lk   *liftedKey
	cell graph.CombineCell
	// gone: merged into another accumulator (in order still, skipped).
	gone bool
}

func newLifter(fn *graph.CombineSpec, s windowing.Strategy) *lifter {
	l := &lifter{fn: fn, keys: map[string]*liftedKey{}}
	if s.Merging() {
		l.merging, _ = s.Fn.(windowing.MergingWindowFn)
	}
	return l
}

// held returns the number of accumulators held.
func (l *lifter) held() int { return len(l.order) - l.merged }

// add adds element e, of key kb (encoded; the caller's buffer) and key
// group kg, to its key's accumulator in each of wins.
func (l *lifter) add(kv *graph.KVInfo, kb []byte, kg state.KeyGroup, e graph.Elem, wins ...windowing.Window) {
	lk := l.keys[string(kb)] // no copy of kb to look up
	if lk == nil {
		lk = &liftedKey{kb: string(kb), bytes: bytes.Clone(kb), key: kv.Key(e.Value), accs: make([]*lifted, 0, len(wins))}
		l.keys[lk.kb] = lk
	}
	for _, w := range wins {
		var a *lifted
		for _, x := range lk.accs {
			if x.s.e.Window == w {
				a = x
				break
			}
		}
		if a == nil {
			if n := len(l.free); n > 0 {
				a, l.free = l.free[n-1], l.free[:n-1]
			} else {
				a = new(lifted)
			}
			*a = lifted{lk: lk, cell: l.fn.Cell(), s: shuffled{e: graph.Elem{Time: e.Time, Window: w, Pane: windowing.NoFiring},
				key: lk.key, keyBytes: lk.bytes, kg: kg, lifted: true}}
			lk.accs = append(lk.accs, a)
			l.order = append(l.order, a)
		}
		a.cell.AddKV(e.Value)
		a.s.n++
		if e.Time < a.s.e.Time {
			a.s.e.Time = e.Time
		}
		if l.merging != nil && len(lk.accs) > 1 {
			l.merge(lk)
		}
	}
}

// merge merges the windows of key lk that the window function merges, and
// their accumulators: each merge's result keeps the accumulator seen
// first.
func (l *lifter) merge(lk *liftedKey) {
	slices.SortFunc(lk.accs, func(a, b *lifted) int { return cmp.Compare(a.s.e.Window.Start, b.s.e.Window.Start) })
	l.wins = l.wins[:0]
	for _, a := range lk.accs {
		l.wins = append(l.wins, a.s.e.Window)
	}
	merges := l.merging.MergeWindows(l.wins)
	if len(merges) == 0 {
		return
	}
	for _, m := range merges {
		var into *lifted
		for _, a := range lk.accs {
			if a.gone || !slices.Contains(m.From, a.s.e.Window) {
				continue
			}
			if into == nil {
				into = a
				continue
			}
			into.cell.Merge(a.cell.Acc())
			into.s.n += a.s.n
			into.s.e.Time = min(into.s.e.Time, a.s.e.Time)
			a.gone = true
			l.merged++
		}
		if into != nil {
			into.s.e.Window = m.To
		}
	}
	lk.accs = slices.DeleteFunc(lk.accs, func(a *lifted) bool { return a.gone })
	if l.merged > len(l.order)/2 {
		l.order = slices.DeleteFunc(l.order, func(a *lifted) bool { return a.gone })
		l.merged = 0
	}
}

// remove forgets accumulator a.
func (l *lifter) remove(a *lifted) {
	lk := a.lk
	lk.accs = slices.DeleteFunc(lk.accs, func(x *lifted) bool { return x == a })
	if len(lk.accs) == 0 {
		delete(l.keys, lk.kb)
	}
}

// drainUpTo returns, in first-seen order, the accumulators of the windows
// whose maximum timestamp is at or before wm, and keeps the others.
func (l *lifter) drainUpTo(wm windowing.Time) []shuffled {
	var out []shuffled
	kept := l.order[:0]
	for _, a := range l.order {
		if a.gone {
			continue
		}
		if a.s.e.Window.MaxTimestamp() > wm {
			kept = append(kept, a)
			continue
		}
		a.s.e.Value = a.cell.Acc()
		out = append(out, a.s)
		l.remove(a)
		*a = lifted{}
		l.free = append(l.free, a)
	}
	clear(l.order[len(kept):])
	l.order, l.merged = kept, 0
	return out
}

// drain returns the accumulators in first-seen order and empties the lifter.
func (l *lifter) drain() []shuffled {
	out := make([]shuffled, 0, l.held())
	for _, a := range l.order {
		if !a.gone {
			a.s.e.Value = a.cell.Acc()
			out = append(out, a.s)
		}
		*a = lifted{}
		l.free = append(l.free, a)
	}
	clear(l.keys)
	clear(l.order)
	l.order, l.merged = l.order[:0], 0
	return out
}
