package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// TestLiftedHeldUntilWatermark: a watermark sends the lifted accumulators
// of the windows it closes and keeps the others, unless the trigger fires
// before the watermark, when it sends them all (a running count on the
// global window must not wait for the end of the input).
func TestLiftedHeldUntilWatermark(t *testing.T) {
	early := windowing.DefaultStrategy()
	early.Trigger = windowing.Repeatedly(windowing.Firing{Count: 1})
	for _, c := range []struct {
		name     string
		strategy windowing.Strategy
		want     int // accumulators sent by the watermark at 15
	}{
		{"at-watermark", windowing.DefaultStrategy(), 1},
		{"repeatedly", early, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := &Config{Backend: state.NewMem(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			cfg.ensureDefaults()
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			x := &executor{cfg: cfg, ctx: ctx, cancel: cancel, plan: &plan{ports: map[portKey]*port{}, senderBase: map[senderKey]int{}}}
			st := &stage{name: "src", kind: stageSource, instances: 1}
			in := newInstance(x, st, 0)
			in.outWM = windowing.MinTime
			node := &graph.Node{Name: "Sum", Inputs: []*graph.PCol{{Strategy: c.strategy}}}
			combine := &graph.CombineSpec{
				Create: func() any { return 0 },
				Add:    func(acc, v any) any { return acc.(int) + v.(int) },
				AddKV:  func(acc, kv any) any { return acc.(int) + kv.([2]int)[1] },
			}
			kv := &graph.KVInfo{Key: func(x any) any { return x.([2]int)[0] }}
			p := &port{name: "Sum", route: routeKeyGroup, inboxes: []chan msg{make(chan msg, 16)}, combine: combine, node: node}
			x.plan.senderBase[senderKey{st, p}] = 0
			w := in.writer(p)
			for i, win := range []windowing.Window{{Start: 0, End: 10}, {Start: 10, End: 20}, windowing.GlobalWindow} {
				kb := []byte{byte(i)}
				w.lift.add(kv, kb, state.KeyGroupOf(kb, cfg.KeyGroups), graph.Elem{Value: [2]int{i, 1}, Time: win.Start}, win)
			}
			in.forwardWatermark(15)
			var sent []shuffled
			for len(p.inboxes[0]) > 0 {
				if m := <-p.inboxes[0]; m.kind == msgData {
					sent = append(sent, m.elems...)
				}
			}
			if len(sent) != c.want {
				t.Fatalf("the watermark at 15 sent %d accumulators, want %d", len(sent), c.want)
			}
			if sent[0].e.Window != (windowing.Window{Start: 0, End: 10}) {
				t.Errorf("sent window %v first, want [0, 10)", sent[0].e.Window)
			}
			if held := w.lift.held(); held != 3-c.want {
				t.Errorf("%d accumulators held, want %d", held, 3-c.want)
			}
		})
	}
}

// Adding to a lifted accumulator allocates nothing once the key and window
// have one: the combine's accumulator is held unboxed.
func TestLiftedAddDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	n := maxNode()
	l := newLifter(n.Combine, windowing.DefaultStrategy())
	kv := n.Inputs[0].KV
	w := windowing.Window{Start: 0, End: 10}
	kb := []byte("k")
	e := graph.Elem{Value: any(sdk.KV[string, int64]{Key: "k", Value: 1000})}
	l.add(kv, kb, 0, e, w)
	if allocs := testing.AllocsPerRun(100, func() { l.add(kv, kb, 0, e, w) }); allocs != 0 {
		t.Errorf("%v allocations per add, want 0", allocs)
	}
	out := l.drain()
	if len(out) != 1 || out[0].e.Value != any(maxAcc{Max: 1000, N: 102}) || out[0].n != 102 {
		t.Errorf("drained %+v, want one accumulator {1000 102} of 102 inputs (AllocsPerRun adds a warm-up run)", out)
	}
}

// maxNode returns the node of a CombinePerKey of maxFn over string keys.
func maxNode() *graph.Node {
	p := sdk.NewPipeline()
	sdk.CombinePerKey(sdk.Read[sdk.KV[string, int64]](p, "in"), maxFn{}, sdk.Named("Max"))
	for _, x := range p.Graph().Nodes {
		if x.Kind == graph.KindCombinePerKey {
			return x
		}
	}
	return nil
}

type maxAcc struct{ Max, N int64 }

type maxFn struct{}

func (maxFn) CreateAccumulator() maxAcc { return maxAcc{} }
func (maxFn) AddInput(a maxAcc, v int64) maxAcc {
	return maxAcc{Max: max(a.Max, v), N: a.N + 1}
}
func (maxFn) MergeAccumulators(a, b maxAcc) maxAcc {
	return maxAcc{Max: max(a.Max, b.Max), N: a.N + b.N}
}
func (maxFn) ExtractOutput(a maxAcc) int64 { return a.Max }

// Under session windows the lifter merges a key's windows, and their
// accumulators, as the grouping downstream will.
func TestLiftedSessionsMerge(t *testing.T) {
	n := maxNode()
	strategy := windowing.DefaultStrategy()
	strategy.Fn = windowing.Sessions(10 * time.Millisecond)
	l := newLifter(n.Combine, strategy)
	kv := n.Inputs[0].KV
	for _, x := range []struct {
		key string
		at  windowing.Time
		v   int64
	}{{"k", 0, 1}, {"k", 5, 7}, {"j", 6, 5}, {"k", 30, 2}, {"k", 14, 3}} {
		e := graph.Elem{Value: any(sdk.KV[string, int64]{Key: x.key, Value: x.v}), Time: x.at}
		l.add(kv, []byte(x.key), 0, e, windowing.Window{Start: x.at, End: x.at + 10})
	}
	if l.held() != 3 {
		t.Errorf("%d accumulators held, want 3", l.held())
	}
	var got []string
	for _, s := range l.drain() {
		got = append(got, fmt.Sprintf("%v %v %v n=%d t=%d", s.key, s.e.Window, s.e.Value, s.n, s.e.Time))
	}
	slices.Sort(got)
	want := []string{
		fmt.Sprintf("j %v {5 1} n=1 t=6", windowing.Window{Start: 6, End: 16}),
		fmt.Sprintf("k %v {7 3} n=3 t=0", windowing.Window{Start: 0, End: 24}),
		fmt.Sprintf("k %v {2 1} n=1 t=30", windowing.Window{Start: 30, End: 40}),
	}
	if !slices.Equal(got, want) {
		t.Errorf("drained\\n%s\\nwant\\n%s", strings.Join(got, "\\n"), strings.Join(want, "\\n"))
	}
}
