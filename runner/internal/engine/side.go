package engine

import (
	"fmt"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/windowing"
)

// runSide runs a ParDo with side inputs. Main elements arrive round-robin,
// side elements are broadcast to every instance. A main element waits until
// every side input is complete for the side window it maps to (the side
// input's watermark has passed that window's end), then is processed with
// the materialized views. Waiting elements hold the output watermark at
// their timestamps. They wait in memory: side inputs suit small, slowly
// changing data; large tables belong in keyed state (a CoGroupByKey or a
// stateful join). With checkpoints, each instance aligns on the barriers of
// all its inputs and writes its buffers to the backend (sidestate.go).
func (in *instance) runSide() (err error) {
	x, st := in.x, in.st
	n := st.head
	cfg := x.cfg
	in.now = in.procTime()
	senders := make([]int, len(st.ports))
	for i, p := range st.ports {
		senders[i] = p.senders
	}
	// All ports share the inbox.
	ins := newInputs(st.ports[0].inboxes[in.idx], senders, &in.now)
	sides := n.Sides
	type viewKey struct {
		side int
		win  windowing.Window
	}
	sideData := make([]map[windowing.Window][]any, len(sides))
	for i := range sideData {
		sideData[i] = map[windowing.Window][]any{}
	}
	views := map[viewKey]any{}
	sideWindow := func(i int, main windowing.Window) windowing.Window {
		s := sides[i].PCol.Strategy
		if windowing.IsGlobal(s.Fn) {
			return windowing.GlobalWindow
		}
		ws := s.Fn.AssignWindows(main.MaxTimestamp(), nil)
		return ws[0]
	}
	fn := n.DoFn.New()
	ex := &graph.ExecCtx{Ctx: x.ctx, Transform: n.Name}
	ex.Side = func(s *graph.SideInput) (any, error) {
		for i, si := range sides {
			if si != s {
				continue
			}
			k := viewKey{i, sideWindow(i, ex.Window)}
			if v, ok := views[k]; ok {
				return v, nil
			}
			v, err := s.Materialize(sideData[i][k.win])
			if err != nil {
				return nil, err
			}
			views[k] = v
			return v, nil
		}
		return nil, fmt.Errorf("engine: %s: side input not declared on this ParDo", n)
	}
	outs := make([]graph.Emit, len(n.Outputs))
	for i, o := range n.Outputs {
		outs[i] = in.emitterFor(o)
	}
	in.callUser(n, func() error { return userErr(n, fn.Setup(ex)) })
	in.teardowns = append(in.teardowns, fn.Teardown)

	ready := func(e graph.Elem) bool {
		for i := range sides {
			if ins.watermark(i+1) <= sideWindow(i, e.Window).MaxTimestamp() {
				return false
			}
		}
		return true
	}
	process := func(e graph.Elem) error {
		ex.Time, ex.Window, ex.Pane = e.Time, e.Window, e.Pane
		ex.InputWatermark, ex.Now = ins.watermark(0), in.now
		in.callUser(n, func() error { return userErr(n, fn.Process(ex, e, outs)) })
		return nil
	}
	finishBundle := func() {
		in.callUser(n, func() error { return userErr(n, fn.FinishBundle(ex, outs)) })
		in.finishBundle()
	}
	var pending []graph.Elem
	// outputWM is the main input's watermark, held at the waiting
	// elements' timestamps.
	outputWM := func() windowing.Time {
		wm := ins.watermark(0)
		for _, e := range pending {
			wm = windowing.MinOf(wm, e.Time)
		}
		return wm
	}
	op, codec := opID(n.Name), newSideCodec(n)
	if x.coord != nil && st.sideSnaps != nil {
		// Read before any instance ran (plan.restore); this instance's
		// alone from now on.
		snap := st.sideSnaps[in.idx]
		st.sideSnaps[in.idx] = nil
		if snap != nil {
			pending, sideData = snap.pending, snap.data
			for i := range st.ports {
				if i < len(snap.wms) && snap.wms[i] > windowing.MinTime {
					ins.restore(i, snap.wms[i])
				}
			}
			// Downstream, and the transforms fused after this one, must
			// have the restored watermark before any element, as after a
			// keyed instance's restore: data late before the restart
			// stays late.
			if wm := outputWM(); wm > windowing.MinTime {
				in.forwardWatermark(wm)
			}
		}
	}
	release := func() error {
		kept := pending[:0]
		for _, e := range pending {
			if ready(e) {
				if err := process(e); err != nil {
					return err
				}
				continue
			}
			kept = append(kept, e)
		}
		clear(pending[len(kept):])
		pending = kept
		finishBundle()
		in.forwardWatermark(outputWM())
		// Forget side windows no main element can map to any more.
		mainWM := ins.watermark(0)
		for i := range sideData {
			for w := range sideData[i] {
				if !w.IsGlobal() && n.Inputs[0].Strategy.GCTime(w) < mainWM && ins.watermark(i+1) > w.MaxTimestamp() {
					delete(sideData[i], w)
					delete(views, viewKey{i, w})
				}
			}
		}
		return nil
	}
	coord, who := x.coord, st.who+in.idx
	if coord != nil {
		defer func() { coord.retire(who, nil, err, recover()) }()
	}
	checkpoints := 0
	// aligned writes the buffers as of the barrier, forwards it and pauses
	// until the checkpoint is complete.
	aligned := func(id int64, final bool) error {
		finishBundle()
		if cfg.Backend != nil {
			snap := &sideSnapshot{pending: pending, data: sideData}
			for i := range st.ports {
				snap.wms = append(snap.wms, ins.watermark(i))
			}
			if err := saveSide(cfg.Backend, op, in.idx, codec, snap); err != nil {
				return fmt.Errorf("engine: %s: checkpointing its side-input buffers: %w", n, err)
			}
			if checkpoints == 0 && in.idx == 0 {
				if err := dropStaleSide(cfg.Backend, op, st.instances); err != nil {
					return err
				}
			}
		}
		checkpoints++
		in.forwardBarrier(id, final)
		coord.ack(who, id, nil, true)
		return nil
	}
	err = ins.run(x.ctx, in.tickInterval(), inputHandlers{
		data: func(port int, elems []shuffled) error {
			if port == 0 {
				for _, s := range elems {
					if len(pending) == 0 && ready(s.e) {
						if err := process(s.e); err != nil {
							return err
						}
					} else {
						pending = append(pending, s.e)
					}
				}
				// The main input's batches are round-robin, each one
				// the receiver's alone; side inputs' are broadcast.
				x.freeBatch(elems)
				finishBundle()
				return nil
			}
			for _, s := range elems {
				i := port - 1
				sideData[i][s.e.Window] = append(sideData[i][s.e.Window], s.e.Value)
				delete(views, viewKey{i, s.e.Window})
			}
			return nil
		},
		watermark: func(int) error { return release() },
		// Idle only once nothing waits: a waiting element holds the
		// output watermark.
		idle: func(port int) error {
			if port == 0 && len(pending) == 0 {
				in.markIdle()
			}
			return nil
		},
		aligned: aligned,
		tick: func() error {
			in.now = in.procTime()
			finishBundle()
			in.flush()
			return nil
		},
	})
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		complete := true
		for i := range st.ports {
			complete = complete && ins.watermark(i) >= windowing.MaxTime
		}
		if complete {
			// Every input ended and some main elements were never ready:
			// an engine bug, never a silent loss.
			return fmt.Errorf("engine: %s: %d main-input elements never saw their side inputs complete", n, len(pending))
		}
		cfg.Logger.Warn("stopped with main-input elements still waiting for side inputs", "transform", n.Name, "waiting", len(pending))
	}
	in.finish()
	return nil
}
