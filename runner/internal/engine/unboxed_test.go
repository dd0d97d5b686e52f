package engine

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// wide is a struct too big to box without an allocation.
type wide struct {
	A, B, C int64
	S       string
}

type spread struct{}

func (spread) ProcessElement(_ *sdk.Context, n int64, emit sdk.Emitter[wide]) error {
	emit.Emit(wide{A: n, B: 2 * n, C: 3 * n, S: "x"})
	return nil
}

// chainInstance compiles the fused chain that starts at the first ParDo
// of p into an instance whose final outputs go to out.
func chainInstance(t *testing.T, p *sdk.Pipeline, out graph.Emit) graph.Emit {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	var head *graph.Node
	for _, n := range p.Graph().Nodes {
		if n.Kind == graph.KindParDo && head == nil {
			head = n
		}
	}
	cfg := &Config{Backend: state.NewMem(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.ensureDefaults()
	ctx, cancel := context.WithCancelCause(context.Background())
	t.Cleanup(func() { cancel(nil) })
	x := &executor{cfg: cfg, ctx: ctx, cancel: cancel, plan: &plan{ports: map[portKey]*port{}, senderBase: map[senderKey]int{}}}
	in := newInstance(x, &stage{name: head.Name, kind: stageSource, head: head, instances: 1}, 0)
	in.capture = func(*graph.PCol) graph.Emit { return out }
	return in.compile(head)
}

// A ParDo, Filter, Map and KeyBy fused one after another hand their
// elements on unboxed: the chain boxes once, at its end, where each of
// them used to box its output.
func TestFusedChainBoxesOnce(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	p := sdk.NewPipeline()
	wides := sdk.ParDo(sdk.Read[int64](p, "in"), spread{}, sdk.Named("Spread"))
	odd := sdk.Filter(wides, func(w wide) bool { return w.A%2 == 1 }, sdk.Named("Odd"))
	bumped := sdk.Map(odd, func(w wide) wide { w.C++; return w }, sdk.Named("Bump"))
	keyed := sdk.KeyBy(bumped, func(w wide) int64 { return w.B }, sdk.Named("ByB"))
	sdk.Map(keyed, func(kv sdk.KV[int64, wide]) wide { return kv.Value }, sdk.Named("Unkey"))

	var got []string
	collect := func(e graph.Elem) { got = append(got, fmt.Sprint(e.Value, " ", int64(e.Time))) }
	run := chainInstance(t, p, collect)
	for i := range int64(4) {
		run(graph.Elem{Value: i, Time: windowing.Time(100 + i), Window: windowing.GlobalWindow})
	}
	if s := strings.Join(got, ";"); s != "{1 2 4 x} 101;{3 6 10 x} 103" {
		t.Fatalf("got %s", s)
	}

	var sink graph.Emit = func(graph.Elem) {}
	run = chainInstance(t, p, func(e graph.Elem) { sink(e) })
	in := graph.Elem{Value: any(int64(1)), Window: windowing.GlobalWindow}
	if n := testing.AllocsPerRun(1000, func() { run(in) }); n > 1 {
		t.Errorf("%v allocations per element through the chain, want 1 (the box at its end)", n)
	}
}

// A Map whose output has its input's type, reached boxed, passes an
// element it returns unchanged on in the box it came in; a changed one is
// boxed anew.
func TestMapReturningItsInputKeepsItsBox(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	p := sdk.NewPipeline()
	sdk.Map(sdk.Read[wide](p, "in"), func(w wide) wide {
		if w.A%2 == 1 {
			w.C++
		}
		return w
	}, sdk.Named("BumpOdd"))
	var got []any
	run := chainInstance(t, p, func(e graph.Elem) { got = append(got, e.Value) })
	same := graph.Elem{Value: any(wide{A: 2, S: "x"})}
	changed := graph.Elem{Value: any(wide{A: 1, S: "x"})}
	run(same)
	run(changed)
	if got[0] != same.Value || got[1] != any(wide{A: 1, C: 1, S: "x"}) {
		t.Fatalf("got %v", got)
	}
	got = got[:0]
	if n := testing.AllocsPerRun(100, func() { run(same); got = got[:0] }); n != 0 {
		t.Errorf("%v allocations for an element returned unchanged, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { run(changed); got = got[:0] }); n != 1 {
		t.Errorf("%v allocations for a changed element, want 1", n)
	}
}
