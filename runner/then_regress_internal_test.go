package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

// rvtb://NAME is a bounded, resumable source of time-sliced splits, like
// date=/hour= folders or Parquet row groups with ?time=: split i holds
// hours 2i and 2i+1 (3 records each) and says so (TimeBoundedSplit).
type rvConn struct{}

func init() { connector.Register("rvtb", rvConn{}) }

type rvEv struct {
	Key string
	At  int64
}

func (rvConn) OpenSource(_ context.Context, spec connector.SourceSpec) (connector.Source, error) {
	return &rvSource{n: 3}, nil
}
func (rvConn) OpenSink(context.Context, connector.SinkSpec) (connector.Sink, error) {
	return nil, errors.New("no")
}

type rvSource struct{ n int }

func (s *rvSource) Splits(context.Context) ([]connector.Split, error) {
	var out []connector.Split
	for i := 0; i < s.n; i++ {
		out = append(out, &rvSplit{src: s, i: i})
	}
	return out, nil
}
func (s *rvSource) Bounded() bool { return true }
func (s *rvSource) Close() error  { return nil }

type rvSplit struct {
	src *rvSource
	i   int
}

func (sp *rvSplit) ID() string { return fmt.Sprint("slice-", sp.i) }
func (sp *rvSplit) EventTimeBounds() (windowing.Time, windowing.Time) {
	return windowing.Time(2*sp.i) * 3600000, windowing.Time(2*sp.i+2)*3600000 - 1
}
func (sp *rvSplit) Open(ctx context.Context) (connector.Reader, error) { return sp.OpenAt(ctx, nil) }
func (sp *rvSplit) OpenAt(_ context.Context, pos []byte) (connector.Reader, error) {
	var vs []any
	for h := 2 * sp.i; h < 2*sp.i+2; h++ {
		for k := 0; k < 3; k++ {
			vs = append(vs, rvEv{Key: "k", At: int64(h)*3600000 + int64(k)})
		}
	}
	r := &rvReader{vs: vs}
	if len(pos) > 0 {
		r.pos, _ = strconv.Atoi(string(pos))
	}
	return r, nil
}

type rvReader struct {
	vs  []any
	pos int
}

func (r *rvReader) Read(_ context.Context, buf []connector.Record) (int, error) {
	if r.pos >= len(r.vs) {
		return 0, io.EOF
	}
	n := 0
	for n < len(buf) && r.pos < len(r.vs) {
		buf[n] = connector.Record{Value: r.vs[r.pos]}
		r.pos++
		n++
	}
	return n, nil
}
func (r *rvReader) Close() error     { return nil }
func (r *rvReader) Position() []byte { return []byte(strconv.Itoa(r.pos)) }

func rvHourly() *sdk.Pipeline {
	p := sdk.NewPipeline()
	in := sdk.WindowInto(sdk.Read[rvEv](p, "in", sdk.EventTime(func(e rvEv) (sdk.Time, error) { return sdk.Time(e.At), nil })), windowing.Fixed(time.Hour))
	counts := sdk.Count(sdk.KeyBy(in, func(e rvEv) string { return e.Key }))
	sdk.Write(sdk.Map(sdk.ParDo(counts, rvWin{}), func(s string) string { return s }), "out")
	return p
}

// rvWin emits "window-start-hour count".
type rvWin struct{}

func (rvWin) ProcessElement(c *sdk.Context, kv sdk.KV[string, int64], emit sdk.Emitter[string]) error {
	emit.Emit(fmt.Sprintf("h%d=%d", int64(c.Window().Start)/3600000, kv.Value))
	return nil
}

var rvNames int

func rvOut() (string, *memory.Collector) {
	rvNames++
	n := fmt.Sprintf("rv-out-%d", rvNames)
	return "mem://" + n, memory.NewCollector(n)
}

func rvSorted(vs []any) []string {
	var out []string
	for _, v := range vs {
		out = append(out, fmt.Sprint(v))
	}
	sort.Strings(out)
	return out
}

// TestStopAtEndWatermarkOfTimeSlicedSplits: the history part of a
// backfill-then-stream job (stopAtEnd) over splits read in time order.
// When the history is read, every window before the last record's hour
// (less out-of-orderness, here none) can fire: the reader has read hours
// 0 to 5. With StopAtEnd a finished split keeps its own watermark for
// good, so the first slice's end (hour 1) holds the reader's watermark for
// the rest of the history: only hour 0 fires, and the whole history stays
// in state until the live part.
func TestStopAtEndWatermarkOfTimeSlicedSplits(t *testing.T) {
	out, c := rvOut()
	dir := t.TempDir()
	o := Options{Mode: Stream, Progress: -1, Parallelism: 1, Logger: slog.New(slog.DiscardHandler),
		StateDir: filepath.Join(dir, "state"), CheckpointDir: filepath.Join(dir, "ckpt"), CheckpointInterval: 20 * time.Millisecond,
		Bindings: map[string]string{"in": "rvtb://a", "out": out}}
	o.EnsureDefaults()
	res, err := runOnce(context.Background(), rvHourly().Graph(), o, part{phase: "history", stopAtEnd: true})
	if err != nil {
		t.Fatal(err)
	}
	got := rvSorted(c.Values())
	t.Logf("fired in the history: %v (read %d)", got, res.Read["in"])
	if len(got) < 4 {
		t.Fatalf("after reading hours 0-5 only %v fired: finished time slices hold the watermark at the first slice's end", got)
	}
}

// TestHandoverFileWithTwoLiveTopics: a handover file names one
// topic. A second --then topic gets neither offsets= nor start=, so the
// live part reads it from its earliest offset, again over what its history
// files held (duplicates), instead of being refused.
func TestHandoverFileWithTwoLiveTopics(t *testing.T) {
	o := &Options{
		Bindings: map[string]string{"views": "file:///h/views/", "edits": "file:///h/edits/"},
		Then:     map[string]string{"views": "kafka://b:9092/views", "edits": "kafka://b:9092/edits"},
	}
	f := filepath.Join(t.TempDir(), "_kafka-offsets.json")
	os.WriteFile(f, []byte(`{"topic":"views","offsets":{"0":12}}`), 0o644)
	h, err := parseHandover("file://" + f)
	if err != nil {
		t.Fatal(err)
	}
	live, err := liveBindings(o, h)
	if err != nil {
		return // refused: fine
	}
	if !strings.Contains(live["edits"], "offsets=") && !strings.Contains(live["edits"], "start=") {
		t.Fatalf("edits goes live at %s: from its earliest offset, over its whole history again", live["edits"])
	}
}
