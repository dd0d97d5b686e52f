package runner_test

import (
	"context"
	"errors"
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

func schemaPipeline[T any](add func(T, int64) T, show func(T) string, opts ...sdk.StateOption) *sdk.Pipeline {
	p := sdk.NewPipeline()
	kv := sdk.Map(sdk.Read[ev](p, "in", sdk.EventTime(at)), func(e ev) sdk.KV[string, int64] { return sdk.KV[string, int64]{Key: e.Key, Value: e.V} })
	cell := sdk.NewValueState[T]("total", opts...)
	sdk.Write(sdk.ParDo(kv, sumFn[T]{cell: cell, add: add, show: show}, sdk.State(cell), sdk.Named("RunningTotal")), "out")
	return p
}

// The job's code at each version; opts declare the state's schema version.
func jobV1(opts ...sdk.StateOption) *sdk.Pipeline {
	return schemaPipeline(func(o totalV1, v int64) totalV1 { return totalV1{o.Sum + v} },
		func(t totalV1) string { return fmt.Sprint(t.Sum) }, opts...)
}

func jobV2(opts ...sdk.StateOption) *sdk.Pipeline {
	return schemaPipeline(func(o totalV2, v int64) totalV2 { return totalV2{o.Sum + v, o.Count + 1} },
		func(t totalV2) string { return fmt.Sprint(t.Sum, "/", t.Count) }, opts...)
}

func jobV3(opts ...sdk.StateOption) *sdk.Pipeline {
	return schemaPipeline(func(o totalV3, v int64) totalV3 { return totalV3{fmt.Sprint(o.Sum, "+", v)} },
		func(t totalV3) string { return t.Sum }, opts...)
}

// TestStateTypeEvolution runs one job again and again from its checkpoints,
// its code changing between runs as the steps say. A run that fails leaves
// the checkpoint as it was: the next run resumes from the same state and
// reads again what the failed run read.
func TestStateTypeEvolution(t *testing.T) {
	steps := []struct {
		name string
		job  *sdk.Pipeline
		feed []any
		// want is the run's output, sorted; or, with err, what the error
		// says besides naming the transform and the state.
		want string
		err  error
	}{
		{name: "v1 writes schema version 1 (the default)",
			job: jobV1(), feed: []any{ev{"a", 1, 5}, ev{"a", 2, 7}}, want: "[a 12 a 5]"},
		{name: "v2 adds a field and bumps the version: the old value reads with the field zero",
			job: jobV2(sdk.SchemaVersion(2)), feed: []any{ev{"a", 3, 1}}, want: "[a 13/1]"},
		{name: "rolled back to v1: the state is newer than the code, found at launch from the checkpoint",
			job: jobV1(), feed: []any{ev{"a", 4, 1}}, err: runner.ErrOptions,
			want: "was written with schema version 2, this job declares 1"},
		{name: "v3 changes a field's type without an upgrade",
			job: jobV3(sdk.SchemaVersion(3)), err: sdk.ErrStateSchema,
			want: "stored with schema version 2, declared 3) does not decode as runner_test.totalV3"},
		{name: "v3 changes a field's type without bumping the version",
			job: jobV3(sdk.SchemaVersion(2)), err: sdk.ErrStateSchema,
			want: "stored with schema version 2, declared 2) does not decode as runner_test.totalV3"},
		{name: "v3 upgrades the v2 value",
			job:  jobV3(sdk.SchemaVersion(3), sdk.UpgradeFrom(2, func(o totalV2) totalV3 { return totalV3{fmt.Sprint(o.Sum)} })),
			want: "[a 13+1]"},
		{name: "v3 reads the value it wrote, no upgrade needed",
			job: jobV3(sdk.SchemaVersion(3)), feed: []any{ev{"a", 5, 2}}, want: "[a 13+1+2]"},
	}
	n := names.Add(1)
	in := fmt.Sprintf("schema-in-%d", n)
	src := memory.NewStream(in)
	ckpt := t.TempDir()
	// replay counts what failed runs read since the last checkpoint.
	replay := 0
	run := func(p *sdk.Pipeline, out string, feed []any) error {
		// Counted before the run starts: it may read what failed runs
		// read before this goroutine looks.
		before := src.Consumed()
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := runner.Run(context.Background(), p, runner.Options{Mode: runner.Stream, StateBackend: "memory", Progress: -1, Parallelism: 1,
				CheckpointDir: ckpt, CheckpointInterval: time.Hour, Stop: stop,
				Bindings: map[string]string{"in": "mem://" + in, "out": out}})
			done <- err
		}()
		src.Send(feed...)
		deadline := time.Now().Add(time.Minute)
		for src.Consumed() < before+replay+len(feed) {
			if time.Now().After(deadline) {
				close(stop)
				return fmt.Errorf("the run read %d values in a minute, want %d (it stopped with %v)", src.Consumed()-before, replay+len(feed), <-done)
			}
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
	for _, s := range steps {
		out, c := memOut()
		err := run(s.job, out, s.feed)
		replay += len(s.feed)
		if s.err == nil {
			replay = 0
			if got := fmt.Sprint(sortedStrings(c.Values())); err != nil || got != s.want {
				t.Fatalf("%s: got %v %v, want %v", s.name, got, err, s.want)
			}
			continue
		}
		if !errors.Is(err, s.err) {
			t.Fatalf("%s: got %v, want %v", s.name, err, s.err)
		}
		for _, w := range []string{`ParDo "RunningTotal"`, `state "total"`, s.want} {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: got %v, want it to say %q", s.name, err, w)
			}
		}
		t.Logf("%s: %v", s.name, err)
	}
}
