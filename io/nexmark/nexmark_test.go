package nexmark_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/nexmark"
	"github.com/weir-dev/weir/io/nexmark/model"
)

func open(t *testing.T, uri string, typ reflect.Type) connector.Source {
	t.Helper()
	u, err := connector.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	src, err := connector.OpenSource(context.Background(), connector.SourceSpec{Binding: "events", URI: u, Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// readAll reads a reader to its end in batches of n.
func readAll(t *testing.T, rd connector.Reader, n int) []connector.Record {
	t.Helper()
	var out []connector.Record
	buf := make([]connector.Record, n)
	for {
		k, err := rd.Read(context.Background(), buf)
		out = append(out, buf[:k]...)
		if errors.Is(err, io.EOF) {
			if k != 0 {
				t.Fatalf("io.EOF with %d records", k)
			}
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// The splits together produce exactly the generator's sequence, each split
// in order, whatever their number.
func TestSplitsCoverTheSequence(t *testing.T) {
	want, err := model.Generate(model.Config{Seed: 5, Events: 1001, Rate: 100, OutOfOrderGroupSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{1, 3, 7, 1024} {
		src := open(t, "nexmark://?events=1001&rate=100&seed=5&group=10&splits="+itoa(k), reflect.TypeFor[model.Event]())
		if !src.Bounded() {
			t.Fatal("source is unbounded")
		}
		splits, err := src.Splits(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(splits) != k {
			t.Fatalf("%d splits, want %d", len(splits), k)
		}
		got := make([]model.Event, 0, len(want))
		for _, sp := range splits {
			rd, err := sp.Open(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			last := int64(-1)
			for _, r := range readAll(t, rd, 64) {
				e := r.Value.(model.Event)
				ts, _ := e.Time()
				if !r.HasTimestamp || int64(r.Timestamp) != ts {
					t.Fatalf("record timestamp %v, event time %d", r.Timestamp, ts)
				}
				if ts < last {
					t.Fatalf("%s: event times go back", sp.ID())
				}
				last = ts
				got = append(got, e)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%d splits: %d events, want %d", k, len(got), len(want))
		}
		key := func(e model.Event) string { b, _ := json.Marshal(e); return string(b) }
		count := map[string]int{}
		for _, e := range want {
			count[key(e)]++
		}
		for _, e := range got {
			count[key(e)]--
		}
		for k2, c := range count {
			if c != 0 {
				t.Fatalf("%d splits: event %s off by %d", k, k2, c)
			}
		}
	}
}

// A reader reopened at the position another reported continues where that
// one was.
func TestResume(t *testing.T) {
	src := open(t, "nexmark://?events=500&splits=2", reflect.TypeFor[model.Event]())
	splits, _ := src.Splits(context.Background())
	sp := splits[1].(connector.ResumableSplit)
	rd, _ := sp.Open(context.Background())
	all := readAll(t, rd, 100)
	rd, _ = sp.Open(context.Background())
	buf := make([]connector.Record, 37)
	if n, err := rd.Read(context.Background(), buf); n != 37 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	pos := rd.(connector.Positioned).Position()
	again, err := sp.OpenAt(context.Background(), pos)
	if err != nil {
		t.Fatal(err)
	}
	rest := readAll(t, again, 50)
	if len(rest) != len(all)-37 || !reflect.DeepEqual(rest[0], all[37]) || !reflect.DeepEqual(rest[len(rest)-1], all[len(all)-1]) {
		t.Fatalf("resumed at %s: %d records, want %d from the 38th", pos, len(rest), len(all)-37)
	}
	if _, err := sp.OpenAt(context.Background(), []byte("251")); err == nil || !strings.HasPrefix(err.Error(), "nexmark: bad position") {
		t.Errorf("position beyond the split: %v", err)
	}
}

// weir cp and weir cat read the events as JSON.
func TestJSON(t *testing.T) {
	want, _ := model.Generate(model.Config{Events: 60})
	for _, typ := range []reflect.Type{reflect.TypeFor[json.RawMessage](), reflect.TypeFor[map[string]any]()} {
		src := open(t, "nexmark://?events=60&splits=1", typ)
		splits, _ := src.Splits(context.Background())
		rd, _ := splits[0].Open(context.Background())
		recs := readAll(t, rd, 7)
		if len(recs) != 60 {
			t.Fatalf("%v: %d records", typ, len(recs))
		}
		for i, r := range recs {
			b, err := json.Marshal(r.Value)
			if err != nil {
				t.Fatal(err)
			}
			var e model.Event
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(e, want[i]) {
				t.Fatalf("%v: record %d is %s, want %+v", typ, i, b, want[i])
			}
		}
	}
}

func TestBadURIs(t *testing.T) {
	for uri, want := range map[string]string{
		"nexmark://?events=0":                     "events=0: want a number of events",
		"nexmark://?events=10&rate=-1&splits=0":   "rate=-1",
		"nexmark://?eventz=10":                    `unknown option "eventz"`,
		"nexmark://?events=1&events=2":            `option "events" given twice`,
		"nexmark://?start=yesterday":              "start=yesterday",
		"nexmark://?events=10&splits=9999&lead=x": "splits=9999: want 1 to 1024",
	} {
		u, _ := connector.ParseURI(uri)
		_, err := connector.OpenSource(context.Background(), connector.SourceSpec{Binding: "events", URI: u, Type: reflect.TypeFor[model.Event]()})
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, connector.ErrUnsupported) {
			t.Errorf("%s: %v, want an unsupported error saying %q", uri, err, want)
		}
	}
	u, _ := connector.ParseURI("nexmark://?events=10")
	_, err := connector.OpenSource(context.Background(), connector.SourceSpec{Binding: "events", URI: u, Type: reflect.TypeFor[model.Bid]()})
	if !errors.Is(err, connector.ErrSchema) {
		t.Errorf("reading bids: %v, want a schema error", err)
	}
	if _, err := connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "out", URI: u}); !errors.Is(err, connector.ErrUnsupported) {
		t.Errorf("sink: %v", err)
	}
}

func TestParseURIOptions(t *testing.T) {
	cfg, splits, err := nexmark.ParseURI("events=5&rate=2.5&seed=9&splits=3&group=4&lead=0&start=1000")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Events != 5 || cfg.Rate != 2.5 || cfg.Seed != 9 || splits != 3 || cfg.OutOfOrderGroupSize != 4 || cfg.IDLead >= 0 || cfg.Start.UnixMilli() != 1000 {
		t.Errorf("parsed %+v, %d splits", cfg, splits)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
