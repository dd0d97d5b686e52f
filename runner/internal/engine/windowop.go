package engine

import (
	"encoding/binary"
	"fmt"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// windowOp runs GroupByKey and CombinePerKey: Beam's GroupAlsoByWindow. Per
// key and window it keeps the pane's data (a bag of values, or a combine
// accumulator) and the trigger's state in the backend, and fires panes as
// elements, the watermark and processing time say.
//
// State per key and window: cell "t" (trigger state), "a" (accumulator) or
// "b" (bag entries); per key, in the global window, "w" (the active windows,
// for merging window functions). Timers per key and window: "eow" (event
// time, the window's maximum timestamp: the on-time pane), "gc" (event time,
// end of allowed lateness: the final pane and garbage collection), "pt"
// (processing time: a delayed early or late firing). The eow timer is a
// fixed timer (state.SetFixedTimer).
type windowOp struct {
	env     *keyedEnv
	node    *graph.Node
	strat   windowing.Strategy
	trig    windowing.Trigger
	merging windowing.MergingWindowFn
	kv      *graph.KVInfo
	combine *graph.CombineSpec
	gbk     *graph.GBKSpec
	out     graph.Emit
	late    interface{ Add(int64) int64 }
	buf     []byte
	tbuf    [25]byte // storeTrigger's encoding
	// hasDelay says the trigger can set processing-time timers ("pt").
	hasDelay bool
	// inline: a combine over windows that do not merge keeps its
	// accumulator in the trigger-state cell, after the trigger state: one
	// cell per key and window, read once and written once per element.
	// acc, legacy and fresh describe the current window as loadTrigger
	// found it: its accumulator; whether it was stored the older way, in
	// a cell of its own ("a", in state from a checkpoint taken before
	// cells were inlined); and whether it had no state.
	inline, legacy, fresh bool
	acc                   any
	// pend keeps new windows in memory until they fire, when the
	// strategy allows (see pendingPanes); nil otherwise.
	pend *pendingPanes
}

// inlineMark follows the trigger state in a cell that holds the
// accumulator too; a trigger state alone is 25 bytes.
const inlineMark = 1

const (
	cellTrigger = "t"
	cellAcc     = "a"
	cellBag     = "b"
	cellWindows = "w"
	timerEOW    = "eow"
	timerGC     = "gc"
	timerPT     = "pt"
)

func newWindowOp(env *keyedEnv, n *graph.Node) (*windowOp, error) {
	in := n.Inputs[0]
	op := &windowOp{env: env, node: n, strat: in.Strategy, trig: in.Strategy.Trigger, kv: in.KV,
		combine: n.Combine, gbk: n.GBK, late: env.in.x.cfg.Metrics.Late(n.Name)}
	op.merging, _ = in.Strategy.Fn.(windowing.MergingWindowFn)
	op.hasDelay = in.Strategy.Trigger.HasDelay()
	op.out = env.in.emitterFor(n.Outputs[0])
	op.inline = op.combine != nil && op.merging == nil
	env.fixed = isFixedTimer
	op.pend = newPendingPanes(op)
	if err := op.restoreSnapshot(); err != nil {
		return nil, err
	}
	return op, nil
}

// isFixedTimer: the eow timer of a window is always at its maximum
// timestamp, so it is kept as a fixed timer, without an index.
func isFixedTimer(name string) bool { return name == timerEOW }

func (op *windowOp) finishBundle() error { return nil }

// beforeCheckpoint writes a copy of the pending windows to the backend,
// beside the state, which the checkpoint then holds.
func (op *windowOp) beforeCheckpoint() error {
	if op.pend == nil {
		return nil
	}
	return op.pend.snapshot()
}

// pending returns the operator's pending windows, if it keeps any.
func (op *windowOp) pending() *pendingPanes { return op.pend }

func (op *windowOp) process(s *shuffled) error {
	env := op.env
	sa := &env.sa
	w := s.e.Window
	if op.strat.IsLate(w, env.inputWM) {
		k := op.late.Add(s.n)
		if k <= 10 || k%10000 == 0 {
			env.in.x.cfg.Logger.Warn("late data dropped at a grouping", "transform", op.node.Name, "window", w, "watermark", env.inputWM, "count", k)
		}
		return nil
	}
	if op.pend != nil && op.pend.takes(w) {
		return op.pend.add(s)
	}
	sa.set(s.kg, s.keyBytes, w)
	if op.merging != nil {
		var err error
		if w, err = op.mergeWindow(s.kg, s.keyBytes, w); err != nil {
			return err
		}
	}
	ts, exists, err := op.loadTrigger()
	if err != nil {
		return err
	}
	// A window's cells and timers are created with its trigger state and
	// garbage collected with it: without trigger state the window has no
	// accumulator, bag or timers to read, in the cache or the backend.
	if !exists {
		if err := sa.setFixedTimer(timerEOW, graph.DomainEvent, w.MaxTimestamp(), true); err != nil {
			return err
		}
	}
	if err := op.addValue(s, !exists); err != nil {
		return err
	}
	if d := op.trig.OnElement(&ts, env.in.now); d != 0 {
		if err := sa.SetTimer(timerPT, graph.DomainProcessing, d); err != nil {
			return err
		}
	}
	ts.Count += s.n - 1
	if timing, ok := op.trig.ShouldFire(&ts, w, env.inputWM, env.in.now); ok {
		if timing == windowing.OnTime {
			// A new window whose end the watermark has already passed
			// (data within the allowed lateness): its first pane is late,
			// and no on-time pane follows.
			timing = windowing.Late
			ts.OnTimeFired = true
		}
		if err := op.emitPane(&ts, w, s.key, timing, false); err != nil {
			return err
		}
	}
	return op.storeTrigger(&ts)
}

// addValue adds the element to the pane of the current window; fresh says
// the window has no state yet.
func (op *windowOp) addValue(s *shuffled, fresh bool) error {
	sa := &op.env.sa
	if op.inline {
		// Stored with the trigger state by storeTrigger.
		if op.acc == nil {
			op.acc = op.combine.Create()
		}
		if s.lifted {
			op.acc = op.combine.Merge(op.acc, s.e.Value)
		} else {
			_, v := op.kv.Split(s.e.Value)
			op.acc = op.combine.Add(op.acc, v)
		}
		return nil
	}
	if op.combine != nil {
		var acc any
		if fresh {
			acc = op.combine.Create()
		} else {
			var err error
			if acc, err = op.loadAcc(); err != nil {
				return err
			}
		}
		if s.lifted {
			acc = op.combine.Merge(acc, s.e.Value)
		} else {
			_, v := op.kv.Split(s.e.Value)
			acc = op.combine.Add(acc, v)
		}
		if fresh {
			b, err := op.combine.AccCoder.Append(op.buf[:0], acc)
			if err != nil {
				return fmt.Errorf("engine: %s: encoding accumulator: %w", op.node, err)
			}
			op.buf = b
			return sa.setNew(cellAcc, nil, b)
		}
		return op.storeAcc(acc)
	}
	_, v := op.kv.Split(s.e.Value)
	b, err := op.gbk.ValueCoder.Append(op.buf[:0], v)
	if err != nil {
		return fmt.Errorf("engine: %s: encoding value: %w", op.node, err)
	}
	op.buf = b
	seq, _ := sa.NextSeq(cellBag)
	return sa.Set(cellBag, seq, b)
}

func (op *windowOp) loadAcc() (any, error) {
	b, ok, err := op.env.sa.view(cellAcc, nil)
	if err != nil {
		return nil, err
	}
	if !ok {
		return op.combine.Create(), nil
	}
	acc, err := op.combine.AccCoder.Decode(b)
	if err != nil {
		return nil, fmt.Errorf("engine: %s: decoding accumulator: %w", op.node, err)
	}
	return acc, nil
}

func (op *windowOp) storeAcc(acc any) error {
	b, err := op.combine.AccCoder.Append(op.buf[:0], acc)
	if err != nil {
		return fmt.Errorf("engine: %s: encoding accumulator: %w", op.node, err)
	}
	op.buf = b
	return op.env.sa.Set(cellAcc, nil, b)
}

// emitPane outputs the current pane of window w and records the firing.
func (op *windowOp) emitPane(ts *windowing.TriggerState, w windowing.Window, key any, timing windowing.PaneTiming, last bool) error {
	value, err := op.paneValue(key)
	if err != nil {
		return err
	}
	return op.firePane(ts, w, value, timing, last)
}

// paneValue returns the value of the current window's pane for key: the
// combine's output, or the key and its grouped values.
func (op *windowOp) paneValue(key any) (any, error) {
	sa := &op.env.sa
	var value any
	if op.inline {
		value = op.combine.Make(key, op.combine.Extract(op.acc))
	} else if op.combine != nil {
		acc, err := op.loadAcc()
		if err != nil {
			return nil, err
		}
		value = op.combine.Make(key, op.combine.Extract(acc))
	} else {
		var vals []any
		err := sa.Scan(cellBag, func(_, b []byte) error {
			v, err := op.gbk.ValueCoder.Decode(b)
			if err != nil {
				return fmt.Errorf("engine: %s: decoding value: %w", op.node, err)
			}
			vals = append(vals, v)
			return nil
		})
		if err != nil {
			return nil, err
		}
		value = op.gbk.Make(key, vals)
	}
	return value, nil
}

// firePane outputs value as the pane of window w and records the firing.
func (op *windowOp) firePane(ts *windowing.TriggerState, w windowing.Window, value any, timing windowing.PaneTiming, last bool) error {
	sa := &op.env.sa
	pane := op.trig.OnFire(ts, timing, last)
	op.out(graph.Elem{Value: value, Time: w.MaxTimestamp(), Window: w, Pane: pane})
	if op.strat.Mode == windowing.Discarding && !last && op.inline {
		op.acc = op.combine.Create() // stored with the trigger state
	} else if op.strat.Mode == windowing.Discarding && !last {
		if err := sa.Delete(cellAcc, nil); err != nil {
			return err
		}
		if err := sa.Clear(cellBag); err != nil {
			return err
		}
	}
	if !op.hasDelay {
		return nil
	}
	return sa.ClearTimer(timerPT, graph.DomainProcessing)
}

func (op *windowOp) onTimer(t state.Timer) error {
	env := op.env
	sa := &env.sa
	sa.set(t.KG, t.Key, t.Window)
	ts, exists, err := op.loadTrigger()
	if err != nil || !exists {
		return err
	}
	key, err := op.kv.KeyCoder.Decode(t.Key)
	if err != nil {
		return fmt.Errorf("engine: %s: decoding key: %w", op.node, err)
	}
	w := t.Window
	switch t.Name {
	case timerEOW:
		lateness := op.strat.AllowedLateness
		if !ts.OnTimeFired {
			if err := op.emitPane(&ts, w, key, windowing.OnTime, lateness == 0); err != nil {
				return err
			}
		}
		if lateness == 0 {
			return op.gc(w, timerEOW)
		}
		if err := sa.SetTimer(timerGC, graph.DomainEvent, windowing.MinOf(op.strat.GCTime(w), windowing.MaxTime-1)); err != nil {
			return err
		}
	case timerGC:
		if ts.Count > 0 {
			if err := op.emitPane(&ts, w, key, windowing.Late, true); err != nil {
				return err
			}
		}
		return op.gc(w, timerGC)
	case timerPT:
		timing, ok := op.trig.ShouldFire(&ts, w, env.inputWM, env.in.now)
		if !ok {
			break
		}
		if timing == windowing.OnTime {
			break // the eow timer fires it
		}
		if err := op.emitPane(&ts, w, key, timing, false); err != nil {
			return err
		}
	}
	return op.storeTrigger(&ts)
}

// gc deletes the state and timers of the current key and window w. fired
// names the timer that is firing, if any: it is gone already. Timers the
// strategy never sets are not looked for.
func (op *windowOp) gc(w windowing.Window, fired string) error {
	sa := &op.env.sa
	if fired != timerEOW {
		if err := sa.clearFixedTimer(timerEOW, graph.DomainEvent, w.MaxTimestamp()); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		name string
		d    uint8
		set  bool
	}{
		{timerGC, graph.DomainEvent, op.strat.AllowedLateness > 0},
		{timerPT, graph.DomainProcessing, op.hasDelay},
	} {
		if !t.set || t.name == fired {
			continue
		}
		if err := sa.ClearTimer(t.name, t.d); err != nil {
			return err
		}
	}
	// The window's cells are known: no scan for them.
	if err := sa.Delete(cellTrigger, nil); err != nil {
		return err
	}
	if op.inline {
		if !op.legacy {
			return nil
		}
		op.legacy = false
		return sa.Delete(cellAcc, nil)
	}
	if op.combine != nil {
		if err := sa.Delete(cellAcc, nil); err != nil {
			return err
		}
	} else if err := sa.Clear(cellBag); err != nil {
		return err
	}
	if op.merging == nil {
		return nil
	}
	active, err := op.loadActive()
	if err != nil {
		return err
	}
	kept := active[:0]
	for _, a := range active {
		if a != w {
			kept = append(kept, a)
		}
	}
	err = op.storeActive(kept)
	sa.window = w
	return err
}

// mergeWindow adds the new window nw of the current key to its active
// windows, merges what the window function says, moves the data, trigger
// state and timers of merged windows into the result, and returns the window
// that now holds nw. On return the state access points at that window.
func (op *windowOp) mergeWindow(kg state.KeyGroup, key []byte, nw windowing.Window) (windowing.Window, error) {
	sa := &op.env.sa
	active, err := op.loadActive()
	if err != nil {
		return nw, err
	}
	for _, a := range active {
		if a == nw {
			sa.set(kg, key, nw)
			return nw, nil
		}
	}
	active = append(active, nw)
	result := nw
	for _, m := range op.merging.MergeWindows(active) {
		var states []windowing.TriggerState
		var acc any
		var bag [][]byte
		for _, from := range m.From {
			if from == nw {
				continue // new: no state yet
			}
			sa.set(kg, key, from)
			ts, ok, err := op.loadTrigger()
			if err != nil {
				return nw, err
			}
			if ok {
				states = append(states, ts)
			}
			if from == m.To {
				continue // keeps its data
			}
			if op.combine != nil {
				a, err := op.loadAcc()
				if err != nil {
					return nw, err
				}
				if acc == nil {
					acc = a
				} else {
					acc = op.combine.Merge(acc, a)
				}
			} else {
				err := sa.Scan(cellBag, func(_, v []byte) error {
					bag = append(bag, append([]byte(nil), v...))
					return nil
				})
				if err != nil {
					return nw, err
				}
			}
			if err := op.gc(from, ""); err != nil {
				return nw, err
			}
		}
		sa.set(kg, key, m.To)
		if acc != nil {
			cur, err := op.loadAcc()
			if err != nil {
				return nw, err
			}
			if err := op.storeAcc(op.combine.Merge(cur, acc)); err != nil {
				return nw, err
			}
		}
		for _, v := range bag {
			seq, _ := sa.NextSeq(cellBag)
			if err := sa.Set(cellBag, seq, v); err != nil {
				return nw, err
			}
		}
		if len(states) > 0 {
			merged := op.trig.MergeStates(states, m.To, op.env.inputWM)
			if err := op.storeTrigger(&merged); err != nil {
				return nw, err
			}
			if err := sa.setFixedTimer(timerEOW, graph.DomainEvent, m.To.MaxTimestamp(), false); err != nil {
				return nw, err
			}
			if merged.Deadline != 0 {
				if err := sa.SetTimer(timerPT, graph.DomainProcessing, merged.Deadline); err != nil {
					return nw, err
				}
			}
		}
		// Replace the merged windows by the result in the active set.
		active, err = op.loadActive() // gc above removed merged windows
		if err != nil {
			return nw, err
		}
		if !containsWindow(active, m.To) {
			active = append(active, m.To)
		}
		for _, from := range m.From {
			if from == nw {
				result = m.To
			}
		}
		if err := op.storeActive(active); err != nil {
			return nw, err
		}
	}
	if result == nw {
		active, err := op.loadActive()
		if err != nil {
			return nw, err
		}
		if !containsWindow(active, nw) {
			if err := op.storeActive(append(active, nw)); err != nil {
				return nw, err
			}
		}
	}
	sa.set(kg, key, result)
	return result, nil
}

func containsWindow(ws []windowing.Window, w windowing.Window) bool {
	for _, x := range ws {
		if x == w {
			return true
		}
	}
	return false
}

// loadActive reads the active windows of the current key (kept in the
// global window's namespace). The state access's window is restored.
func (op *windowOp) loadActive() ([]windowing.Window, error) {
	sa := &op.env.sa
	w := sa.window
	sa.window = windowing.GlobalWindow
	b, _, err := sa.Get(cellWindows, nil)
	sa.window = w
	if err != nil {
		return nil, err
	}
	ws := make([]windowing.Window, 0, len(b)/16+1)
	for ; len(b) >= 16; b = b[16:] {
		ws = append(ws, windowing.Window{
			Start: windowing.Time(binary.BigEndian.Uint64(b)),
			End:   windowing.Time(binary.BigEndian.Uint64(b[8:])),
		})
	}
	return ws, nil
}

func (op *windowOp) storeActive(ws []windowing.Window) error {
	sa := &op.env.sa
	w := sa.window
	sa.window = windowing.GlobalWindow
	defer func() { sa.window = w }()
	if len(ws) == 0 {
		return sa.Delete(cellWindows, nil)
	}
	b := make([]byte, 0, 16*len(ws))
	for _, x := range ws {
		b = binary.BigEndian.AppendUint64(b, uint64(x.Start))
		b = binary.BigEndian.AppendUint64(b, uint64(x.End))
	}
	return sa.Set(cellWindows, nil, b)
}

func (op *windowOp) loadTrigger() (windowing.TriggerState, bool, error) {
	var ts windowing.TriggerState
	op.acc, op.legacy = nil, false
	b, ok, err := op.env.sa.view(cellTrigger, nil)
	op.fresh = err == nil && !ok
	if err != nil || !ok {
		return ts, false, err
	}
	switch {
	case len(b) == 25 && op.inline:
		// Stored before accumulators were inlined: it is in its own
		// cell, deleted when this window is next stored or collected.
		if op.acc, err = op.loadAcc(); err != nil {
			return ts, false, err
		}
		op.legacy = true
	case len(b) > 25 && b[25] == inlineMark && op.inline:
		if op.acc, err = op.combine.AccCoder.Decode(b[26:]); err != nil {
			return ts, false, fmt.Errorf("engine: %s: decoding accumulator: %w", op.node, err)
		}
	case len(b) != 25:
		return ts, false, fmt.Errorf("engine: %s: corrupt trigger state (%d bytes)", op.node, len(b))
	}
	ts.Count = int64(binary.BigEndian.Uint64(b))
	ts.Deadline = windowing.Time(binary.BigEndian.Uint64(b[8:]))
	ts.Panes = int64(binary.BigEndian.Uint64(b[16:]))
	ts.OnTimeFired = b[24] == 1
	return ts, true, nil
}

// triggerCell returns the value of the trigger-state cell of ts: the
// trigger state, then (a combine's) the accumulator op.acc. It aliases
// the operator's buffers, until the next call.
func (op *windowOp) triggerCell(ts *windowing.TriggerState) ([]byte, error) {
	b := op.tbuf[:]
	clear(b)
	binary.BigEndian.PutUint64(b, uint64(ts.Count))
	binary.BigEndian.PutUint64(b[8:], uint64(ts.Deadline))
	binary.BigEndian.PutUint64(b[16:], uint64(ts.Panes))
	if ts.OnTimeFired {
		b[24] = 1
	}
	if !op.inline {
		return b, nil
	}
	v := append(append(op.buf[:0], b...), inlineMark)
	v, err := op.combine.AccCoder.Append(v, op.acc)
	if err != nil {
		return nil, fmt.Errorf("engine: %s: encoding accumulator: %w", op.node, err)
	}
	op.buf = v
	return v, nil
}

func (op *windowOp) storeTrigger(ts *windowing.TriggerState) error {
	v, err := op.triggerCell(ts)
	if err != nil {
		return err
	}
	sa := &op.env.sa
	if !op.inline {
		return sa.Set(cellTrigger, nil, v)
	}
	if op.fresh {
		// Neither the cache nor the backend held the window: a window
		// collected before the cache writes back never reaches it.
		op.fresh = false
		return sa.setNew(cellTrigger, nil, v)
	}
	if err := sa.Set(cellTrigger, nil, v); err != nil {
		return err
	}
	if op.legacy {
		op.legacy = false
		return sa.Delete(cellAcc, nil)
	}
	return nil
}
