package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/connector"
)

// liveConnector serves an endless source of two splits under the scheme
// weirtest-live, whose readers poll empty every other call.
type liveConnector struct{}

func init() { connector.Register("weirtest-live", liveConnector{}) }

func (liveConnector) OpenSource(context.Context, connector.SourceSpec) (connector.Source, error) {
	return liveSource{}, nil
}

func (liveConnector) OpenSink(context.Context, connector.SinkSpec) (connector.Sink, error) {
	return nil, connector.ErrUnsupported
}

type liveSource struct{}

func (liveSource) Splits(context.Context) ([]connector.Split, error) {
	return []connector.Split{liveSplit("p0"), liveSplit("p1")}, nil
}
func (liveSource) Bounded() bool { return false }
func (liveSource) Close() error  { return nil }

type liveSplit string

func (s liveSplit) ID() string { return string(s) }
func (s liveSplit) Open(context.Context) (connector.Reader, error) {
	return &liveReader{split: string(s)}, nil
}

type liveReader struct {
	split string
	calls int
}

func (r *liveReader) Read(ctx context.Context, buf []connector.Record) (int, error) {
	r.calls++
	if r.calls%2 == 0 {
		return 0, ctx.Err()
	}
	n := min(len(buf), 2)
	for i := range n {
		pos := fmt.Sprintf("%s@%d", r.split, r.calls*10+i)
		if i == 1 {
			buf[i] = connector.Record{Err: fmt.Errorf("bad record"), Pos: pos}
			continue
		}
		buf[i] = connector.Record{Value: map[string]any{"split": r.split, "pos": pos}, Pos: pos}
	}
	return n, nil
}

func (r *liveReader) Close() error { return nil }

func TestCatUnbounded(t *testing.T) {
	out, errs, code := weir(t, "cat", "weirtest-live://topic", "--limit", "3", "--columns", "split,pos")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := "split  pos\np0     p0@10\np1     p1@10\np0     p0@30\n"
	if out != want {
		t.Errorf("output\n%s\nwant\n%s", out, want)
	}
	if !strings.Contains(errs, "count=2") {
		t.Errorf("stderr %q does not count the undecodable records", errs)
	}
	for _, args := range [][]string{
		{"cat", "weirtest-live://topic"},
		{"cat", "weirtest-live://topic", "--limit", "3", "--sort", "pos"},
	} {
		_, errs, code := weir(t, args...)
		if code != 1 || !strings.Contains(errs, "weir: cat: weirtest-live://topic is unbounded: give --limit") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errs)
		}
	}
}
