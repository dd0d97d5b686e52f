package engine

import (
	"fmt"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// statefulOp runs a stateful DoFn: the DoFn's state cells and timers live in
// the backend per key and window. In a non-global window the state is
// garbage collected when the watermark passes the window's end plus the
// allowed lateness (timer "__gc"); late elements for expired windows are
// dropped and counted.
type statefulOp struct {
	env   *keyedEnv
	node  *graph.Node
	strat windowing.Strategy
	kv    *graph.KVInfo
	fn    graph.DoFn
	x     *graph.ExecCtx
	outs  []graph.Emit
	late  interface{ Add(int64) int64 }
}

const timerStateGC = "__gc"

func newStatefulOp(env *keyedEnv, n *graph.Node) (*statefulOp, error) {
	in := n.Inputs[0]
	op := &statefulOp{env: env, node: n, strat: in.Strategy, kv: in.KV, fn: n.DoFn.New(),
		late: env.in.x.cfg.Metrics.Late(n.Name)}
	op.x = &graph.ExecCtx{Ctx: env.in.x.ctx, Transform: n.Name, State: &env.sa}
	for _, o := range n.Outputs {
		op.outs = append(op.outs, env.in.emitterFor(o))
	}
	if err := op.fn.Setup(op.x); err != nil {
		return nil, fmt.Errorf("%w: %s: setup: %w", ErrUserCode, n, err)
	}
	env.in.teardowns = append(env.in.teardowns, op.fn.Teardown)
	return op, nil
}

func (op *statefulOp) process(s *shuffled) error {
	env := op.env
	w := s.e.Window
	if !w.IsGlobal() && op.strat.IsLate(w, env.inputWM) {
		k := op.late.Add(1)
		if k <= 10 || k%10000 == 0 {
			env.in.x.cfg.Logger.Warn("late data dropped at a stateful ParDo", "transform", op.node.Name, "window", w, "watermark", env.inputWM, "count", k)
		}
		return nil
	}
	env.sa.set(s.kg, s.keyBytes, w)
	if !w.IsGlobal() {
		// One past the garbage-collection time, as Beam does, so that the
		// DoFn's own timers at the window's end fire before its state goes.
		gcAt := windowing.MinOf(op.strat.GCTime(w)+1, windowing.MaxTime-1)
		if err := env.sa.SetTimer(timerStateGC, graph.DomainEvent, gcAt); err != nil {
			return err
		}
	}
	x := op.x
	x.Key, x.Time, x.Window, x.Pane, x.Timer = s.key, s.e.Time, w, s.e.Pane, nil
	x.InputWatermark, x.Now = env.inputWM, env.in.now
	return userErr(op.node, op.fn.Process(x, s.e, op.outs))
}

func (op *statefulOp) onTimer(t state.Timer) error {
	env := op.env
	env.sa.set(t.KG, t.Key, t.Window)
	if t.Name == timerStateGC {
		for _, ts := range op.node.DoFn.Timers {
			if err := env.sa.ClearTimer(ts.Name, ts.Domain); err != nil {
				return err
			}
		}
		return env.sa.clearWindow()
	}
	key, err := op.kv.KeyCoder.Decode(t.Key)
	if err != nil {
		return fmt.Errorf("engine: %s: decoding key: %w", op.node, err)
	}
	x := op.x
	x.Key, x.Window, x.Pane = key, t.Window, windowing.NoFiring
	x.InputWatermark, x.Now = env.inputWM, env.in.now
	x.Time = t.Time
	if t.Domain == state.ProcessingTime {
		// Output of a processing-time timer is stamped with the input
		// watermark, kept inside the window.
		x.Time = windowing.MaxOf(t.Window.Start, windowing.MinOf(env.inputWM, t.Window.MaxTimestamp()))
	}
	x.Timer = &graph.FiredTimer{Name: t.Name, Domain: uint8(t.Domain), Time: t.Time}
	if err := op.fn.OnTimer(x, op.outs); err != nil {
		return fmt.Errorf("%w: %s: timer %q: %w", ErrUserCode, op.node, t.Name, err)
	}
	return nil
}

func (op *statefulOp) finishBundle() error {
	return userErr(op.node, op.fn.FinishBundle(op.x, op.outs))
}

func (op *statefulOp) beforeCheckpoint() error { return nil }

func (op *statefulOp) pending() *pendingPanes { return nil }
