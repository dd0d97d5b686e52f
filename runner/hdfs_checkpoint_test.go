package runner_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/hdfs/hdfstest"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
)

// TestCheckpointsOnHDFS stops a job that keeps its checkpoints on HDFS (the
// in-repo server) and resumes it on a new state directory: the state comes
// back from the checkpoint copied down from HDFS.
func TestCheckpointsOnHDFS(t *testing.T) {
	srv, err := hdfstest.Start(t.TempDir(), hdfstest.BlockSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	in := fmt.Sprintf("hdfs-ckpt-in-%d", names.Add(1))
	src := memory.NewStream(in)
	dir := t.TempDir()
	run := func(stateDir string, feed []any) ([]any, error) {
		out, col := memOut()
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := runner.Run(context.Background(), totalsPipeline(), runner.Options{Mode: runner.Stream, Progress: -1, Parallelism: 2,
				StateDir: stateDir, CheckpointDir: srv.URI() + "jobs/totals/checkpoints", CheckpointInterval: 50 * time.Millisecond,
				Stop: stop, Logger: slog.New(slog.DiscardHandler), Bindings: map[string]string{"in": "mem://" + in, "out": out}})
			done <- err
		}()
		before := src.Consumed()
		src.Send(feed...)
		for src.Consumed() < before+len(feed) {
			select {
			case err := <-done:
				return nil, err
			case <-time.After(2 * time.Millisecond):
			}
		}
		close(stop)
		// The stop's final checkpoint commits the output: read it after
		// the run has returned.
		err := <-done
		return col.Values(), err
	}
	var feed []any
	for i := 0; i < 200; i++ {
		feed = append(feed, ev{Key: fmt.Sprint("k", i%4), At: int64(i), V: 1})
	}
	if _, err := run(filepath.Join(dir, "state-1"), feed); err != nil {
		t.Fatal(err)
	}
	got, err := run(filepath.Join(dir, "state-2"), []any{ev{"k0", 500, 1}, ev{"k3", 501, 2}})
	if err != nil {
		t.Fatal(err)
	}
	if g := fmt.Sprint(sortedStrings(got)); g != "[k0 51 k3 52]" {
		t.Fatalf("after resuming from HDFS: %s, want [k0 51 k3 52]", g)
	}
}
