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

// slowSink is a connector whose sink takes a while per write.
type slowSink struct{ written *atomic.Int64 }

var slowWritten atomic.Int64

func init() { connector.Register("slow", slowSink{&slowWritten}) }

func (s slowSink) OpenSource(context.Context, connector.SourceSpec) (connector.Source, error) {
	return nil, connector.ErrUnsupported
}
func (s slowSink) OpenSink(context.Context, connector.SinkSpec) (connector.Sink, error) {
	return s, nil
}
func (s slowSink) Write(_ context.Context, vs []any) error {
	time.Sleep(2 * time.Millisecond)
	s.written.Add(int64(len(vs)))
	return nil
}
func (s slowSink) Commit(context.Context) error { return nil }
func (s slowSink) Abort() error                 { return nil }

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
	src := memory.NewBounded(name, vals...)
	p := sdk.NewPipeline()
	in := sdk.Read[ev](p, "in", sdk.EventTime(at))
	sdk.Write(sdk.Filter(in, func(ev) bool { return true }), "out")
	slowWritten.Store(0)
	done := make(chan error, 1)
	go func() {
		_, err := runner.Run(context.Background(), p, runner.Options{
			Bindings:  map[string]string{"in": "mem://" + name, "out": "slow://"},
			BatchSize: batch, QueueLength: queue, Parallelism: 1, Progress: -1,
		})
		done <- err
	}()
	// One read batch, a batch being filled, the queue, and the batch being
	// written.
	bound := int64((queue + 3) * batch)
	var maxLead int64
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if slowWritten.Load() != n {
				t.Fatalf("wrote %d of %d", slowWritten.Load(), n)
			}
			t.Logf("largest lead of the source over the sink: %d records (bound %d)", maxLead, bound)
			if maxLead > bound {
				t.Errorf("the source ran %d records ahead of a slow sink; bounded queues allow %d", maxLead, bound)
			}
			return
		default:
		}
		// Read the sink first: the lead can only be over-estimated.
		w := slowWritten.Load()
		lead := int64(src.Consumed()) - w
		maxLead = max(maxLead, lead)
		time.Sleep(200 * time.Microsecond)
	}
}
