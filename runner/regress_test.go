package runner_test

// Regression tests, one per engine bug found in review: each fails on the
// code before its fix.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

func backfillOpts(bind map[string]string, o runner.Options) runner.Options {
	o.Mode, o.Bindings, o.Progress, o.StateBackend = runner.Backfill, bind, -1, "memory"
	if o.Parallelism == 0 {
		o.Parallelism = 1
	}
	return o
}

// An element on time for one sliding window and late for another is in the
// first, and is not late data.
func TestPartlyLateElementIsNotLateData(t *testing.T) {
	p := sdk.NewPipeline()
	w := sdk.WindowInto(sdk.Read[ev](p, "in", sdk.EventTime(at)), windowing.Sliding(60*time.Second, 30*time.Second), sdk.Named("Slide"))
	sdk.Write(sdk.Count(sdk.KeyBy(w, func(e ev) string { return e.Key })), "out")
	sdk.Write(sdk.LateData(w), "late")
	out, co := memOut()
	late, cl := memOut()
	// With batches of one, the watermark is 100s when 65s arrives: window
	// [60s,120s) is open, [30s,90s) is not.
	res, err := runner.Run(context.Background(), p, backfillOpts(map[string]string{
		"in": memIn(ev{"a", 100_000, 0}, ev{"a", 65_000, 0}), "out": out, "late": late}, runner.Options{BatchSize: 1}))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sortedStrings(co.Values())); got != "[{a 1} {a 2}]" {
		t.Errorf("counts %s, want [60s,120s) with 2 and [90s,150s) with 1", got)
	}
	if len(cl.Values()) != 0 {
		t.Errorf("late data %v, want none", cl.Values())
	}
	if res.Late["Slide"] != 1 {
		t.Errorf("windows missed %v, want 1 counted at Slide", res.Late)
	}
}

var (
	ptFlush = sdk.ProcessingTimer("flush")
	ptSeen  = sdk.NewBagState[int64]("seen")
)

type ptBuffer struct{}

func (ptBuffer) ProcessElement(c *sdk.Context, e sdk.KV[string, ev], _ sdk.Emitter[sdk.KV[string, int64]]) error {
	if err := ptSeen.Add(c, e.Value.At); err != nil {
		return err
	}
	return ptFlush.Set(c, c.ProcessingTime()+1000)
}

func (ptBuffer) OnTimer(c *sdk.Context, _ sdk.Timer, emit sdk.Emitter[sdk.KV[string, int64]]) error {
	vs, err := ptSeen.Read(c)
	if err != nil {
		return err
	}
	emit.Emit(sdk.KV[string, int64]{Key: sdk.Key[string](c), Value: int64(len(vs))})
	return ptSeen.Clear(c)
}

// Processing-time timers fire at the end of a backfill, and their output
// reaches a grouping downstream before the end of time does.
func TestProcessingTimersAtTheEndAreNotLateDownstream(t *testing.T) {
	p := sdk.NewPipeline()
	buf := sdk.ParDo(sdk.KeyBy(sdk.Read[ev](p, "in", sdk.EventTime(at)), func(e ev) string { return e.Key }),
		sdk.DoFn[sdk.KV[string, ev], sdk.KV[string, int64]](ptBuffer{}), sdk.State(ptFlush, ptSeen), sdk.Named("Buffer"))
	sdk.Write(sdk.Sum(buf), "sums")
	out, col := memOut()
	res, err := runner.Run(context.Background(), p, backfillOpts(map[string]string{"in": memIn(ev{"a", 1000, 0}, ev{"a", 2000, 0}, ev{"b", 3000, 0}), "sums": out}, runner.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sortedStrings(col.Values())); got != "[{a 2} {b 1}]" {
		t.Errorf("sums %s (late: %v), want [{a 2} {b 1}]", got, res.Late)
	}
}

// streamRun runs p in stream mode until drain is closed, its logs going to
// logs (nil: nowhere).
func streamRun(p *sdk.Pipeline, bind map[string]string, drain chan struct{}, logs io.Writer) chan error {
	log := slog.New(slog.DiscardHandler)
	if logs != nil {
		log = slog.New(slog.NewTextHandler(logs, nil))
	}
	done := make(chan error, 1)
	go func() {
		_, err := runner.Run(context.Background(), p, runner.Options{Mode: runner.Stream, StateBackend: "memory", Drain: drain, Progress: -1, Parallelism: 1, Bindings: bind, Logger: log})
		done <- err
	}()
	return done
}

// A source that goes idle, sends data that does not move its watermark, and
// goes idle again must say so again, or it holds everyone back.
//
// Each phase waits for what it needs, not for the idleness timeout to pass:
// windows fire only once b is idle, and b is awake again once the grouping
// has dropped its late record.
func TestIdleSourceCanGoIdleTwice(t *testing.T) {
	n := names.Add(1)
	an, bn := fmt.Sprintf("twice-a-%d", n), fmt.Sprintf("twice-b-%d", n)
	a, b := memory.NewStream(an), memory.NewStream(bn)
	out, col := memOut()
	p := sdk.NewPipeline()
	ra := sdk.Read[ev](p, "a", sdk.EventTime(at), sdk.Idleness(200*time.Millisecond))
	rb := sdk.Read[ev](p, "b", sdk.EventTime(at), sdk.Idleness(200*time.Millisecond))
	sdk.Write(sdk.Count(sdk.KeyBy(sdk.WindowInto(sdk.Flatten(ra, rb), windowing.Fixed(time.Minute)), func(ev) string { return "all" })), "o")
	drain := make(chan struct{})
	logs := &lockedLog{}
	done := streamRun(p, map[string]string{"a": "mem://" + an, "b": "mem://" + bn, "o": out}, drain, logs)
	b.Send(ev{"b", 10_000, 0})
	for i := 0; i <= 300; i++ {
		a.Send(ev{"a", int64(i) * 1000, 0})
	}
	// b holds the watermark at 10s until it is idle; then a's five
	// minutes fire, and no more.
	waitUntil(t, "the windows to 5:00 to fire while b is idle", func() bool { return col.Written() >= 5 })
	b.Send(ev{"b", 10_000, 0}) // b wakes up without moving its watermark
	waitUntil(t, "b's late record to reach the grouping", func() bool {
		return strings.Contains(logs.String(), "late data dropped at a grouping")
	})
	for i := 301; i <= 600; i++ {
		a.Send(ev{"a", int64(i) * 1000, 0})
	}
	waitUntil(t, "the windows to 10:00 to fire after b went idle the second time", func() bool { return col.Written() >= 10 })
	close(drain)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type passSide struct{ view sdk.ListView[ev] }

func (l passSide) ProcessElement(c *sdk.Context, e ev, emit sdk.Emitter[ev]) error {
	if _, err := l.view.Get(c); err != nil {
		return err
	}
	emit.Emit(e)
	return nil
}

// A ParDo with side inputs passes on that its main input is idle.
func TestSideInputStagePassesIdleness(t *testing.T) {
	n := names.Add(1)
	an, bn := fmt.Sprintf("sidle-a-%d", n), fmt.Sprintf("sidle-b-%d", n)
	memory.NewStream(an)
	b := memory.NewStream(bn)
	out, col := memOut()
	p := sdk.NewPipeline()
	ra := sdk.Read[ev](p, "a", sdk.EventTime(at), sdk.Idleness(200*time.Millisecond))
	rb := sdk.Read[ev](p, "b", sdk.EventTime(at), sdk.Idleness(200*time.Millisecond))
	v := sdk.AsList(sdk.Read[ev](p, "side", sdk.EventTime(at)))
	ra = sdk.ParDo(ra, sdk.DoFn[ev, ev](passSide{v}), sdk.SideInputs(v))
	sdk.Write(sdk.Count(sdk.KeyBy(sdk.WindowInto(sdk.Flatten(ra, rb), windowing.Fixed(time.Minute)), func(ev) string { return "all" })), "o")
	drain := make(chan struct{})
	done := streamRun(p, map[string]string{"a": "mem://" + an, "b": "mem://" + bn, "side": memIn(ev{"s", 0, 0}), "o": out}, drain, nil)
	for i := 0; i <= 300; i++ {
		b.Send(ev{"b", int64(i) * 1000, 0})
	}
	waitUntil(t, "a window to fire while the side-input stage's input is idle", func() bool { return col.Written() >= 1 })
	close(drain)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

type listLen struct{ view sdk.ListView[ev] }

func (l listLen) ProcessElement(c *sdk.Context, e ev, emit sdk.Emitter[string]) error {
	vs, err := l.view.Get(c)
	if err != nil {
		return err
	}
	emit.Emit(fmt.Sprintf("%s:%d", e.Key, len(vs)))
	return nil
}

// Inputs with no splits at all (an empty directory) are complete at once:
// they neither hold a side input nor a grouping downstream.
func TestEmptyInputsAreComplete(t *testing.T) {
	empty := "file://" + t.TempDir() + "?format=jsonl&empty=ok"

	p := sdk.NewPipeline()
	v := sdk.AsList(sdk.Read[ev](p, "side", sdk.EventTime(at)))
	sdk.Write(sdk.ParDo(sdk.Read[ev](p, "main", sdk.EventTime(at)), sdk.DoFn[ev, string](listLen{v}), sdk.SideInputs(v)), "out")
	out, col := memOut()
	if _, err := runner.Run(context.Background(), p, backfillOpts(map[string]string{"main": memIn(ev{"a", 1000, 0}), "side": empty, "out": out}, runner.Options{})); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(col.Values()); got != "[a:0]" {
		t.Errorf("with an empty side input: %s, want [a:0]", got)
	}

	p = sdk.NewPipeline()
	fw := sdk.WindowInto(sdk.Read[ev](p, "full", sdk.EventTime(at)), windowing.Fixed(time.Minute))
	ew := sdk.WindowInto(sdk.Read[ev](p, "empty", sdk.EventTime(at)), windowing.Fixed(time.Minute))
	ec := sdk.Count(sdk.KeyBy(ew, func(e ev) string { return e.Key }))
	fk := sdk.Map(fw, func(e ev) sdk.KV[string, int64] { return sdk.KV[string, int64]{Key: e.Key, Value: 1} })
	sdk.Write(sdk.Sum(sdk.Flatten(fk, ec)), "out")
	out, col = memOut()
	if _, err := runner.Run(context.Background(), p, backfillOpts(map[string]string{"full": memIn(ev{"a", 1000, 0}, ev{"b", 2000, 0}), "empty": empty, "out": out}, runner.Options{})); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sortedStrings(col.Values())); got != "[{a 1} {b 1}]" {
		t.Errorf("with an empty keyed branch: %s", got)
	}
}

// A ParDo whose side input is its own main input gets both.
func TestSelfSideInput(t *testing.T) {
	p := sdk.NewPipeline()
	main := sdk.Read[ev](p, "main", sdk.EventTime(at))
	v := sdk.AsList(main)
	sdk.Write(sdk.ParDo(main, sdk.DoFn[ev, string](listLen{v}), sdk.SideInputs(v)), "out")
	out, col := memOut()
	if _, err := runner.Run(context.Background(), p, backfillOpts(map[string]string{"main": memIn(ev{"a", 1000, 0}, ev{"b", 2000, 0}), "out": out}, runner.Options{})); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sortedStrings(col.Values())); got != "[a:2 b:2]" {
		t.Errorf("got %s, want [a:2 b:2]", got)
	}
}

// held:// is mem:// whose readers, once they have returned their first
// batch, wait for the run to be cancelled (for a minute at most, then
// their input ends): a backfill over it does not end before a stop.
type heldConn struct{}

func init() { connector.Register("held", heldConn{}) }

func (heldConn) OpenSource(ctx context.Context, spec connector.SourceSpec) (connector.Source, error) {
	spec.URI = &url.URL{Scheme: "mem", Host: spec.URI.Host}
	src, err := connector.OpenSource(ctx, spec)
	if err != nil {
		return nil, err
	}
	return heldSource{src}, nil
}
func (heldConn) OpenSink(context.Context, connector.SinkSpec) (connector.Sink, error) {
	return nil, connector.ErrUnsupported
}

type heldSource struct{ connector.Source }

func (s heldSource) Splits(ctx context.Context) ([]connector.Split, error) {
	sp, err := s.Source.Splits(ctx)
	for i := range sp {
		sp[i] = heldSplit{sp[i]}
	}
	return sp, err
}

type heldSplit struct{ connector.Split }

func (s heldSplit) Open(ctx context.Context) (connector.Reader, error) {
	rd, err := s.Split.Open(ctx)
	return &heldReader{Reader: rd}, err
}

type heldReader struct {
	connector.Reader
	read bool
}

func (r *heldReader) Read(ctx context.Context, buf []connector.Record) (int, error) {
	if !r.read {
		r.read = true
		return r.Reader.Read(ctx, buf)
	}
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-time.After(time.Minute):
		return 0, io.EOF
	}
}

// Stopping a backfill aborts it: its output would be incomplete.
func TestBackfillStopCommitsNothing(t *testing.T) {
	vs := make([]any, 5000)
	for i := range vs {
		vs[i] = ev{"a", int64(i) * 1000, 0}
	}
	in := memIn(vs...)
	p := sdk.NewPipeline()
	w := sdk.WindowInto(sdk.Read[ev](p, "in", sdk.EventTime(at)), windowing.Fixed(time.Minute))
	// The stop comes with the first element; the input does not end
	// before the run has seen it.
	stop := make(chan struct{})
	var once sync.Once
	stopping := sdk.Map(w, func(e ev) ev { once.Do(func() { close(stop) }); return e })
	sdk.Write(sdk.Count(sdk.KeyBy(stopping, func(e ev) string { return e.Key })), "out")
	out, col := memOut()
	_, err := runner.Run(context.Background(), p, backfillOpts(map[string]string{"in": "held://" + in[len("mem://"):], "out": out}, runner.Options{Stop: stop, BatchSize: 64}))
	if !errors.Is(err, runner.ErrInterrupted) {
		t.Errorf("got %v, want ErrInterrupted", err)
	}
	if col.Commits() != 0 {
		t.Error("an interrupted backfill committed its output")
	}
}

// A panic in a transform fused after a grouping names that transform, on
// one line.
func TestPanicNamesTheTransform(t *testing.T) {
	p := sdk.NewPipeline()
	c := sdk.Count(sdk.KeyBy(sdk.Read[ev](p, "in", sdk.EventTime(at)), func(e ev) string { return e.Key }))
	sdk.Write(sdk.Map(c, func(kv sdk.KV[string, int64]) int64 {
		var m map[string]int
		m["x"] = 1
		return kv.Value
	}, sdk.Named("BadMap")), "out")
	out, _ := memOut()
	_, err := runner.Run(context.Background(), p, backfillOpts(map[string]string{"in": memIn(ev{"a", 1000, 0}), "out": out}, runner.Options{}))
	if err == nil || !strings.Contains(err.Error(), `ParDo "BadMap": panic: assignment to entry in nil map`) || strings.Contains(err.Error(), "\n") {
		t.Errorf("got %q, want one line naming BadMap", err)
	}
}

type bundler struct{ buf *[]string }

func (b bundler) ProcessElement(_ *sdk.Context, kv sdk.KV[string, []ev], _ sdk.Emitter[string]) error {
	*b.buf = append(*b.buf, kv.Key)
	return nil
}

func (b bundler) FinishBundle(_ *sdk.Context, emit sdk.Emitter[string]) error {
	for _, s := range *b.buf {
		emit.Emit(s)
	}
	*b.buf = (*b.buf)[:0]
	return nil
}

// FinishBundle of a DoFn fused after a grouping runs after each batch, not
// only when a watermark moves.
func TestFinishBundleAfterEachBatch(t *testing.T) {
	n := names.Add(1)
	an := fmt.Sprintf("fb-%d", n)
	a := memory.NewStream(an)
	out, col := memOut()
	p := sdk.NewPipeline()
	w := sdk.WindowInto(sdk.Read[ev](p, "a"), windowing.Global(), sdk.Trigger(windowing.Repeatedly(windowing.AfterCount(1))))
	g := sdk.GroupByKey(sdk.KeyBy(w, func(e ev) string { return e.Key }))
	sdk.Write(sdk.ParDo(g, sdk.DoFn[sdk.KV[string, []ev], string](bundler{buf: new([]string)})), "o")
	drain := make(chan struct{})
	done := streamRun(p, map[string]string{"a": "mem://" + an, "o": out}, drain, nil)
	a.Send(ev{"x", 0, 0}, ev{"y", 0, 0})
	waitUntil(t, "FinishBundle's output to appear while the stream runs", func() bool { return col.Written() >= 1 })
	close(drain)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A sink that holds its output until the end cannot be checkpointed: a
// restart would lose what it held.
func TestCheckpointsRefuseSinksThatWouldLoseOutput(t *testing.T) {
	p := sdk.NewPipeline()
	sdk.Write(sdk.Read[ev](p, "in", sdk.EventTime(at)), "out")
	_, err := runner.Run(context.Background(), p, runner.Options{Mode: runner.Stream, Progress: -1, StateBackend: "memory",
		CheckpointDir: t.TempDir(), Bindings: map[string]string{"in": memIn(ev{"a", 1, 1}), "out": "file://" + t.TempDir() + "/out.jsonl"}})
	if !errors.Is(err, runner.ErrBinding) || !strings.Contains(err.Error(), `"out": its sink cannot take part in checkpoints`) {
		t.Errorf("got %v", err)
	}
}

type pickKey struct{ bad string }

func (p pickKey) ProcessElement(_ *sdk.Context, e ev, emit sdk.Emitter[string]) error {
	if p.bad == "Pick" {
		panic("boom in Pick")
	}
	emit.Emit(e.Key)
	if p.bad == "PickAfter" {
		panic("boom in PickAfter")
	}
	return nil
}

// Transforms fused one after another hand their elements on unboxed, the
// next one running inside the call of the one before; a panic still names
// the transform that raised it, whether it comes before or after the
// element went on.
func TestPanicInAFusedChainNamesTheTransform(t *testing.T) {
	for _, tc := range []struct{ bad, blamed string }{
		{"Pick", `ParDo "Pick"`}, {"PickAfter", `ParDo "Pick"`}, {"Keep", `ParDo "Keep"`}, {"Shout", `ParDo "Shout"`},
		{"EventTime", `Read "Read(in)"`},
	} {
		t.Run(tc.bad, func(t *testing.T) {
			p := sdk.NewPipeline()
			eventTime := func(e ev) (sdk.Time, error) {
				if tc.bad == "EventTime" {
					panic("boom in EventTime")
				}
				return at(e)
			}
			keys := sdk.ParDo(sdk.Read[ev](p, "in", sdk.EventTime(eventTime)), pickKey{tc.bad}, sdk.Named("Pick"))
			kept := sdk.Filter(keys, func(k string) bool {
				if tc.bad == "Keep" {
					panic("boom in Keep")
				}
				return true
			}, sdk.Named("Keep"))
			sdk.Write(sdk.Map(kept, func(k string) string {
				if tc.bad == "Shout" {
					panic("boom in Shout")
				}
				return strings.ToUpper(k)
			}, sdk.Named("Shout")), "out")
			out, _ := memOut()
			_, err := runner.Run(context.Background(), p, backfillOpts(map[string]string{"in": memIn(ev{"a", 1000, 0}), "out": out}, runner.Options{}))
			want := fmt.Sprintf("%s: panic: boom in %s", tc.blamed, tc.bad)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want an error with %q", err, want)
			}
		})
	}
}

type recoverAround struct{}

func (recoverAround) ProcessElement(_ *sdk.Context, e ev, emit sdk.Emitter[string]) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = nil // pipeline code that hides a panic downstream
		}
	}()
	emit.Emit(e.Key)
	return nil
}

// A panic downstream of a DoFn that recovers panics around its Emit still
// fails the run, naming the transform that panicked: fused steps share one
// recover per batch, so the DoFn's recover sees the panic first.
func TestPanicRecoveredUpstreamStillFailsTheRun(t *testing.T) {
	p := sdk.NewPipeline()
	keys := sdk.ParDo(sdk.Read[ev](p, "in", sdk.EventTime(at)), recoverAround{}, sdk.Named("Guard"))
	sdk.Write(sdk.Map(keys, func(k string) string { panic("boom downstream") }, sdk.Named("Boom")), "out")
	out, col := memOut()
	_, err := runner.Run(context.Background(), p, backfillOpts(map[string]string{"in": memIn(ev{"a", 1000, 0}), "out": out}, runner.Options{}))
	if err == nil || !strings.Contains(err.Error(), `ParDo "Boom"`) {
		t.Errorf("got %v, want an error naming Boom", err)
	}
	if col.Commits() != 0 {
		t.Error("the run committed its output")
	}
}
