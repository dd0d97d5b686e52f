package engine

import (
	"bytes"
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// pendingPanes holds, in memory, the accumulators (of a combine) or the
// values (of a GroupByKey) of a windowOp's windows that the state has
// never seen, when the windows do not merge, the trigger fires once at
// the watermark and the strategy allows no lateness. Nobody reads such a
// window's state before it fires: putting it in the state cache meant a
// lookup, cells and a timer written, then a timer scan, reads and
// deletes. A combine's window lives only from its first accumulator (the
// lifter sends one per key, window and sender when a sender's watermark
// passes the window) to the slowest sender's watermark passing it.
//
// A key and window is pending or in the state, never both. A pending set
// grown past its limit moves every pending window into the state as
// process would have written it (spill), and horizon remembers the latest
// window end the state may then hold: a window that ends at or before it
// goes to the state. Checkpoint barriers write a copy of the pending
// windows beside the state, with the horizon, and keep them (see
// snapshot). A restored instance takes the latest horizon saved for its
// key groups (see restoreSnapshot); without one, if its state holds
// windows, the end of time. The horizon falls back to the start of time
// once no event-time timer is left in the state.
//
// Pending windows fire in the order their timers would have: by key group,
// after the timers of the same key group (all at or before the horizon),
// then by time, key and window.
type pendingPanes struct {
	op *windowOp
	// wins holds the pending windows, and order the same in the order
	// they fire (by maximum timestamp, then start); last is the window
	// of the latest new pane, which the next one is likely in.
	wins  map[windowing.Window]*pendingWindow
	order []*pendingWindow
	last  *pendingWindow
	// keys holds the panes by encoded key, across windows: an element or
	// lifted key in several windows (sliding windows) comes as one record
	// per window in a row, with the same key, so lastKey, the key of the
	// latest record, finds its panes without a lookup.
	keys    map[string]*pendingKey
	lastKey *pendingKey
	// keysPeak is the most keys held since keys was made: a map does not
	// shrink, so one far emptier than it was is made anew (see collect).
	keysPeak int
	due      []*pendingPane // fire's batch, in firing order
	horizon  windowing.Time
	// panes, vals and keyBytes count the panes and grouped values held,
	// and the bytes of the panes' keys; valSize and accSize are running
	// averages of the encoded sizes of sampled values and accumulators.
	// Past limit panes and values, or past byteLimit by their estimated
	// memory (see bytes), they spill.
	panes, vals, keyBytes int
	valSize, accSize      int64
	adds                  int
	limit                 int
	byteLimit             int64
	// written counts the snapshot chunks the last barrier wrote, by key
	// group less the lowest (see snapshot); the rest is its scratch.
	written   []uint32
	snapPanes []*pendingPane
	snapBuf   []byte
	key, hdr  []byte
}

// pendingWindow is one window's panes, in arrival order.
type pendingWindow struct {
	w    windowing.Window
	list []*pendingPane
}

// pendingKey is one key's panes, one per pending window, in the order
// they were made. A key's records come in the order of its windows, mostly
// the order its panes were made in: the search for a record's pane starts
// at next, after the pane the last one found. A key with more than
// manyPanes panes (a sliding window of a day every minute puts an element
// in 1440) has them by window too, so that a new window's record does not
// read them all.
type pendingKey struct {
	kb    string // the encoded key, as keys holds it
	panes []*pendingPane
	next  int
	byWin map[windowing.Window]*pendingPane
}

const manyPanes = 16

// pane returns the key's pane of window w, or nil.
func (pk *pendingKey) pane(w windowing.Window) *pendingPane {
	if pk.byWin != nil {
		return pk.byWin[w]
	}
	for j, n := 0, len(pk.panes); j < n; j++ {
		i := pk.next + j
		if i >= n {
			i -= n
		}
		if x := pk.panes[i]; x.w == w {
			pk.next = i + 1
			return x
		}
	}
	return nil
}

// add adds pane pp, of a window the key has no pane of.
func (pk *pendingKey) add(pp *pendingPane) {
	pk.panes = append(pk.panes, pp)
	pk.next = len(pk.panes)
	switch {
	case pk.byWin != nil:
		pk.byWin[pp.w] = pp
	case len(pk.panes) > manyPanes:
		pk.byWin = make(map[windowing.Window]*pendingPane, 2*len(pk.panes))
		for _, x := range pk.panes {
			pk.byWin[x.w] = x
		}
	}
}

// remove removes pane pp, once per window fired: a pass over the key's
// panes, which keep their order.
func (pk *pendingKey) remove(pp *pendingPane) {
	i := slices.Index(pk.panes, pp)
	pk.panes = slices.Delete(pk.panes, i, i+1)
	if pk.next > i {
		pk.next--
	}
	if pk.byWin != nil {
		delete(pk.byWin, pp.w)
	}
}

type pendingPane struct {
	pk       *pendingKey
	kg       state.KeyGroup
	key      any
	keyBytes []byte
	w        windowing.Window
	acc      graph.CombineCell // a combine's
	vals     []any             // a GroupByKey's, in arrival order
	ts       windowing.TriggerState
}

// pendingLimit is the most windows and grouped values kept pending before
// they spill to the state; the state cache's budget for the instance
// bounds it too, and half that budget bounds their estimated memory
// (which is not charged to the cache).
const pendingLimit = 1 << 18

// The memory of pending windows is estimated: per pane, paneOverhead bytes
// (the pane, its slots in its window's and its key's lists, and its key's
// share of the index of keys), its key's bytes and its
// accumulator's encoded size; per grouped value, valueOverhead bytes and
// its encoded size. One in sampleEvery values or accumulators is encoded
// to keep the average sizes.
const (
	paneOverhead  = 192
	valueOverhead = 32
	sampleEvery   = 64
)

func newPendingPanes(op *windowOp) *pendingPanes {
	grouping := op.combine == nil && op.gbk != nil
	if !op.inline && !grouping || op.merging != nil || !op.trig.WaitsForWatermark() || op.hasDelay || op.strat.AllowedLateness != 0 {
		return nil
	}
	cache := op.env.in.x.plan.cacheBytes
	p := &pendingPanes{op: op, wins: map[windowing.Window]*pendingWindow{}, keys: map[string]*pendingKey{},
		limit: int(min(pendingLimit, max(1024, cache/512))), byteLimit: max(1<<20, cache/2)}
	p.horizon = windowing.MaxTime
	p.resetHorizon()
	return p
}

// resetHorizon lowers the horizon to the start of time once the state
// holds no event-time timer, so no window. Until then a window in it may
// end anywhere up to the horizon (anywhere at all, after a restore).
func (p *pendingPanes) resetHorizon() {
	if p.horizon == windowing.MinTime {
		return
	}
	for _, t := range p.op.env.next[state.EventTime] {
		if t != windowing.MaxTime {
			return
		}
	}
	p.horizon = windowing.MinTime
}

// takes reports whether an element of window w goes to the pending set:
// the window ends after the horizon, and the input watermark has not
// passed it (then no pane can fire on its arrival).
func (p *pendingPanes) takes(w windowing.Window) bool {
	end := w.MaxTimestamp()
	return end > p.horizon && end >= p.op.env.inputWM
}

// add adds lifted accumulator or element s to its pending window, as
// process would to a window in the state.
func (p *pendingPanes) add(s *shuffled) error {
	op := p.op
	w := s.e.Window
	pk := p.lastKey
	if pk == nil || pk.kb != string(s.keyBytes) { // no copy to compare
		if pk = p.keys[string(s.keyBytes)]; pk == nil { // nor to look up
			pk = &pendingKey{kb: string(s.keyBytes)}
			p.keys[pk.kb] = pk
			p.keysPeak = max(p.keysPeak, len(p.keys))
		}
		p.lastKey = pk
	}
	pp := pk.pane(w)
	if pp == nil {
		pp = &pendingPane{pk: pk, kg: s.kg, key: s.key, keyBytes: s.keyBytes, w: w}
		if op.inline {
			pp.acc = op.combine.Cell()
		}
		pk.add(pp)
		pw := p.window(w)
		pw.list = append(pw.list, pp)
		p.panes++
		p.keyBytes += len(s.keyBytes)
	}
	switch {
	case !op.inline:
		_, v := op.kv.Split(s.e.Value)
		pp.vals = append(pp.vals, v)
		if p.vals%sampleEvery == 0 {
			if b, err := op.gbk.ValueCoder.Append(op.buf[:0], v); err == nil {
				op.buf, p.valSize = b, runningAverage(p.valSize, len(b))
			}
		}
		p.vals++
	case s.lifted:
		pp.acc.Merge(s.e.Value)
	default:
		_, v := op.kv.Split(s.e.Value)
		pp.acc.Add(v)
	}
	if op.inline && p.adds%sampleEvery == 0 {
		if b, err := op.combine.AccCoder.Append(op.buf[:0], pp.acc.Acc()); err == nil {
			op.buf, p.accSize = b, runningAverage(p.accSize, len(b))
		}
	}
	p.adds++
	op.trig.OnElement(&pp.ts, op.env.in.now) // no delay: never a deadline
	pp.ts.Count += s.n - 1
	if p.panes+p.vals > p.limit || p.bytes() > p.byteLimit {
		return p.spill()
	}
	return nil
}

// window returns pending window w, adding it if it is new.
func (p *pendingPanes) window(w windowing.Window) *pendingWindow {
	if pw := p.last; pw != nil && pw.w == w {
		return pw
	}
	pw := p.wins[w]
	if pw == nil {
		pw = &pendingWindow{w: w}
		p.wins[w] = pw
		i, _ := slices.BinarySearchFunc(p.order, pw, firesBefore)
		p.order = slices.Insert(p.order, i, pw)
	}
	p.last = pw
	return pw
}

// bytes estimates the memory the pending windows hold.
func (p *pendingPanes) bytes() int64 {
	return int64(p.panes)*(paneOverhead+p.accSize) + int64(p.keyBytes) + int64(p.vals)*(valueOverhead+p.valSize)
}

// runningAverage moves avg an eighth of the way to a new sample n (to n
// itself, for the first).
func runningAverage(avg int64, n int) int64 {
	if avg == 0 {
		return int64(n)
	}
	return avg + (int64(n)-avg)/8
}

// spill moves every pending window into the state, with its trigger state
// and accumulator in one cell and its end-of-window timer, as process
// writes a window it finds without state.
func (p *pendingPanes) spill() error {
	op := p.op
	for _, pw := range p.order {
		for _, pp := range pw.list {
			if err := p.spillPane(pp); err != nil {
				return err
			}
		}
		p.horizon = max(p.horizon, pw.w.MaxTimestamp())
	}
	op.acc = nil
	clear(p.wins)
	clear(p.order)
	p.order, p.last = p.order[:0], nil
	p.keys, p.lastKey, p.keysPeak = map[string]*pendingKey{}, nil, 0 // a map does not shrink
	p.panes, p.vals, p.keyBytes = 0, 0, 0
	return nil
}

// spillPane writes pending pane pp into the state.
func (p *pendingPanes) spillPane(pp *pendingPane) error {
	op := p.op
	sa := &op.env.sa
	sa.set(pp.kg, pp.keyBytes, pp.w)
	if err := sa.setFixedTimer(timerEOW, graph.DomainEvent, pp.w.MaxTimestamp(), true); err != nil {
		return err
	}
	for _, v := range pp.vals {
		b, err := op.gbk.ValueCoder.Append(op.buf[:0], v)
		if err != nil {
			return fmt.Errorf("engine: %s: encoding value: %w", op.node, err)
		}
		op.buf = b
		seq, _ := sa.NextSeq(cellBag)
		if err := sa.Set(cellBag, seq, b); err != nil {
			return err
		}
	}
	op.acc, op.fresh, op.legacy = nil, op.inline, false
	if pp.acc != nil {
		op.acc = pp.acc.Acc()
	}
	return op.storeTrigger(&pp.ts)
}

// held returns the number of keys and windows pending.
func (p *pendingPanes) held() int {
	n := 0
	for _, pw := range p.order {
		n += len(pw.list)
	}
	return n
}

// firesBefore orders pending windows as their timers fire: by maximum
// timestamp, then by start.
func firesBefore(a, b *pendingWindow) int {
	if c := cmp.Compare(a.w.MaxTimestamp(), b.w.MaxTimestamp()); c != 0 {
		return c
	}
	return cmp.Compare(a.w.Start, b.w.Start)
}

// collect takes the windows that end at or before upTo out of the pending
// set, in firing order, and reports whether there are any.
func (p *pendingPanes) collect(upTo windowing.Time) bool {
	p.resetHorizon()
	p.due = p.due[:0:0] // fire takes from the front: start afresh
	n := 0
	for _, pw := range p.order {
		if pw.w.MaxTimestamp() > upTo {
			break
		}
		p.due = append(p.due, pw.list...)
		for _, pp := range pw.list {
			p.panes--
			p.vals -= len(pp.vals)
			p.keyBytes -= len(pp.keyBytes)
			p.forget(pp)
		}
		delete(p.wins, pw.w)
		if p.last == pw {
			p.last = nil
		}
		n++
	}
	if n == 0 {
		return false
	}
	if p.keysPeak >= 1<<12 && len(p.keys) < p.keysPeak/8 {
		keys := make(map[string]*pendingKey, len(p.keys))
		maps.Copy(keys, p.keys)
		p.keys, p.keysPeak = keys, len(keys)
	}
	p.order = slices.Delete(p.order, 0, n)
	// The order of their timer keys: key group, time, key length, key,
	// window.
	slices.SortFunc(p.due, func(a, b *pendingPane) int {
		if c := cmp.Compare(a.kg, b.kg); c != 0 {
			return c
		}
		if c := cmp.Compare(a.w.MaxTimestamp(), b.w.MaxTimestamp()); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.keyBytes), len(b.keyBytes)); c != 0 {
			return c
		}
		if c := bytes.Compare(a.keyBytes, b.keyBytes); c != 0 {
			return c
		}
		if c := cmp.Compare(a.w.Start, b.w.Start); c != 0 {
			return c
		}
		return cmp.Compare(a.w.End, b.w.End)
	})
	return len(p.due) > 0
}

// forget takes pane pp out of its key's panes, and the key out of keys
// once it has none.
func (p *pendingPanes) forget(pp *pendingPane) {
	pk := pp.pk
	pp.pk = nil
	pk.remove(pp)
	if len(pk.panes) > 0 {
		return
	}
	delete(p.keys, pk.kb)
	if p.lastKey == pk {
		p.lastKey = nil
	}
}

// fire fires the collected windows of key group kg: the on-time and final
// pane of each, as onTimer does at the end of a window.
func (p *pendingPanes) fire(kg state.KeyGroup) (int, error) {
	op := p.op
	n := 0
	for len(p.due) > 0 && p.due[0].kg <= kg {
		pp := p.due[0]
		p.due = p.due[1:]
		key := pp.key
		if key == nil {
			var err error
			if key, err = op.kv.KeyCoder.Decode(pp.keyBytes); err != nil {
				return n, fmt.Errorf("engine: %s: decoding key: %w", op.node, err)
			}
		}
		var value any
		if op.inline {
			value = op.combine.Make(key, op.combine.Extract(pp.acc.Acc()))
		} else {
			value = op.gbk.Make(key, pp.vals)
		}
		if err := op.firePane(&pp.ts, pp.w, value, windowing.OnTime, true); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
