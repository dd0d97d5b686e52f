// Package nexmark is the nexmark:// connector: a bounded source of the
// Nexmark benchmark's events (model.Event: a person, an auction or a bid),
// generated in the process as it is read, so that the Nexmark queries can
// run without any input files or broker.
//
// URIs:
//
//	nexmark://?events=N&rate=R&seed=S&splits=K&group=G&start=TIME&lead=L
//
// events is the number of events (default 100000), rate the events per
// second of event time (default 10000), seed selects the data set (default
// 0), group the out-of-order group size of the event ids (default 1: in
// order), start the first event time (RFC 3339 or epoch milliseconds;
// default 2015-07-15T00:00:00Z) and lead how far beyond the latest person or
// auction a random reference may reach (default 10, Beam's; 0 for none).
// See model.Config for what each means.
//
// The source has splits=K splits (default: the number of CPUs, the runner's
// default parallelism): split k generates the events at positions k, k+K,
// k+2K, ..., so that every split advances through event time at the same
// pace and the union is the same sequence whatever K is. Give K at least the
// run's parallelism, or some readers have nothing to do; a reader with
// several splits reads them in turn, which holds its watermark back until
// it reaches the last. Every split is resumable: its position is the number
// of events it has produced.
//
// Records are model.Event values; a binding typed json.RawMessage or
// map[string]any (weir cp, weir cat) gets each event's JSON instead. Each
// record carries its event time as its timestamp, and no Pos: a generated
// record is never unreadable, and formatting one per record would cost more
// than generating it.
//
// Dependency direction: nexmark imports io/connector and io/nexmark/model,
// and registers itself under "nexmark" in init; the runner and cmd/weir
// import it for the side effect.
package nexmark

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/nexmark/model"
	"github.com/weir-dev/weir/windowing"
)

// Scheme is the URI scheme of this connector.
const Scheme = "nexmark"

// MaxSplits bounds the splits= option.
const MaxSplits = 1024

func init() { connector.Register(Scheme, nexmarkConnector{}) }

type nexmarkConnector struct{}

func (nexmarkConnector) OpenSink(_ context.Context, spec connector.SinkSpec) (connector.Sink, error) {
	return nil, fmt.Errorf("nexmark: %s: nexmark:// can only be read: %w", spec.URI.Redacted(), connector.ErrUnsupported)
}

func (nexmarkConnector) OpenSource(ctx context.Context, spec connector.SourceSpec) (connector.Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, splits, err := ParseURI(spec.URI.RawQuery)
	if err != nil {
		return nil, err
	}
	var conv func(model.Event) (any, error)
	switch spec.Type {
	case reflect.TypeFor[model.Event]():
	case reflect.TypeFor[json.RawMessage]():
		conv = func(e model.Event) (any, error) {
			b, err := marshal(e)
			return json.RawMessage(b), err
		}
	case reflect.TypeFor[map[string]any]():
		conv = func(e model.Event) (any, error) {
			b, err := marshal(e)
			if err != nil {
				return nil, err
			}
			var m map[string]any
			err = json.Unmarshal(b, &m)
			return m, err
		}
	default:
		return nil, fmt.Errorf("nexmark: records are model.Event, not %v: %w", spec.Type, connector.ErrSchema)
	}
	s := &source{cfg: cfg, conv: conv}
	// Fail now, not in a reader, on a configuration the generator refuses.
	if _, err := model.NewGenerator(cfg); err != nil {
		return nil, fmt.Errorf("nexmark: %w", err)
	}
	for k := range splits {
		s.splits = append(s.splits, &split{s: s, k: int64(k), of: int64(splits)})
	}
	return s, nil
}

// marshal is an event's JSON as the file and Kafka sinks write it: without
// escaping HTML characters (the bids' URLs have '&').
func marshal(e model.Event) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// ParseURI reads the query of a nexmark:// URI ("events=1000&rate=500")
// into a generator configuration and a number of splits. Unknown options
// are errors.
func ParseURI(rawQuery string) (model.Config, int, error) {
	var (
		cfg    model.Config
		splits = min(runtime.NumCPU(), MaxSplits)
		bad    []string
	)
	q, err := parseQuery(rawQuery)
	if err != nil {
		return cfg, 0, err
	}
	for key, v := range q {
		switch key {
		case "events":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				bad = append(bad, fmt.Sprintf("events=%s: want a number of events, at least 1", v))
			}
			cfg.Events = n
		case "rate":
			r, err := strconv.ParseFloat(v, 64)
			if err != nil || !(r > 0) {
				bad = append(bad, fmt.Sprintf("rate=%s: want a positive number of events per second", v))
			}
			cfg.Rate = r
		case "seed":
			s, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				bad = append(bad, fmt.Sprintf("seed=%s: want an unsigned integer", v))
			}
			cfg.Seed = s
		case "splits":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > MaxSplits {
				bad = append(bad, fmt.Sprintf("splits=%s: want 1 to %d", v, MaxSplits))
			}
			splits = n
		case "group":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				bad = append(bad, fmt.Sprintf("group=%s: want an out-of-order group size, at least 1", v))
			}
			cfg.OutOfOrderGroupSize = n
		case "lead":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				bad = append(bad, fmt.Sprintf("lead=%s: want 0 or more", v))
			}
			cfg.IDLead = n
			if n == 0 {
				cfg.IDLead = -1 // model.Config's none
			}
		case "start":
			t, err := parseTime(v)
			if err != nil {
				bad = append(bad, fmt.Sprintf("start=%s: want an RFC 3339 time or epoch milliseconds", v))
			}
			cfg.Start = t
		default:
			bad = append(bad, fmt.Sprintf("unknown option %q (known: events, rate, seed, splits, group, start, lead)", key))
		}
	}
	if len(bad) > 0 {
		return cfg, 0, fmt.Errorf("nexmark: %s: %w", strings.Join(bad, "; "), connector.ErrUnsupported)
	}
	cfg.EnsureDefaults()
	return cfg, splits, cfg.Validate()
}

// parseQuery splits a query into its options, refusing repeated ones.
func parseQuery(raw string) (map[string]string, error) {
	q := map[string]string{}
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		if _, dup := q[k]; dup {
			return nil, fmt.Errorf("nexmark: option %q given twice: %w", k, connector.ErrUnsupported)
		}
		q[k] = v
	}
	return q, nil
}

func parseTime(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

type source struct {
	cfg    model.Config
	conv   func(model.Event) (any, error) // nil: the events themselves
	splits []connector.Split
}

func (s *source) Splits(ctx context.Context) ([]connector.Split, error) {
	return append([]connector.Split(nil), s.splits...), ctx.Err()
}

func (s *source) Bounded() bool { return true }

func (s *source) Close() error { return nil }

// split generates the positions k, k+of, k+2·of, ... below cfg.Events.
type split struct {
	s     *source
	k, of int64
}

func (sp *split) ID() string { return fmt.Sprintf("nexmark-%d-of-%d", sp.k, sp.of) }

// size is the number of events of the split.
func (sp *split) size() int64 {
	n := sp.s.cfg.Events
	if sp.k >= n {
		return 0
	}
	return (n-1-sp.k)/sp.of + 1
}

func (sp *split) Open(ctx context.Context) (connector.Reader, error) { return sp.OpenAt(ctx, nil) }

// OpenAt opens the split after the number of events a reader reported.
func (sp *split) OpenAt(ctx context.Context, pos []byte) (connector.Reader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	g, err := model.NewGenerator(sp.s.cfg)
	if err != nil {
		return nil, fmt.Errorf("nexmark: %w", err)
	}
	r := &reader{sp: sp, g: g, end: sp.size()}
	if len(pos) > 0 {
		i, err := strconv.ParseInt(string(pos), 10, 64)
		if err != nil || i < 0 || i > r.end {
			return nil, fmt.Errorf("nexmark: bad position %q for %s of %d events", pos, sp.ID(), r.end)
		}
		r.i = i
	}
	return r, nil
}

type reader struct {
	sp     *split
	g      *model.Generator
	i, end int64 // events produced, and in all
}

func (r *reader) Read(ctx context.Context, buf []connector.Record) (int, error) {
	if r.i >= r.end {
		return 0, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := int(min(int64(len(buf)), r.end-r.i))
	for j := range n {
		pos := r.sp.k + (r.i+int64(j))*r.sp.of
		// An event's time is its position's (Event.Time).
		rec := connector.Record{Timestamp: windowing.Time(r.g.Timestamp(pos)), HasTimestamp: true}
		if r.sp.s.conv == nil {
			rec.Value = r.g.Boxed(pos)
		} else {
			v, err := r.sp.s.conv(r.g.Event(pos))
			if err != nil {
				// Not the data's fault: stop the run.
				return 0, fmt.Errorf("nexmark: event %d: %w", pos, err)
			}
			rec.Value = v
		}
		buf[j] = rec
	}
	r.i += int64(n)
	return n, nil
}

func (r *reader) Close() error { return nil }

// Position is the number of events the reader has produced.
func (r *reader) Position() []byte { return strconv.AppendInt(nil, r.i, 10) }
