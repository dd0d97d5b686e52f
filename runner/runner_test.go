package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

var names atomic.Int64

// memIn makes a bounded in-memory source and returns its URI.
func memIn(values ...any) string {
	n := fmt.Sprintf("in-%d", names.Add(1))
	memory.NewBounded(n, values...)
	return "mem://" + n
}

// memOut makes an in-memory sink and returns its URI and collector.
func memOut() (string, *memory.Collector) {
	n := fmt.Sprintf("out-%d", names.Add(1))
	return "mem://" + n, memory.NewCollector(n)
}

// waitUntil polls cond until it holds. A condition that a minute does not
// bring about on a loaded machine is not coming: it fails the test, saying
// what it waited for.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
	}
}

func run(t *testing.T, p *sdk.Pipeline, bind map[string]string) *runner.Result {
	t.Helper()
	res, err := runner.Run(context.Background(), p, runner.Options{Bindings: bind, Progress: -1, Parallelism: 2, StateBackend: "memory"})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return res
}

type ev struct {
	Key string
	At  int64 // event time, ms
	V   int64
}

func at(e ev) (sdk.Time, error) { return sdk.Time(e.At), nil }

func sortedStrings(vs []any) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprint(v)
	}
	sort.Strings(out)
	return out
}

func TestCombiners(t *testing.T) {
	p := sdk.NewPipeline()
	in := sdk.Read[ev](p, "in", sdk.EventTime(at))
	kv := sdk.Map(sdk.WindowInto(in, windowing.Fixed(10*time.Millisecond)), func(e ev) sdk.KV[string, int64] {
		return sdk.KV[string, int64]{Key: e.Key, Value: e.V}
	})
	sdk.Write(sdk.Sum(kv), "sum")
	sdk.Write(sdk.Min(kv), "min")
	sdk.Write(sdk.Max(kv), "max")
	sdk.Write(sdk.Mean(kv), "mean")
	sdk.Write(sdk.Count(kv), "count")
	bind := map[string]string{"in": memIn(ev{"a", 1, 3}, ev{"a", 2, -1}, ev{"b", 3, 5}, ev{"a", 12, 7}, ev{"a", 5, 10})}
	cols := map[string]*memory.Collector{}
	for _, n := range []string{"sum", "min", "max", "mean", "count"} {
		bind[n], cols[n] = memOut()
	}
	run(t, p, bind)
	want := map[string]string{
		"sum":   "[{a 12} {a 7} {b 5}]",
		"min":   "[{a -1} {a 7} {b 5}]",
		"max":   "[{a 10} {a 7} {b 5}]",
		"mean":  "[{a 4} {a 7} {b 5}]",
		"count": "[{a 1} {a 3} {b 1}]",
	}
	for n, w := range want {
		if got := fmt.Sprint(sortedStrings(cols[n].Values())); got != w {
			t.Errorf("%s: got %s, want %s", n, got, w)
		}
	}
}

func TestCoGroupByKey(t *testing.T) {
	p := sdk.NewPipeline()
	a := sdk.KeyBy(sdk.Read[ev](p, "a", sdk.EventTime(at)), func(e ev) string { return e.Key })
	b := sdk.KeyBy(sdk.Read[ev](p, "b", sdk.EventTime(at)), func(e ev) string { return e.Key })
	joined := sdk.Map(sdk.CoGroupByKey2(a, b), func(kv sdk.KV[string, sdk.CoGroup2[ev, ev]]) string {
		var as, bs []int64
		for _, e := range kv.Value.A {
			as = append(as, e.V)
		}
		for _, e := range kv.Value.B {
			bs = append(bs, e.V)
		}
		sort.Slice(as, func(i, j int) bool { return as[i] < as[j] })
		sort.Slice(bs, func(i, j int) bool { return bs[i] < bs[j] })
		return fmt.Sprintf("%s a=%v b=%v", kv.Key, as, bs)
	})
	sdk.Write(joined, "out")
	out, col := memOut()
	run(t, p, map[string]string{
		"a":   memIn(ev{"x", 1, 1}, ev{"y", 1, 2}, ev{"x", 1, 3}),
		"b":   memIn(ev{"x", 1, 10}, ev{"z", 1, 20}),
		"out": out,
	})
	want := "[x a=[1 3] b=[10] y a=[2] b=[] z a=[] b=[20]]"
	if got := fmt.Sprint(sortedStrings(col.Values())); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// shareFn divides each key's count by the window's total, read as a
// singleton side input.
type shareFn struct{ total sdk.SingletonView[int64] }

func (f shareFn) ProcessElement(ctx *sdk.Context, kv sdk.KV[string, int64], emit sdk.Emitter[string]) error {
	total, err := f.total.Get(ctx)
	if err != nil {
		return err
	}
	emit.Emit(fmt.Sprintf("%d %s %d/%d", ctx.Window().Start, kv.Key, kv.Value, total))
	return nil
}

func TestSideInputs(t *testing.T) {
	p := sdk.NewPipeline()
	in := sdk.WindowInto(sdk.Read[ev](p, "in", sdk.EventTime(at)), windowing.Fixed(10*time.Millisecond))
	counts := sdk.Count(sdk.KeyBy(in, func(e ev) string { return e.Key }))
	totals := sdk.Sum(sdk.Map(counts, func(kv sdk.KV[string, int64]) sdk.KV[string, int64] {
		return sdk.KV[string, int64]{Key: "all", Value: kv.Value}
	}))
	total := sdk.AsSingleton(sdk.Values(totals))
	sdk.Write(sdk.ParDo(counts, shareFn{total}, sdk.SideInputs(total)), "share")

	// A global map side input (a small lookup table) read in windows.
	names := sdk.AsMap(sdk.KeyBy(sdk.Read[ev](p, "names"), func(e ev) string { return e.Key }))
	labelled := sdk.ParDo(sdk.Values(counts), &labelFn{names: names}, sdk.SideInputs(names))
	sdk.Write(labelled, "labelled")

	share, shareCol := memOut()
	lab, labCol := memOut()
	run(t, p, map[string]string{
		"in":       memIn(ev{"a", 1, 0}, ev{"a", 2, 0}, ev{"b", 3, 0}, ev{"a", 15, 0}),
		"names":    memIn(ev{Key: "a", V: 100}, ev{Key: "b", V: 200}),
		"share":    share,
		"labelled": lab,
	})
	if got, want := fmt.Sprint(sortedStrings(shareCol.Values())), "[0 a 2/3 0 b 1/3 10 a 1/1]"; got != want {
		t.Errorf("share: got %s, want %s", got, want)
	}
	if got, want := fmt.Sprint(sortedStrings(labCol.Values())), "[count 1 (table has 2 keys) count 1 (table has 2 keys) count 2 (table has 2 keys)]"; got != want {
		t.Errorf("labelled: got %s, want %s", got, want)
	}
}

type labelFn struct{ names sdk.MapView[string, ev] }

func (f *labelFn) ProcessElement(ctx *sdk.Context, n int64, emit sdk.Emitter[string]) error {
	m, err := f.names.Get(ctx)
	if err != nil {
		return err
	}
	emit.Emit(fmt.Sprintf("count %d (table has %d keys)", n, len(m)))
	return nil
}

// bufferFn is a stateful DoFn in fixed windows: it buffers values and emits
// their sum when an event-time timer at the window's end fires, and counts
// elements in a combining cell.
type bufferFn struct {
	buf   sdk.BagState[int64]
	seen  sdk.CombiningState[int64, int64, int64]
	flush sdk.TimerDecl
}

func (f *bufferFn) ProcessElement(ctx *sdk.Context, kv sdk.KV[string, int64], _ sdk.Emitter[string]) error {
	if err := f.buf.Add(ctx, kv.Value); err != nil {
		return err
	}
	if err := f.seen.Add(ctx, 1); err != nil {
		return err
	}
	return f.flush.Set(ctx, ctx.Window().MaxTimestamp())
}

func (f *bufferFn) OnTimer(ctx *sdk.Context, tm sdk.Timer, emit sdk.Emitter[string]) error {
	vs, err := f.buf.Read(ctx)
	if err != nil {
		return err
	}
	n, err := f.seen.Read(ctx)
	if err != nil {
		return err
	}
	var sum int64
	for _, v := range vs {
		sum += v
	}
	emit.Emit(fmt.Sprintf("%s %s n=%d sum=%d at=%d", sdk.Key[string](ctx), tm.Name, n, sum, tm.Time))
	return f.buf.Clear(ctx)
}

func TestStatefulDoFnTimers(t *testing.T) {
	p := sdk.NewPipeline()
	in := sdk.WindowInto(sdk.Read[ev](p, "in", sdk.EventTime(at)), windowing.Fixed(10*time.Millisecond))
	kv := sdk.Map(in, func(e ev) sdk.KV[string, int64] { return sdk.KV[string, int64]{Key: e.Key, Value: e.V} })
	fn := &bufferFn{buf: sdk.NewBagState[int64]("buf"), seen: sdk.NewCombiningState[int64, int64, int64]("seen", sumInts{}), flush: sdk.EventTimer("flush")}
	sdk.Write(sdk.ParDo(kv, fn, sdk.State(fn.buf, fn.seen, fn.flush)), "out")
	out, col := memOut()
	run(t, p, map[string]string{"in": memIn(ev{"a", 1, 1}, ev{"a", 2, 2}, ev{"b", 3, 5}, ev{"a", 11, 7}), "out": out})
	want := "[a flush n=1 sum=7 at=19 a flush n=2 sum=3 at=9 b flush n=1 sum=5 at=9]"
	if got := fmt.Sprint(sortedStrings(col.Values())); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

type sumInts struct{}

func (sumInts) CreateAccumulator() int64           { return 0 }
func (sumInts) AddInput(a, v int64) int64          { return a + v }
func (sumInts) MergeAccumulators(a, b int64) int64 { return a + b }
func (sumInts) ExtractOutput(a int64) int64        { return a }

type noopFn struct{ v sdk.ValueState[int64] }

func (noopFn) ProcessElement(*sdk.Context, ev, sdk.Emitter[ev]) error { return nil }

func TestValidationNamesTheTransformOrBinding(t *testing.T) {
	p := sdk.NewPipeline()
	in := sdk.Read[ev](p, "events")
	cell := sdk.NewValueState[int64]("n")
	out := sdk.ParDo(in, noopFn{cell}, sdk.State(cell), sdk.Named("CountPerUser"))
	sdk.Write(out, "out")
	err := p.Validate()
	if !errors.Is(err, graph.ErrInvalid) || !strings.Contains(err.Error(), `ParDo "CountPerUser" declares state or timers but its input`) {
		t.Errorf("state on unkeyed input: got %v", err)
	}

	p = sdk.NewPipeline()
	sdk.Write(sdk.Read[ev](p, "events"), "out")
	sdk.Write(sdk.Read[ev](p, "more"), "late", sdk.Optional())
	_, err = runner.Run(context.Background(), p, runner.Options{Bindings: map[string]string{"more": "mem://nothing", "typo": "file:///x"}, Progress: -1})
	if !errors.Is(err, runner.ErrBinding) {
		t.Fatalf("got %v, want ErrBinding", err)
	}
	for _, want := range []string{
		`binding "events": the pipeline reads it`,
		`binding "out": the pipeline writes it`,
		`binding "typo": the pipeline has no source or sink of that name (it reads events, more; writes late, out)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), `"late"`) {
		t.Errorf("an optional write was reported unbound: %v", err)
	}
}

func TestBindingErrorsAreOneLineAndNameTheBinding(t *testing.T) {
	dir := t.TempDir()
	build := func() *sdk.Pipeline {
		p := sdk.NewPipeline()
		sdk.Write(sdk.Read[ev](p, "events"), "out")
		return p
	}
	for _, c := range []struct {
		in   string
		want string
		is   error
	}{
		{"nope://x/y", `binding "events": connector: unknown scheme "nope"`, connector.ErrUnknownScheme},
		{"file://" + filepath.Join(dir, "missing.jsonl"), `binding "events"`, connector.ErrNotFound},
	} {
		_, err := runner.Run(context.Background(), build(), runner.Options{Bindings: map[string]string{"events": c.in, "out": "discard://"}, Progress: -1})
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %q, want one line with %q wrapping %v", c.in, err, c.want, c.is)
		}
	}
}

func TestDeadLetters(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	os.WriteFile(in, []byte(strings.Join([]string{
		`{"Key":"a","At":1,"V":1}`,
		`{"Key":"a","At":2,"V":`,        // bad JSON
		`{"Key":"a","At":"soon","V":1}`, // wrong type
		`{"Key":"a","V":1}`,             // no event time
		`{"Key":"b","At":3,"V":1}`,
		`{"Key":"c","At":4,"V":null}`,          // null where the type has no room
		"{\"Key\":\"d\xff\",\"At\":5,\"V\":1}", // not UTF-8
	}, "\n")+"\n"), 0o644)
	p := sdk.NewPipeline()
	evs := sdk.Read[ev](p, "in", sdk.EventTime(func(e ev) (sdk.Time, error) {
		if e.At == 0 {
			return 0, errors.New("missing timestamp")
		}
		return sdk.Time(e.At), nil
	}))
	sdk.Write(evs, "out")
	out, col := memOut()
	dead := filepath.Join(dir, "dead.jsonl")
	res, err := runner.Run(context.Background(), p, runner.Options{Bindings: map[string]string{"in": in, "out": out}, DeadLetter: "file://" + dead, Progress: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(col.Values()) != 2 || res.DeadLettered != 5 || res.Read["in"] != 7 {
		t.Fatalf("wrote %d, dead-lettered %d, read %d; want 2, 5, 7", len(col.Values()), res.DeadLettered, res.Read["in"])
	}
	b, err := os.ReadFile(dead)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 5 {
		t.Fatalf("dead letters: %q", b)
	}
	for i, want := range []string{
		`in.jsonl:2`, `in.jsonl:3`,
		// Refused at the event-time step, after decoding: the record as decoded.
		`"reason":"event time: missing timestamp","record":"{\"Key\":\"a\",\"At\":0,\"V\":1}"`,
		`field V is null; the record type's field is not a pointer`,
		// The exact bytes, in base64, beside a valid UTF-8 rendering.
		`"reason":"codec: cannot decode: field Key is not valid UTF-8","record":"{\"Key\":\"d�\",\"At\":5,\"V\":1}","record_base64":"eyJLZXkiOiJk/yIsIkF0Ijo1LCJWIjoxfQ=="`,
	} {
		if !strings.Contains(lines[i], want) || !strings.Contains(lines[i], `"binding":"in"`) || !strings.Contains(lines[i], `"reason":`) {
			t.Errorf("dead letter %d = %s, want %q, the binding and a reason", i, lines[i], want)
		}
		if !json.Valid([]byte(lines[i])) || !utf8.ValidString(lines[i]) {
			t.Errorf("dead letter %d = %q is not valid JSON", i, lines[i])
		}
	}
}

func TestStateDirInUse(t *testing.T) {
	dir := t.TempDir()
	build := func() *sdk.Pipeline {
		p := sdk.NewPipeline()
		kv := sdk.KeyBy(sdk.Read[ev](p, "in", sdk.EventTime(at)), func(e ev) string { return e.Key })
		sdk.Write(sdk.Count(kv), "out")
		return p
	}
	opts := func(out string) runner.Options {
		return runner.Options{Bindings: map[string]string{"in": memIn(ev{"a", 1, 1}), "out": out}, StateDir: dir, Progress: -1}
	}
	out, _ := memOut()
	if _, err := runner.Run(context.Background(), build(), opts(out)); err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Run(context.Background(), build(), opts(out)); !errors.Is(err, runner.ErrStateDir) {
		t.Fatalf("second run on the same state dir: got %v, want ErrStateDir", err)
	}
	o := opts(out)
	o.ResetState = true
	out2, col := memOut()
	o.Bindings["out"] = out2
	if _, err := runner.Run(context.Background(), build(), o); err != nil || fmt.Sprint(col.Values()) != "[{a 1}]" {
		t.Fatalf("with ResetState: %v, %v", err, col.Values())
	}
}

func TestFailingDoFnFailsTheRunAndCommitsNothing(t *testing.T) {
	p := sdk.NewPipeline()
	in := sdk.Read[ev](p, "in", sdk.EventTime(at))
	sdk.Write(sdk.Map(in, func(e ev) ev {
		if e.Key == "boom" {
			panic("bad element")
		}
		return e
	}, sdk.Named("Explode")), "out")
	out, col := memOut()
	_, err := runner.Run(context.Background(), p, runner.Options{Bindings: map[string]string{"in": memIn(ev{"a", 1, 1}, ev{"boom", 2, 2}), "out": out}, Progress: -1})
	if err == nil || !strings.Contains(err.Error(), "bad element") {
		t.Fatalf("got %v, want the panic as an error", err)
	}
	if col.Commits() != 0 {
		t.Errorf("a failed run committed its sink")
	}
}
