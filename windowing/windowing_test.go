package windowing

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

func ms(d time.Duration) Time { return FromDuration(d) }

func TestAssignWindows(t *testing.T) {
	for _, c := range []struct {
		fn   WindowFn
		t    Time
		want []Window
	}{
		{Fixed(time.Hour), ms(90 * time.Minute), []Window{{ms(time.Hour), ms(2 * time.Hour)}}},
		{Fixed(time.Hour), ms(time.Hour), []Window{{ms(time.Hour), ms(2 * time.Hour)}}},
		{Fixed(time.Hour), ms(time.Hour) - 1, []Window{{0, ms(time.Hour)}}},
		{Fixed(time.Hour), -1, []Window{{-ms(time.Hour), 0}}},
		{Sliding(time.Hour, 30*time.Minute), ms(45 * time.Minute), []Window{{ms(30 * time.Minute), ms(90 * time.Minute)}, {0, ms(time.Hour)}}},
		{Sliding(time.Hour, 20*time.Minute), ms(60 * time.Minute), []Window{{ms(60 * time.Minute), ms(120 * time.Minute)}, {ms(40 * time.Minute), ms(100 * time.Minute)}, {ms(20 * time.Minute), ms(80 * time.Minute)}}},
		{Sessions(5 * time.Minute), 7, []Window{{7, 7 + ms(5*time.Minute)}}},
		{Global(), 7, []Window{GlobalWindow}},
	} {
		got := c.fn.AssignWindows(c.t, nil)
		if fmt.Sprintf("%d", got) != fmt.Sprintf("%d", c.want) {
			t.Errorf("%s at %d: got %v, want %v", c.fn, c.t, got, c.want)
		}
		for _, w := range got {
			if !w.Contains(c.t) {
				t.Errorf("%s: window %v does not contain %d", c.fn, w, c.t)
			}
		}
	}
}

func TestMergeSessions(t *testing.T) {
	s := Sessions(10)
	for _, c := range []struct {
		in   []Window
		want string
	}{
		{[]Window{{0, 10}, {20, 30}}, "[]"},
		{[]Window{{0, 10}, {10, 20}}, "[]"}, // touching windows do not merge
		{[]Window{{0, 10}, {5, 15}}, "[{[{0 10} {5 15}] {0 15}}]"},
		{[]Window{{20, 30}, {0, 10}, {25, 35}, {5, 15}}, "[{[{0 10} {5 15}] {0 15}} {[{20 30} {25 35}] {20 35}}]"},
		{[]Window{{0, 10}, {9, 19}, {18, 28}}, "[{[{0 10} {9 19} {18 28}] {0 28}}]"},
		{[]Window{{0, 100}, {10, 20}}, "[{[{0 100} {10 20}] {0 100}}]"},
	} {
		if got := fmtMerges(s.MergeWindows(c.in)); got != c.want {
			t.Errorf("merge %v: got %s, want %s", c.in, got, c.want)
		}
	}
}

func fmtMerges(ms []Merge) string {
	var parts []string
	for _, m := range ms {
		var from []string
		for _, w := range m.From {
			from = append(from, fmt.Sprintf("{%d %d}", w.Start, w.End))
		}
		parts = append(parts, fmt.Sprintf("{[%s] {%d %d}}", strings.Join(from, " "), m.To.Start, m.To.End))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		s    Strategy
		want string
	}{
		{Strategy{Fn: Fixed(0)}, "fixed window size 0s must be positive"},
		{Strategy{Fn: Sliding(time.Minute, time.Hour)}, "period 1h0m0s is longer than its size"},
		{Strategy{Fn: Sessions(-time.Second)}, "session gap -1s must be positive"},
		{Strategy{Fn: Global(), AllowedLateness: -1}, "allowed lateness -1ns must not be negative"},
		{Strategy{Fn: Global(), Trigger: Repeatedly(Firing{})}, "Repeatedly needs a count or a delay"},
		{Strategy{Fn: Fixed(time.Minute), Trigger: AtWatermark().WithEarlyFirings(AfterCount(-1))}, "early firing count -1"},
	} {
		err := c.s.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error with %q", c.s, err, c.want)
		}
	}
	if err := (Strategy{Fn: Fixed(time.Minute), AllowedLateness: time.Hour}).Validate(); err != nil {
		t.Errorf("valid strategy: %v", err)
	}
}

func TestLateness(t *testing.T) {
	s := Strategy{Fn: Fixed(10), AllowedLateness: 5 * time.Millisecond}
	w := Window{0, 10}
	// Maximum timestamp 9, plus 5: late once the watermark is past 14.
	for wm, want := range map[Time]bool{9: false, 14: false, 15: true} {
		if got := s.IsLate(w, wm); got != want {
			t.Errorf("IsLate(%v, %d) = %v, want %v", w, wm, got, want)
		}
	}
	if s.IsLate(GlobalWindow, EndOfGlobalWindow) {
		t.Error("the global window is late before the end of time")
	}
}

// TestWatermarks runs the scenarios of testdata/watermark against a Merger
// and SplitWatermarks:
//
//	merger n=N [idle=D]     a new merger of N inputs (idleness timeout D)
//	advance i=I wm=T now=P  input I reports watermark T at processing time P
//	active i=I now=P        input I delivered data without a watermark
//	tick now=P              apply the idleness timeout at P
//	idle i=I                input I says it is idle
//	split bound=D           a new split tracker with out-of-orderness D
//	observe T...            the split sees elements at times T...
//
// Each command prints the merged (or split) watermark.
func TestWatermarks(t *testing.T) {
	datadriven.RunTest(t, "testdata/watermark", func(t *testing.T, d *datadriven.TestData) string {
		var m *Merger

		arg := func(key string) string {
			for _, a := range d.CmdArgs {
				if a.Key == key && len(a.Vals) > 0 {
					return a.Vals[0]
				}
			}
			d.Fatalf(t, "missing %s=", key)
			return ""
		}
		num := func(key string) Time {
			s := arg(key)
			if s == "+inf" {
				return MaxTime
			}
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				d.Fatalf(t, "%s: %v", key, err)
			}
			return Time(v)
		}
		switch d.Cmd {
		case "merger":
			idle := time.Duration(0)
			for _, a := range d.CmdArgs {
				if a.Key == "idle" {
					idle = time.Duration(mustInt(t, a.Vals[0])) * time.Millisecond
				}
			}
			m = NewMerger(int(num("n")), idle, 0)
			mergers[d.Pos[:strings.Index(d.Pos, ":")]] = m
		case "split":
			splits[d.Pos[:strings.Index(d.Pos, ":")]] = NewSplitWatermark(WatermarkStrategy{OutOfOrderness: time.Duration(num("bound")) * time.Millisecond})
			s := splits[d.Pos[:strings.Index(d.Pos, ":")]]
			return s.Current().String()
		case "observe":
			key := d.Pos[:strings.Index(d.Pos, ":")]
			s := splits[key]
			for _, a := range d.CmdArgs {
				s.Observe(Time(mustInt(t, a.Key)))
			}
			splits[key] = s
			return fmt.Sprint(int64(s.Current()))
		}
		m = mergers[d.Pos[:strings.Index(d.Pos, ":")]]
		switch d.Cmd {
		case "advance":
			m.Advance(int(num("i")), num("wm"), num("now"))
		case "active":
			m.Active(int(num("i")), num("now"))
		case "tick":
			m.Tick(num("now"))
		case "idle":
			m.SetIdle(int(num("i")))
		}
		out := fmt.Sprint(int64(m.Current()))
		switch m.Current() {
		case MinTime:
			out = "-inf"
		case MaxTime:
			out = "+inf"
		}
		if m.AllIdle() {
			out += " (all idle)"
		}
		return out
	})
}

var (
	mergers = map[string]*Merger{}
	splits  = map[string]SplitWatermark{}
)

func mustInt(t *testing.T, s string) int64 {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
