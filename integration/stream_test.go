package integration

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

type tick struct {
	Src string
	At  int64
}

// idlePipeline counts ticks of two sources per 1-minute window.
func idlePipeline(idleness time.Duration) *sdk.Pipeline {
	p := sdk.NewPipeline()
	at := sdk.EventTime(func(t tick) (sdk.Time, error) { return sdk.Time(t.At), nil })
	a := sdk.Read[tick](p, "a", at, sdk.Idleness(idleness))
	b := sdk.Read[tick](p, "b", at, sdk.Idleness(idleness))
	w := sdk.WindowInto(sdk.Flatten(a, b), windowing.Fixed(time.Minute))
	sdk.Write(sdk.Count(sdk.KeyBy(w, func(t tick) string { return "all" })), "counts")
	return p
}

// TestIdleInputDoesNotHoldTheWatermark runs two unbounded inputs, one of
// which never sends anything. With an idleness timeout, windows of the other
// input fire while the stream runs; without one, nothing fires until the
// drain.
func TestIdleInputDoesNotHoldTheWatermark(t *testing.T) {
	for _, c := range []struct {
		idleness  time.Duration
		wantFires bool
	}{{200 * time.Millisecond, true}, {0, false}} {
		t.Run(fmt.Sprintf("idleness=%s", c.idleness), func(t *testing.T) {
			n := seq.Add(1)
			a, b := memory.NewStream(fmt.Sprintf("idle-a-%d", n)), memory.NewStream(fmt.Sprintf("idle-b-%d", n))
			col := memory.NewCollector(fmt.Sprintf("idle-out-%d", n))
			drain := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				_, err := runner.Run(context.Background(), idlePipeline(c.idleness), quietOptions(runner.Options{
					Mode: runner.Stream, StateBackend: "memory", Drain: drain,
					Bindings: map[string]string{"a": fmt.Sprintf("mem://idle-a-%d", n), "b": fmt.Sprintf("mem://idle-b-%d", n), "counts": fmt.Sprintf("mem://idle-out-%d", n)},
				}))
				done <- err
			}()
			// Five minutes of event time on a, nothing ever on b.
			for i := 0; i < 300; i++ {
				a.Send(tick{"a", int64(i) * 1000})
			}
			// With idleness, windows fire once b is idle: wait for
			// them (a minute at most). Without, none may fire: watch for
			// two seconds once a is read.
			fired := false
			deadline := time.Now().Add(time.Minute)
			if !c.wantFires {
				waitConsumed(t, a, 300)
				deadline = time.Now().Add(2 * time.Second)
			}
			for time.Now().Before(deadline) && !fired {
				fired = col.Written() > 0
				time.Sleep(10 * time.Millisecond)
			}
			if fired != c.wantFires {
				t.Errorf("windows fired before the drain: %v, want %v", fired, c.wantFires)
			}
			close(drain)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(sortedAny(col.Values())); got != "[{all 60} {all 60} {all 60} {all 60} {all 60}]" {
				t.Errorf("after the drain: %s", got)
			}
			b.Close()
		})
	}
}

func sortedAny(vs []any) []string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprint(v)
	}
	sort.Strings(s)
	return s
}

// TestStopLeavesPendingWindowsUnfired stops a stream: windows the watermark
// has passed are written and committed; later ones are not fired.
func TestStopLeavesPendingWindowsUnfired(t *testing.T) {
	n := seq.Add(1)
	a := memory.NewStream(fmt.Sprintf("stop-a-%d", n))
	memory.NewStream(fmt.Sprintf("stop-b-%d", n)).Close() // b ends at once
	col := memory.NewCollector(fmt.Sprintf("stop-out-%d", n))
	stop := make(chan struct{})
	done := make(chan *runner.Result, 1)
	go func() {
		res, err := runner.Run(context.Background(), idlePipeline(0), quietOptions(runner.Options{
			Mode: runner.Stream, StateBackend: "memory", Stop: stop,
			Bindings: map[string]string{"a": fmt.Sprintf("mem://stop-a-%d", n), "b": fmt.Sprintf("mem://stop-b-%d", n), "counts": fmt.Sprintf("mem://stop-out-%d", n)},
		}))
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	for i := 0; i < 150; i++ { // 2.5 minutes: the first two windows can close
		a.Send(tick{"a", int64(i) * 1000})
	}
	deadline := time.Now().Add(time.Minute)
	for a.Consumed() < 150 || col.Written() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("read %d, written %d", a.Consumed(), col.Written())
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	res := <-done
	if res == nil || !res.Stopped || res.Drained {
		t.Fatalf("result %+v, want stopped", res)
	}
	// The watermark reached 149s: windows [0,60s) and [60s,120s) fired,
	// [120s,180s) did not.
	if got := fmt.Sprint(sortedAny(col.Values())); got != "[{all 60} {all 60}]" {
		t.Errorf("committed %s, want the two closed windows", got)
	}
}

// TestProfileViewsAllowedLateness runs profileviews with disorder beyond the
// watermark's bound but within the allowed lateness: late panes update the
// windows (accumulating), and each window's last pane holds its full count.
func TestProfileViewsAllowedLateness(t *testing.T) {
	views, _, err := events.Generate(events.GenConfig{Seed: 11, PageViews: 20000, Profiles: 100, Span: 12 * time.Hour, Disorder: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cfg := pipelines.ProfileViewsConfig{Window: 30 * time.Minute, OutOfOrderness: 2 * time.Minute, AllowedLateness: 15 * time.Minute}
	// Views up to 10m behind the highest time seen are never later than
	// window end + 15m lateness under a 2m bound; only the very late
	// views (6h) are dropped, so the totals do not depend on timing.
	want, wantLate := refProfileViews(views, cfg)
	p, err := pipelines.ProfileViews(cfg)
	if err != nil {
		t.Fatal(err)
	}
	out := stream(t, p, map[string][]any{"pageviews": anys(views)}, []string{"counts", "late"})
	rows := typed[pipelines.ProfileViewCount](t, out["counts"])
	final := map[[3]int64]pipelines.ProfileViewCount{}
	panes := 0
	for _, r := range rows {
		k := [3]int64{r.ProfileID, r.WindowStart, r.WindowEnd}
		if prev, ok := final[k]; ok {
			panes++
			if r.Count < prev.Count {
				t.Fatalf("accumulating panes went down: %+v after %+v", r, prev)
			}
		}
		if r.Count > final[k].Count {
			final[k] = r
		}
	}
	if panes == 0 {
		t.Fatal("no window fired a late pane; the test would not exercise allowed lateness")
	}
	t.Logf("%d windows, %d late panes", len(final), panes)
	var got []pipelines.ProfileViewCount
	for _, r := range final {
		got = append(got, r)
	}
	sameRows(t, "final panes", got, want)
	sameRows(t, "late", typed[events.PageViewEvent](t, out["late"]), wantLate)
}
