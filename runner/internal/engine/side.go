package engine

import (
	"context"
	"fmt"
	"time"

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
	mergers := make([]*windowing.Merger, len(st.ports))
	total := 0
	// base numbers the senders of all ports in one range, for the aligner.
	base := make([]int, len(st.ports))
	for i, p := range st.ports {
		mergers[i] = windowing.NewMerger(p.senders, 0, in.now)
		base[i] = total
		total += p.senders
	}
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
			if mergers[i+1].Current() <= sideWindow(i, e.Window).MaxTimestamp() {
				return false
			}
		}
		return true
	}
	process := func(e graph.Elem) error {
		ex.Time, ex.Window, ex.Pane = e.Time, e.Window, e.Pane
		ex.InputWatermark, ex.Now = mergers[0].Current(), in.now
		in.callUser(n, func() error { return userErr(n, fn.Process(ex, e, outs)) })
		return nil
	}
	finishBundle := func() {
		in.callUser(n, func() error { return userErr(n, fn.FinishBundle(ex, outs)) })
		in.finishBundle()
	}
	var pending []graph.Elem
	op, codec := opID(n.Name), newSideCodec(n)
	if x.coord != nil && cfg.Backend != nil {
		snap, err := restoreSide(cfg.Backend, op, in.idx, st.instances, codec)
		if err != nil {
			return fmt.Errorf("engine: %s: restoring its side-input buffers: %w", n, err)
		}
		if snap != nil {
			pending, sideData = snap.pending, snap.data
			for i, mg := range mergers {
				if i < len(snap.wms) && snap.wms[i] > windowing.MinTime {
					for s := 0; s < st.ports[i].senders; s++ {
						mg.Advance(s, snap.wms[i], in.now)
					}
				}
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
		wm := mergers[0].Current()
		for _, e := range pending {
			wm = windowing.MinOf(wm, e.Time)
		}
		in.forwardWatermark(wm)
		// Forget side windows no main element can map to any more.
		mainWM := mergers[0].Current()
		for i := range sideData {
			for w := range sideData[i] {
				if !w.IsGlobal() && n.Inputs[0].Strategy.GCTime(w) < mainWM && mergers[i+1].Current() > w.MaxTimestamp() {
					delete(sideData[i], w)
					delete(views, viewKey{i, w})
				}
			}
		}
		return nil
	}
	inbox := st.ports[0].inboxes[in.idx]
	var tick <-chan time.Time
	if !cfg.Bounded {
		t := time.NewTicker(cfg.TickInterval)
		defer t.Stop()
		tick = t.C
	}
	coord, who := x.coord, st.who+in.idx
	if coord != nil {
		defer func() { coord.retire(who, nil, err, recover()) }()
	}
	al := newAligner(total)
	checkpoints := 0
	// aligned writes the buffers as of the barrier, forwards it and pauses
	// until the checkpoint is complete.
	aligned := func(id int64, final bool) error {
		finishBundle()
		if cfg.Backend != nil {
			snap := &sideSnapshot{pending: pending, data: sideData}
			for _, mg := range mergers {
				snap.wms = append(snap.wms, mg.Current())
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
	eos := 0
	var replay []msg
	for eos < total {
		var m msg
		if len(replay) > 0 {
			m, replay = replay[0], replay[1:]
		} else {
			select {
			case m = <-inbox:
				m.sender += base[m.port] // one numbering for the aligner
			case <-tick:
				in.now = in.procTime()
				finishBundle()
				in.flush()
				continue
			case <-x.ctx.Done():
				return context.Cause(x.ctx)
			}
		}
		if al.hold(m) {
			continue
		}
		mg, sender := mergers[m.port], m.sender-base[m.port]
		switch m.kind {
		case msgBarrier:
			if al.barrier(m) {
				if err := aligned(al.id, al.final); err != nil {
					return err
				}
				replay = append(al.done(), replay...)
			}
			continue
		case msgData:
			mg.Active(sender, in.now)
			if m.port == 0 {
				for _, s := range m.elems {
					if len(pending) == 0 && ready(s.e) {
						if err := process(s.e); err != nil {
							return err
						}
					} else {
						pending = append(pending, s.e)
					}
				}
				finishBundle()
				continue
			}
			for _, s := range m.elems {
				i := m.port - 1
				sideData[i][s.e.Window] = append(sideData[i][s.e.Window], s.e.Value)
				delete(views, viewKey{i, s.e.Window})
			}
		case msgWatermark:
			if mg.Advance(sender, m.wm, in.now) {
				if err := release(); err != nil {
					return err
				}
			}
		case msgIdle:
			if mg.SetIdle(sender) {
				if err := release(); err != nil {
					return err
				}
			}
			if m.port == 0 && mg.AllIdle() && len(pending) == 0 {
				in.markIdle()
			}
		case msgEOS:
			eos++
			if al.end(m.sender) {
				if err := aligned(al.id, al.final); err != nil {
					return err
				}
				replay = append(al.done(), replay...)
			}
		}
	}
	if len(pending) > 0 {
		complete := true
		for _, mg := range mergers {
			complete = complete && mg.Current() >= windowing.MaxTime
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
