package runner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
)

// A second run on a running job's state or checkpoint directory fails at
// once, naming the holder, before it reads or resets anything; once the
// job has ended the directories are free again.
func TestDirectoriesOfARunningJobAreLocked(t *testing.T) {
	root := t.TempDir()
	stateDir, ckptDir := filepath.Join(root, "state"), filepath.Join(root, "ckpt")
	started, release := make(chan struct{}), make(chan struct{})
	build := func(block bool) *sdk.Pipeline {
		p := sdk.NewPipeline()
		in := sdk.Map(sdk.Read[ev](p, "in", sdk.EventTime(at)), func(e ev) ev {
			if block {
				close(started)
				<-release
			}
			return e
		})
		sdk.Write(sdk.Count(sdk.KeyBy(in, func(e ev) string { return e.Key })), "out")
		return p
	}
	opts := func(state string) (runner.Options, func() []any) {
		out, col := memOut()
		return runner.Options{Bindings: map[string]string{"in": memIn(ev{"a", 1, 1}), "out": out},
			Mode: runner.Stream, StateDir: state, CheckpointDir: ckptDir, Progress: -1}, func() []any { return col.Values() }
	}

	first, firstOut := opts(stateDir)
	done := make(chan error, 1)
	go func() {
		_, err := runner.Run(context.Background(), build(true), first)
		done <- err
	}()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("the job ended before its first element reached the Map: %v", err)
	}

	holder := fmt.Sprintf("pid %d on host ", os.Getpid())
	reset, _ := opts(stateDir)
	reset.ResetState = true
	other, _ := opts(filepath.Join(root, "other-state"))
	for _, tc := range []struct {
		name string
		o    runner.Options
		what string
	}{
		{"same state dir, with ResetState", reset, "--state-dir"},
		{"same checkpoint dir", other, "--checkpoint-dir"},
	} {
		_, err := runner.Run(context.Background(), build(false), tc.o)
		var inUse *runner.InUseError
		if !errors.As(err, &inUse) || !errors.Is(err, runner.ErrInUse) || inUse.What != tc.what || len(inUse.Holder) < len(holder) || inUse.Holder[:len(holder)] != holder {
			t.Errorf("%s: got %v, want an InUseError for %s held by %q...", tc.name, err, tc.what, holder)
		}
	}

	close(release)
	if err := <-done; err != nil {
		t.Fatalf("the running job: %v", err)
	}
	if got := fmt.Sprint(firstOut()); got != "[{a 1}]" {
		t.Errorf("the running job wrote %s, want [{a 1}]", got)
	}
	// The job ran to its end: a new run may reset its state.
	again, _ := opts(stateDir)
	again.ResetState, again.CheckpointDir, again.Mode = true, "", runner.Backfill
	if _, err := runner.Run(context.Background(), build(false), again); err != nil {
		t.Fatalf("a run after the job ended: %v", err)
	}
}
