package runner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
)

// Three versions of one state type, as a job's code evolves between runs.
type totalV1 struct{ Sum int64 }
type totalV2 struct {
	Sum   int64
	Count int64 // added
}
type totalV3 struct{ Sum string } // incompatible: a field changed type

type sumFn[T any] struct {
	cell sdk.ValueState[T]
	add  func(old T, v int64) T
	show func(T) string
}

func (f sumFn[T]) ProcessElement(c *sdk.Context, kv sdk.KV[string, int64], emit sdk.Emitter[string]) error {
	old, _, err := f.cell.Read(c)
	if err != nil {
		return err
	}
	nv := f.add(old, kv.Value)
	if err := f.cell.Write(c, nv); err != nil {
		return err
	}
	emit.Emit(kv.Key + " " + f.show(nv))
	return nil
}

func schemaPipeline[T any](add func(T, int64) T, show func(T) string) *sdk.Pipeline {
	p := sdk.NewPipeline()
	kv := sdk.Map(sdk.Read[ev](p, "in", sdk.EventTime(at)), func(e ev) sdk.KV[string, int64] { return sdk.KV[string, int64]{Key: e.Key, Value: e.V} })
	cell := sdk.NewValueState[T]("total")
	sdk.Write(sdk.ParDo(kv, sumFn[T]{cell: cell, add: add, show: show}, sdk.State(cell), sdk.Named("RunningTotal")), "out")
	return p
}

// TestStateTypeEvolution stops a job with checkpoints, then resumes it with
// a field added to its state type (the old state reads, the new field is
// zero), then with a field whose type changed (a clear error naming the
// transform and the state).
func TestStateTypeEvolution(t *testing.T) {
	n := names.Add(1)
	in := fmt.Sprintf("schema-in-%d", n)
	src := memory.NewStream(in)
	ckpt := t.TempDir()
	run := func(p *sdk.Pipeline, out string, feed []any) error {
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := runner.Run(context.Background(), p, runner.Options{Mode: runner.Stream, StateBackend: "memory", Progress: -1, Parallelism: 1,
				CheckpointDir: ckpt, CheckpointInterval: time.Hour, Stop: stop,
				Bindings: map[string]string{"in": "mem://" + in, "out": out}})
			done <- err
		}()
		before := src.Consumed()
		src.Send(feed...)
		for src.Consumed() < before+len(feed) {
			select {
			case err := <-done:
				return err
			case <-time.After(2 * time.Millisecond):
			}
		}
		time.Sleep(50 * time.Millisecond)
		close(stop)
		return <-done
	}
	out1, c1 := memOut()
	err := run(schemaPipeline(func(o totalV1, v int64) totalV1 { return totalV1{o.Sum + v} }, func(t totalV1) string { return fmt.Sprint(t.Sum) }),
		out1, []any{ev{"a", 1, 5}, ev{"a", 2, 7}})
	if err != nil || fmt.Sprint(sortedStrings(c1.Values())) != "[a 12 a 5]" {
		t.Fatalf("v1: %v %v", err, c1.Values())
	}
	out2, c2 := memOut()
	err = run(schemaPipeline(func(o totalV2, v int64) totalV2 { return totalV2{o.Sum + v, o.Count + 1} }, func(t totalV2) string { return fmt.Sprint(t.Sum, "/", t.Count) }),
		out2, []any{ev{"a", 3, 1}})
	if err != nil || fmt.Sprint(c2.Values()) != "[a 13/1]" {
		t.Fatalf("v2 after v1: %v %v, want [a 13/1]", err, c2.Values())
	}
	out3, _ := memOut()
	err = run(schemaPipeline(func(o totalV3, v int64) totalV3 { return o }, func(t totalV3) string { return t.Sum }),
		out3, []any{ev{"a", 4, 1}})
	if err == nil || !strings.Contains(err.Error(), `ParDo "RunningTotal"`) || !strings.Contains(err.Error(), `state "total"`) {
		t.Fatalf("v3 after v2: got %v, want an error naming the transform and the state", err)
	}
	t.Logf("incompatible change: %v", err)
}
