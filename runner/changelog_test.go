package runner_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
)

// runningTotal emits each key's running total, kept in a value cell.
type runningTotal struct{ cell sdk.ValueState[int64] }

func (f runningTotal) ProcessElement(c *sdk.Context, kv sdk.KV[string, int64], emit sdk.Emitter[string]) error {
	old, _, err := f.cell.Read(c)
	if err != nil {
		return err
	}
	if err := f.cell.Write(c, old+kv.Value); err != nil {
		return err
	}
	emit.Emit(fmt.Sprintf("%s %d", kv.Key, old+kv.Value))
	return nil
}

func totalsPipeline() *sdk.Pipeline {
	p := sdk.NewPipeline()
	kv := sdk.Map(sdk.Read[ev](p, "in", sdk.EventTime(at)), func(e ev) sdk.KV[string, int64] { return sdk.KV[string, int64]{Key: e.Key, Value: e.V} })
	cell := sdk.NewValueState[int64]("total")
	sdk.Write(sdk.ParDo(kv, runningTotal{cell: cell}, sdk.State(cell), sdk.Named("Total")), "out")
	return p
}

// TestChangelogRestoresStateElsewhere runs a job with a changelog, stops
// it, and resumes it from an empty state directory (another machine): the
// running totals go on from the changelog. A resume that does not say
// --changelog, or a changelog without checkpoints, is refused.
func TestChangelogRestoresStateElsewhere(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	changelog := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/totals?partitions=4"
	in := fmt.Sprintf("clog-in-%d", names.Add(1))
	src := memory.NewStream(in)
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "checkpoints")
	opts := func(out, stateDir, clog string) runner.Options {
		return runner.Options{Mode: runner.Stream, Progress: -1, Parallelism: 2, StateDir: stateDir, Logger: slog.New(slog.DiscardHandler),
			CheckpointDir: ckpt, CheckpointInterval: 30 * time.Millisecond, Changelog: clog,
			Bindings: map[string]string{"in": "mem://" + in, "out": out}}
	}
	runUntil := func(o runner.Options, feed []any) error {
		stop := make(chan struct{})
		o.Stop = stop
		done := make(chan error, 1)
		go func() {
			_, err := runner.Run(context.Background(), totalsPipeline(), o)
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
		time.Sleep(100 * time.Millisecond)
		close(stop)
		return <-done
	}

	if _, err := runner.Run(context.Background(), totalsPipeline(), runner.Options{Mode: runner.Stream, Changelog: changelog,
		Bindings: map[string]string{"in": "mem://" + in, "out": "discard://"}}); !errors.Is(err, runner.ErrOptions) {
		t.Fatalf("a changelog without checkpoints: %v", err)
	}

	var feed []any
	for i := 0; i < 300; i++ {
		feed = append(feed, ev{Key: fmt.Sprint("k", i%7), At: int64(i), V: 1})
	}
	out1, _ := memOut()
	if err := runUntil(opts(out1, filepath.Join(dir, "state-1"), changelog), feed); err != nil {
		t.Fatal(err)
	}
	chks, _ := filepath.Glob(filepath.Join(ckpt, "chk-*", "state"))
	if len(chks) != 0 {
		t.Errorf("checkpoints with a changelog keep a copy of the state: %v", chks)
	}

	out2, _ := memOut()
	if err := runUntil(opts(out2, filepath.Join(dir, "state-2"), ""), nil); !errors.Is(err, runner.ErrOptions) || !strings.Contains(err.Error(), "pass --changelog") {
		t.Fatalf("resuming without --changelog: %v", err)
	}

	// Another machine: a new, empty state directory.
	out3, c3 := memOut()
	if err := runUntil(opts(out3, filepath.Join(dir, "state-3"), changelog), []any{ev{"k0", 1000, 5}, ev{"k6", 1001, 1}}); err != nil {
		t.Fatal(err)
	}
	// 300 elements over 7 keys: k0 has 43, k6 has 42.
	if got := fmt.Sprint(sortedStrings(c3.Values())); got != "[k0 48 k6 43]" {
		t.Fatalf("after a restore from the changelog: %s, want [k0 48 k6 43]", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "state-3")); err != nil {
		t.Fatal(err)
	}
}

// TestStreamEndingBeforeItsFirstCheckpoint: a stream run whose input ends
// before the first checkpoint still marks its (not yet created) checkpoint
// directory finished, and a discard:// sink takes part without a warning.
func TestStreamEndingBeforeItsFirstCheckpoint(t *testing.T) {
	ckpt := filepath.Join(t.TempDir(), "not-yet")
	var logs strings.Builder
	res, err := runner.Run(context.Background(), totalsPipeline(), runner.Options{Mode: runner.Stream, Progress: -1, StateBackend: "memory",
		CheckpointDir: ckpt, CheckpointInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Bindings: map[string]string{"in": memIn(ev{"a", 1, 1}), "out": "discard://"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Checkpoints != 0 {
		t.Errorf("%d checkpoints", res.Checkpoints)
	}
	if _, err := os.Stat(filepath.Join(ckpt, "FINISHED")); err != nil {
		t.Errorf("not marked finished: %v", err)
	}
	if strings.Contains(logs.String(), "at-least-once") {
		t.Errorf("warned about discard://: %s", logs.String())
	}
}
