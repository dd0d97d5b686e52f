// Package integration runs Weir's example pipelines end to end: in backfill
// mode over files and in stream mode over an unbounded in-memory source that
// is fed in arrival order and then drained, and checks that both give exactly
// the output of an independent computation by plain loops.
package integration

import (
	"errors"
	"io"
	"reflect"

	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"github.com/weir-dev/weir/io/connector"
	"os"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

// dataset generates the events every test here uses: out of order within 2m,
// with very late views.
func dataset(t *testing.T, views int) ([]events.PageViewEvent, []events.ProfileEditEvent) {
	t.Helper()
	v, e, err := events.Generate(events.GenConfig{Seed: 7, PageViews: views, Profiles: 300, Span: 12 * time.Hour, LateFraction: 0.002})
	if err != nil {
		t.Fatal(err)
	}
	return v, e
}

func writeJSONL[T any](t *testing.T, path string, vs []T) string {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, v := range vs {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return "file://" + path
}

func readJSONL[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		var v T
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func quietOptions(o runner.Options) runner.Options {
	o.Progress = -1
	o.Parallelism = 2
	return o
}

// backfill runs p over files and returns its result.
func backfill(t *testing.T, p *sdk.Pipeline, bind map[string]string) *runner.Result {
	t.Helper()
	res, err := runner.Run(context.Background(), p, quietOptions(runner.Options{Mode: runner.Backfill, Bindings: bind}))
	if err != nil {
		t.Fatalf("backfill: %v", err)
	}
	return res
}

// stream runs p in stream mode: each input is an unbounded in-memory
// stream, fed in arrival order; when everything has been read, the run is
// drained. It returns what each output collected.
func stream(t *testing.T, p *sdk.Pipeline, inputs map[string][]any, outputs []string) map[string][]any {
	t.Helper()
	bind := map[string]string{}
	streams := map[string]*memory.Stream{}
	for name := range inputs {
		n := fmt.Sprintf("%s-%s-%d", t.Name(), name, seq.Add(1))
		streams[name] = memory.NewStream(n)
		bind[name] = "mem://" + n
	}
	cols := map[string]*memory.Collector{}
	for _, name := range outputs {
		n := fmt.Sprintf("%s-%s-%d", t.Name(), name, seq.Add(1))
		cols[name] = memory.NewCollector(n)
		bind[name] = "mem://" + n
	}
	drain := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := runner.Run(context.Background(), p, quietOptions(runner.Options{Mode: runner.Stream, Bindings: bind, Drain: drain, StateBackend: "memory"}))
		done <- err
	}()
	// Feed in chunks, as records would trickle in from a topic.
	for name, vs := range inputs {
		for i := 0; i < len(vs); i += 997 {
			streams[name].Send(vs[i:min(i+997, len(vs))]...)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for name, vs := range inputs {
		for streams[name].Consumed() < len(vs) {
			if time.Now().After(deadline) {
				t.Fatalf("stream: %s: only %d of %d records read", name, streams[name].Consumed(), len(vs))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	close(drain)
	if err := <-done; err != nil {
		t.Fatalf("stream: %v", err)
	}
	out := map[string][]any{}
	for name, c := range cols {
		out[name] = c.Values()
	}
	return out
}

var seq atomic.Int64

func anys[T any](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

func typed[T any](t *testing.T, vs []any) []T {
	t.Helper()
	out := make([]T, len(vs))
	for i, v := range vs {
		x, ok := v.(T)
		if !ok {
			t.Fatalf("output of type %T, want %T", v, x)
		}
		out[i] = x
	}
	return out
}

// sameRows compares two row sets as multisets, after sorting by their JSON.
func sameRows[T any](t *testing.T, what string, got, want []T) {
	t.Helper()
	key := func(v T) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	g, w := make([]string, len(got)), make([]string, len(want))
	for i, v := range got {
		g[i] = key(v)
	}
	for i, v := range want {
		w[i] = key(v)
	}
	sort.Strings(g)
	sort.Strings(w)
	if len(g) != len(w) {
		t.Errorf("%s: %d rows, want %d", what, len(g), len(w))
	}
	shown := 0
	i, j := 0, 0
	for (i < len(g) || j < len(w)) && shown < 5 {
		switch {
		case j >= len(w) || i < len(g) && g[i] < w[j]:
			t.Errorf("%s: unexpected row %s", what, g[i])
			i++
			shown++
		case i >= len(g) || w[j] < g[i]:
			t.Errorf("%s: missing row %s", what, w[j])
			j++
			shown++
		default:
			i++
			j++
		}
	}
}

// lateness replays the arrival order with the bounded-out-of-orderness
// watermark after every record, and reports whether each record is late for
// window w: the window's last instant plus the allowed lateness is before the
// watermark seen when the record arrives.
type watermarkReplay struct {
	bound windowing.Time
	max   windowing.Time
	seen  bool
}

func (r *watermarkReplay) current() windowing.Time {
	if !r.seen {
		return windowing.MinTime
	}
	return r.max - r.bound
}

func (r *watermarkReplay) observe(ts windowing.Time) {
	if !r.seen || ts > r.max {
		r.max, r.seen = ts, true
	}
}

// refProfileViews computes the profileviews answer with plain loops.
func refProfileViews(views []events.PageViewEvent, c pipelines.ProfileViewsConfig) (rows []pipelines.ProfileViewCount, late []events.PageViewEvent) {
	wm := watermarkReplay{bound: windowing.FromDuration(c.OutOfOrderness)}
	type key struct {
		profile    int64
		start, end int64
	}
	counts := map[key]int64{}
	size, slide := int64(c.Window/time.Millisecond), int64(c.Slide/time.Millisecond)
	if slide == 0 {
		slide = size
	}
	lateness := int64(c.AllowedLateness / time.Millisecond)
	for _, v := range views {
		cur := int64(wm.current())
		// The watermark advances with every record, filtered or not: the
		// engine's reader sees them all.
		wm.observe(windowing.Time(v.Timestamp))
		if v.PageKey != events.PageKeyProfileView {
			continue
		}
		// Late data is late for every window it belongs to; an element
		// late for some windows only is counted in the others.
		accepted := false
		for start := v.Timestamp - ((v.Timestamp%slide)+slide)%slide; start > v.Timestamp-size; start -= slide {
			end := start + size
			if end-1+lateness < cur {
				continue
			}
			accepted = true
			counts[key{v.ViewedProfileID, start, end}]++
		}
		if !accepted {
			late = append(late, v)
		}
	}
	for k, n := range counts {
		rows = append(rows, pipelines.ProfileViewCount{ProfileID: k.profile, WindowStart: k.start, WindowEnd: k.end, Count: n})
	}
	return rows, late
}

// readParquet reads a Parquet file back through the file connector.
func readParquet[T any](t *testing.T, path string) []T {
	t.Helper()
	var out []T
	for _, v := range readAllURI(t, "file://"+path, reflect.TypeFor[T]()) {
		out = append(out, v.(T))
	}
	return out
}

// readAllURI reads every split of a bounded source to its end.
func readAllURI(t *testing.T, uri string, typ reflect.Type) []any {
	t.Helper()
	u, err := connector.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	src, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: "check", URI: u, Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	splits, err := src.Splits(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []any
	buf := make([]connector.Record, 256)
	for _, sp := range splits {
		rd, err := sp.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for {
			n, err := rd.Read(ctx, buf)
			for _, r := range buf[:n] {
				if r.Err != nil {
					t.Fatalf("%s: %v", r.Pos, r.Err)
				}
				out = append(out, r.Value)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		rd.Close()
	}
	return out
}
