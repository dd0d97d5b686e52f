package runner_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
)

func versionedTotals(version int) *sdk.Pipeline {
	p := sdk.NewPipeline()
	kv := sdk.Map(sdk.Read[ev](p, "in", sdk.EventTime(at)), func(e ev) sdk.KV[string, int64] { return sdk.KV[string, int64]{Key: e.Key, Value: e.V} })
	cell := sdk.NewValueState[int64]("total", sdk.SchemaVersion(version))
	sdk.Write(sdk.ParDo(kv, runningTotal{cell: cell}, sdk.State(cell), sdk.Named("Total")), "out")
	return p
}

// TestRollbackFailsAtLaunch: a job resumed from a checkpoint whose state a
// newer version of it wrote fails before it reads anything, naming the
// transform, the state and both versions; the same version resumes.
func TestRollbackFailsAtLaunch(t *testing.T) {
	in := fmt.Sprintf("rollback-in-%d", names.Add(1))
	src := memory.NewStream(in)
	ckpt := filepath.Join(t.TempDir(), "checkpoints")
	run := func(version int) error {
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := runner.Run(context.Background(), versionedTotals(version), runner.Options{Mode: runner.Stream, Progress: -1,
				StateBackend: "memory", Logger: slog.New(slog.DiscardHandler), CheckpointDir: ckpt, CheckpointInterval: time.Hour, Stop: stop,
				Bindings: map[string]string{"in": "mem://" + in, "out": "discard://"}})
			done <- err
		}()
		select {
		case err := <-done:
			return err
		case <-time.After(200 * time.Millisecond):
		}
		close(stop)
		return <-done
	}
	src.Send(ev{"a", 1, 1})
	if err := run(2); err != nil {
		t.Fatal(err)
	}
	err := run(1)
	if !errors.Is(err, runner.ErrOptions) || !strings.Contains(err.Error(), `ParDo "Total" state "total" was written with schema version 2, this job declares 1`) {
		t.Fatalf("resuming with version 1: %v", err)
	}
	if err := run(2); err != nil {
		t.Fatalf("resuming with version 2: %v", err)
	}
	if err := run(3); err != nil {
		t.Fatalf("resuming with version 3: %v", err)
	}
}
