package runner_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
)

// slow:// is a sink that takes a while per write and measures, at each
// write, how far the source (slowIn) has read ahead of it. The
// measure is exact: only the sink's writer changes what it has written.
type slowSink struct{}

var (
	slowIn      atomic.Pointer[memory.Stream]
	slowWritten atomic.Int64
	slowLead    atomic.Int64 // the largest lead seen
)

func init() { connector.Register("slow", slowSink{}) }

func (slowSink) OpenSource(context.Context, connector.SourceSpec) (connector.Source, error) {
	return nil, connector.ErrUnsupported
}
func (s slowSink) OpenSink(context.Context, connector.SinkSpec) (connector.Sink, error) {
	return s, nil
}
func (slowSink) Write(_ context.Context, vs []any) error {
	time.Sleep(2 * time.Millisecond)
	// The source read on while this write slept: the lead is largest
	// now, before the write counts.
	w := slowWritten.Load()
	if lead := int64(slowIn.Load().Consumed()) - w; lead > slowLead.Load() {
		slowLead.Store(lead)
	}
	slowWritten.Store(w + int64(len(vs)))
	return nil
}
func (slowSink) Commit(context.Context) error { return nil }
func (slowSink) Abort() error                 { return nil }

// TestBackpressure checks that a slow sink slows its source: the source
// never reads more than the bounded queues between them can hold ahead of
// what the sink has written.
func TestBackpressure(t *testing.T) {
	const batch, queue, n = 64, 4, 20000
	vals := make([]any, n)
	for i := range vals {
		vals[i] = ev{Key: "k", At: int64(i), V: int64(i)}
	}
	name := fmt.Sprintf("bp-%d", names.Add(1))
	slowIn.Store(memory.NewBounded(name, vals...))
	slowWritten.Store(0)
	slowLead.Store(0)
	p := sdk.NewPipeline()
	in := sdk.Read[ev](p, "in", sdk.EventTime(at))
	sdk.Write(sdk.Filter(in, func(ev) bool { return true }), "out")
	// One sink writer (Parallelism 1): its writes do not overlap.
	if _, err := runner.Run(context.Background(), p, runner.Options{
		Bindings:  map[string]string{"in": "mem://" + name, "out": "slow://"},
		BatchSize: batch, QueueLength: queue, Parallelism: 1, Progress: -1,
	}); err != nil {
		t.Fatal(err)
	}
	if slowWritten.Load() != n {
		t.Fatalf("wrote %d of %d", slowWritten.Load(), n)
	}
	// One read batch, a batch being filled, the queue, and the batch being
	// written.
	bound := int64((queue + 3) * batch)
	t.Logf("largest lead of the source over the sink: %d records (bound %d)", slowLead.Load(), bound)
	if slowLead.Load() > bound {
		t.Errorf("the source ran %d records ahead of a slow sink; bounded queues allow %d", slowLead.Load(), bound)
	}
}
