package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// TestWindowOp drives a GroupByKey through the scenarios in testdata/windowop:
// elements, watermarks and processing time in a given order, and prints the
// panes it fires and the data it drops as late.
//
// Commands:
//
//	strategy fn=fixed:10m|sliding:10m/5m|sessions:5m|global [early=count:N|delay:D] [late=count:N|delay:D] [repeat=count:N] [lateness=D] [accumulating]
//	elements        one "KEY TIME" per line; the value printed is KEY@TIME
//	watermark TIME  the input watermark advances to TIME; due event-time timers fire
//	proctime TIME   processing time advances to TIME; due processing-time timers fire
//	checkpoint      what a checkpoint's barrier does: windows kept in memory go to the state
//
// Times are durations since the epoch ("1m30s"); "+inf" is the end of time.
//
// Each file runs twice, on a GroupByKey and on a CombinePerKey whose
// accumulator collects the values (the combine keeps its accumulator with
// the trigger state when the windows do not merge): the panes are the
// same.
func TestWindowOp(t *testing.T) {
	for _, combine := range []bool{false, true} {
		name := "GroupByKey"
		if combine {
			name = "CombinePerKey"
		}
		t.Run(name, func(t *testing.T) { testWindowOp(t, combine) })
	}
}

func testWindowOp(t *testing.T, combine bool) {
	datadriven.Walk(t, "testdata/windowop", func(t *testing.T, path string) {
		var h *opHarness
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "strategy":
				h = newOpHarness(t, d, combine)
				return ""
			case "elements":
				for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
					f := strings.Fields(line)
					if len(f) != 2 {
						d.Fatalf(t, "want KEY TIME, got %q", line)
					}
					h.element(t, f[0], parseTime(t, f[1]))
				}
			case "watermark":
				h.watermark(t, parseTime(t, d.CmdArgs[0].Key))
			case "proctime":
				h.proctime(t, parseTime(t, d.CmdArgs[0].Key))
			case "checkpoint":
				// What a checkpoint's barrier does to the operator; the
				// cache then writes back.
				if err := h.op.beforeCheckpoint(); err != nil {
					t.Fatal(err)
				}
				if err := h.env.backend.WriteBack(); err != nil {
					t.Fatal(err)
				}
			default:
				d.Fatalf(t, "unknown command %q", d.Cmd)
			}
			return h.flush()
		})
	})
}

type opHarness struct {
	env  *keyedEnv
	op   *windowOp
	fn   windowing.WindowFn
	out  []string
	late int64
	x    *executor
	node *graph.Node
}

// collect is a combine whose accumulator is its values.
type collect struct{}

func (collect) CreateAccumulator() []string              { return nil }
func (collect) AddInput(acc []string, v string) []string { return append(acc, v) }
func (collect) MergeAccumulators(a, b []string) []string { return append(a, b...) }
func (collect) ExtractOutput(acc []string) []string      { return acc }

func newOpHarness(t testing.TB, d *datadriven.TestData, combine bool) *opHarness {
	return newOpHarnessOn(t, d, combine, state.NewMem())
}

// newOpHarnessOn is newOpHarness over the given backend.
func newOpHarnessOn(t testing.TB, d *datadriven.TestData, combine bool, backend state.Backend) *opHarness {
	var fn windowing.WindowFn = windowing.Global()
	var opts []sdk.Option
	trig := windowing.AtWatermark()
	var early, late, repeat *windowing.Firing
	for _, a := range d.CmdArgs {
		v := ""
		if len(a.Vals) > 0 {
			v = a.Vals[0]
		}
		switch a.Key {
		case "fn":
			kind, arg, _ := strings.Cut(v, ":")
			switch kind {
			case "fixed":
				fn = windowing.Fixed(parseDur(t, arg))
			case "sliding":
				size, period, _ := strings.Cut(arg, "/")
				fn = windowing.Sliding(parseDur(t, size), parseDur(t, period))
			case "sessions":
				fn = windowing.Sessions(parseDur(t, arg))
			case "global":
			default:
				t.Fatalf("unknown window function %q", v)
			}
		case "early":
			f := parseFiring(t, v)
			early = &f
		case "late":
			f := parseFiring(t, v)
			late = &f
		case "repeat":
			f := parseFiring(t, v)
			repeat = &f
		case "lateness":
			opts = append(opts, sdk.AllowedLateness(parseDur(t, v)))
		case "accumulating":
			opts = append(opts, sdk.Accumulating())
		default:
			t.Fatalf("unknown argument %q", a.Key)
		}
	}
	if repeat != nil {
		trig = windowing.Repeatedly(*repeat)
	}
	if early != nil {
		trig = trig.WithEarlyFirings(*early)
	}
	if late != nil {
		trig = trig.WithLateFirings(*late)
	}
	opts = append(opts, sdk.Trigger(trig))
	p := sdk.NewPipeline()
	in := sdk.Read[sdk.KV[string, string]](p, "in")
	kind := graph.KindGroupByKey
	if combine {
		sdk.CombinePerKey(sdk.WindowInto(in, fn, opts...), sdk.CombineFn[string, []string, []string](collect{}))
		kind = graph.KindCombinePerKey
	} else {
		sdk.GroupByKey(sdk.WindowInto(in, fn, opts...))
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	var node *graph.Node
	for _, n := range p.Graph().Nodes {
		if n.Kind == kind {
			node = n
		}
	}
	cfg := &Config{Backend: backend, Bounded: false, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.ensureDefaults()
	ctx, cancel := context.WithCancelCause(context.Background())
	t.Cleanup(func() { cancel(nil) })
	x := &executor{cfg: cfg, ctx: ctx, cancel: cancel, plan: &plan{ports: map[portKey]*port{}, senderBase: map[senderKey]int{}}}
	st := &stage{name: node.Name, kind: stageKeyed, head: node, instances: 1}
	inst := newInstance(x, st, 0)
	h := &opHarness{fn: fn, x: x, node: node}
	inst.capture = func(*graph.PCol) graph.Emit {
		return func(e graph.Elem) {
			kv := e.Value.(sdk.KV[string, []string])
			vals := append([]string(nil), kv.Value...)
			sort.Strings(vals)
			h.out = append(h.out, fmt.Sprintf("pane %s %s %s at=%s: [%s]", kv.Key, fmtWindow(e.Window), e.Pane, fmtTime(e.Time), strings.Join(vals, " ")))
		}
	}
	env, err := newKeyedEnv(inst, node.Name)
	if err != nil {
		t.Fatal(err)
	}
	op, err := newWindowOp(env, node)
	if err != nil {
		t.Fatal(err)
	}
	h.env, h.op = env, op
	return h
}

func (h *opHarness) element(t testing.TB, key string, ts windowing.Time) {
	kb := []byte(key)
	kg := state.KeyGroupOf(kb, h.x.cfg.KeyGroups)
	for _, w := range h.fn.AssignWindows(ts, nil) {
		s := shuffled{e: graph.Elem{Value: sdk.KV[string, string]{Key: key, Value: key + "@" + fmtTime(ts)}, Time: ts, Window: w, Pane: windowing.NoFiring},
			key: key, keyBytes: kb, kg: kg, n: 1}
		if err := h.op.process(&s); err != nil {
			t.Fatal(err)
		}
	}
}

func (h *opHarness) watermark(t testing.TB, wm windowing.Time) {
	h.env.inputWM = wm
	if _, err := h.env.fire(state.EventTime, wm-1, h.op); err != nil {
		t.Fatal(err)
	}
}

func (h *opHarness) proctime(t testing.TB, now windowing.Time) {
	h.env.in.now = now
	if _, err := h.env.fire(state.ProcessingTime, now, h.op); err != nil {
		t.Fatal(err)
	}
}

func (h *opHarness) flush() string {
	var b strings.Builder
	for _, s := range h.out {
		b.WriteString(s + "\n")
	}
	h.out = nil
	if n := h.x.cfg.Metrics.Late(h.node.Name).Load(); n != h.late {
		fmt.Fprintf(&b, "dropped late: %d\n", n-h.late)
		h.late = n
	}
	return b.String()
}

func parseDur(t testing.TB, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func parseTime(t testing.TB, s string) windowing.Time {
	if s == "+inf" {
		return windowing.MaxTime
	}
	return windowing.FromDuration(parseDur(t, s))
}

func parseFiring(t testing.TB, s string) windowing.Firing {
	kind, arg, _ := strings.Cut(s, ":")
	switch kind {
	case "count":
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return windowing.AfterCount(n)
	case "delay":
		return windowing.AfterProcessingTime(parseDur(t, arg))
	}
	t.Fatalf("unknown firing %q", s)
	return windowing.Firing{}
}

func fmtTime(t windowing.Time) string {
	switch {
	case t >= windowing.MaxTime:
		return "+inf"
	case t == windowing.EndOfGlobalWindow:
		return "end-of-global"
	case t <= windowing.MinTime:
		return "-inf"
	}
	return (time.Duration(t) * time.Millisecond).String()
}

func fmtWindow(w windowing.Window) string {
	if w.IsGlobal() {
		return "[global]"
	}
	return "[" + fmtTime(w.Start) + "," + fmtTime(w.End) + ")"
}

func TestCacheBudget(t *testing.T) {
	stages := []*stage{{kind: stageSource, instances: 2}, {kind: stageKeyed, instances: 2}, {kind: stageKeyed, instances: 2}}
	if got := cacheBudget(stages, 0); got != state.DefaultCacheBytes {
		t.Errorf("no total: %d, want the default", got)
	}
	if got := cacheBudget(stages, 256<<20); got != 64<<20 {
		t.Errorf("256 MiB over 4 keyed instances: %d, want 64 MiB each", got)
	}
	if got := cacheBudget(stages, 2<<20); got != 1<<20 {
		t.Errorf("2 MiB over 4 keyed instances: %d, want the 1 MiB floor", got)
	}
}

// TestWindowOpReadsTwoCellState: a combine's window as a checkpoint taken
// before accumulators moved into the trigger-state cell kept it (trigger
// state in "t", accumulator in "a", an eow timer with an index) fires as
// before, and none of it is left afterwards.
func TestWindowOpReadsTwoCellState(t *testing.T) {
	h := newOpHarness(t, &datadriven.TestData{CmdArgs: []datadriven.CmdArg{{Key: "fn", Vals: []string{"fixed:1m"}}}}, true)
	w := windowing.Window{Start: 0, End: 60000}
	kb := []byte("k")
	kg := state.KeyGroupOf(kb, h.x.cfg.KeyGroups)
	mem := h.x.cfg.Backend
	sa := stateAccess{env: h.env, kg: kg, key: kb, window: w}
	var trig [25]byte
	binary.BigEndian.PutUint64(trig[:], 2) // two elements
	acc, err := h.op.combine.AccCoder.Append(nil, []string{"k@1s", "k@2s"})
	if err != nil {
		t.Fatal(err)
	}
	if err := mem.Set(bytes.Clone(sa.cellKey(cellTrigger, nil)), trig[:]); err != nil {
		t.Fatal(err)
	}
	if err := mem.Set(bytes.Clone(sa.cellKey(cellAcc, nil)), acc); err != nil {
		t.Fatal(err)
	}
	eow := state.Timer{Op: h.env.op, KG: kg, Domain: state.EventTime, Time: w.MaxTimestamp(), Key: kb, Window: w, Name: timerEOW}
	if err := state.SetTimer(mem, eow); err != nil {
		t.Fatal(err)
	}
	// A keyed instance opened on this state, as after a restore.
	env, err := newKeyedEnv(h.env.in, h.node.Name)
	if err != nil {
		t.Fatal(err)
	}
	op, err := newWindowOp(env, h.node)
	if err != nil {
		t.Fatal(err)
	}
	h.env, h.op = env, op
	h.element(t, "k", 3000) // one more, stored the new way
	h.watermark(t, 60000)
	if got, want := h.flush(), "pane k [0s,1m0s) on-time#0,first,last at=59.999s: [k@1s k@2s k@3s]\n"; got != want {
		t.Errorf("panes:\n%s\nwant:\n%s", got, want)
	}
	if err := env.backend.WriteBack(); err != nil {
		t.Fatal(err)
	}
	if n := mem.Metrics().Keys; n != 0 {
		t.Errorf("%d keys left of the fired window", n)
	}
}
