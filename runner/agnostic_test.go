package runner_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

// TestMapAfterSlidingWindowsRunsOncePerElement: a Map that follows a
// WindowInto of sliding windows (each element in five) runs once per
// element, before the windows are assigned, and the counts per window are
// those of running it per window. When the WindowInto's late data is read,
// the Map stays after it (late data has the Map's input type) and runs per
// window.
func TestMapAfterSlidingWindowsRunsOncePerElement(t *testing.T) {
	for _, withLate := range []bool{false, true} {
		t.Run(fmt.Sprintf("late data read: %v", withLate), func(t *testing.T) {
			var calls atomic.Int64
			p := sdk.NewPipeline()
			in := sdk.Read[ev](p, "in", sdk.EventTime(at))
			w := sdk.WindowInto(in, windowing.Sliding(10*time.Millisecond, 2*time.Millisecond))
			if withLate {
				sdk.Write(sdk.LateData(w), "late")
			}
			kv := sdk.KeyBy(w, func(e ev) string { calls.Add(1); return e.Key })
			counts := sdk.Count(kv)
			sdk.Write(sdk.Map(counts, func(c sdk.KV[string, int64]) string { return fmt.Sprintf("%s=%d", c.Key, c.Value) }), "out")
			var evs []any
			for i := range 20 {
				evs = append(evs, ev{Key: fmt.Sprint("k", i%2), At: int64(i), V: 1})
			}
			out, col := memOut()
			bind := map[string]string{"in": memIn(evs...), "out": out}
			if withLate {
				bind["late"] = "discard://"
			}
			run(t, p, bind)
			// 20 elements at 0..19 ms; windows of 10 ms every 2 ms: each key
			// has 5 elements in a full window, fewer at the edges.
			got := map[string]int{}
			for _, v := range col.Values() {
				got[v.(string)]++
			}
			want := map[string]int{"k0=1": 2, "k0=2": 2, "k0=3": 2, "k0=4": 2, "k0=5": 6, "k1=1": 2, "k1=2": 2, "k1=3": 2, "k1=4": 2, "k1=5": 6}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("counts: %v, want %v", got, want)
			}
			wantCalls := int64(20)
			if withLate {
				wantCalls = 100
			}
			if n := calls.Load(); n != wantCalls {
				t.Errorf("KeyBy called %d times for 20 elements, want %d", n, wantCalls)
			}
		})
	}
}
