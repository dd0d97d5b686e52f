package runner_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

// tbConn serves tb://NAME: a bounded source of two splits whose event times
// are known (hours 0-1, then hours 2-3), like Parquet row groups with
// statistics. The second split opens only once the sink named NAME has
// output: a backfill that held every window until its input ended would
// wait for it forever.
type tbConn struct{}

// tbSinks has the collectors tb:// sources wait on, by name.
var tbSinks sync.Map

func init() { connector.Register("tb", tbConn{}) }

func (tbConn) OpenSource(_ context.Context, spec connector.SourceSpec) (connector.Source, error) {
	return &tbSource{sink: spec.URI.Host}, nil
}

func (tbConn) OpenSink(context.Context, connector.SinkSpec) (connector.Sink, error) {
	return nil, errors.New("no")
}

type tbSource struct{ sink string }

func (s *tbSource) Splits(context.Context) ([]connector.Split, error) {
	return []connector.Split{&tbSplit{s, 0}, &tbSplit{s, 2}}, nil
}
func (s *tbSource) Bounded() bool { return true }
func (s *tbSource) Close() error  { return nil }

type tbSplit struct {
	src   *tbSource
	first int // hour
}

func (sp *tbSplit) ID() string { return fmt.Sprint("hours-", sp.first) }
func (sp *tbSplit) EventTimeBounds() (windowing.Time, windowing.Time) {
	return windowing.Time(sp.first) * 3600000, windowing.Time(sp.first+2)*3600000 - 1
}

func (sp *tbSplit) Open(ctx context.Context) (connector.Reader, error) {
	if sp.first > 0 {
		v, _ := tbSinks.Load(sp.src.sink)
		c := v.(*memory.Collector)
		deadline := time.Now().Add(time.Minute)
		for c.Written() == 0 {
			if time.Now().After(deadline) {
				return nil, errors.New("no window fired in a minute, before the second split")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	var vs []any
	for h := sp.first; h < sp.first+2; h++ {
		for i := 0; i < 3; i++ {
			vs = append(vs, ev{Key: "k", At: int64(h)*3600000 + int64(i), V: 1})
		}
	}
	return &tbReader{vs: vs}, nil
}

type tbReader struct{ vs []any }

func (r *tbReader) Read(_ context.Context, buf []connector.Record) (int, error) {
	if len(r.vs) == 0 {
		return 0, io.EOF
	}
	n := 0
	for n < len(buf) && len(r.vs) > 0 {
		buf[n], r.vs = connector.Record{Value: r.vs[0]}, r.vs[1:]
		n++
	}
	return n, nil
}
func (r *tbReader) Close() error { return nil }

func hourlyCounts() *sdk.Pipeline {
	p := sdk.NewPipeline()
	in := sdk.WindowInto(sdk.Read[ev](p, "in", sdk.EventTime(at)), windowing.Fixed(time.Hour))
	counts := sdk.Count(sdk.KeyBy(in, func(e ev) string { return e.Key }))
	sdk.Write(sdk.Map(counts, func(kv sdk.KV[string, int64]) string { return fmt.Sprint(kv.Key, " ", kv.Value) }), "out")
	return p
}

// TestTimeOrderedBackfillFiresAsItGoes: the windows of the first split's
// hours fire before the second split is read.
func TestTimeOrderedBackfillFiresAsItGoes(t *testing.T) {
	out, c := memOut()
	name, _ := url.Parse(out)
	tbSinks.Store(name.Host, c)
	res, err := runner.Run(context.Background(), hourlyCounts(), runner.Options{Progress: -1, Parallelism: 1, StateBackend: "memory",
		Logger: slog.New(slog.DiscardHandler), Bindings: map[string]string{"in": "tb://" + name.Host, "out": out}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sortedStrings(c.Values())); got != "[k 3 k 3 k 3 k 3]" || res.Read["in"] != 12 {
		t.Fatalf("got %s after reading %d", got, res.Read["in"])
	}
}

// TestFromTo: records outside --from/--to are dropped and counted.
func TestFromTo(t *testing.T) {
	out, c := memOut()
	res, err := runner.Run(context.Background(), hourlyCounts(), runner.Options{Progress: -1, StateBackend: "memory",
		From: time.UnixMilli(3600000), To: time.UnixMilli(3 * 3600000), Logger: slog.New(slog.DiscardHandler),
		Bindings: map[string]string{"in": memIn(ev{"k", 10, 1}, ev{"k", 3600000, 1}, ev{"k", 3600001, 1}, ev{"k", 7200000, 1}, ev{"k", 10800000, 1}), "out": out}})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sortedStrings(c.Values())); got != "[k 1 k 2]" || res.OutOfRange != 2 {
		t.Fatalf("got %s, %d out of range; want [k 1 k 2], 2", got, res.OutOfRange)
	}
	_, err = runner.Run(context.Background(), hourlyCounts(), runner.Options{From: time.UnixMilli(5), To: time.UnixMilli(5),
		Bindings: map[string]string{"in": memIn(), "out": out}})
	if !errors.Is(err, runner.ErrOptions) {
		t.Fatalf("an empty range: %v", err)
	}
}
