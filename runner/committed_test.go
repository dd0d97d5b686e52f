package runner_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
)

// TestCommittedCheckpointsAreMarked: once the sinks have committed a
// checkpoint's output, its directory says so (SINKS_COMMITTED), so that a
// restart, however late, does not have to commit it again nor guess whether
// the broker kept it.
func TestCommittedCheckpointsAreMarked(t *testing.T) {
	ckpt := filepath.Join(t.TempDir(), "checkpoints")
	out, _ := memOut()
	in := fmt.Sprintf("committed-in-%d", names.Add(1))
	memory.NewStream(in).Send(ev{"a", 1, 1})
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := runner.Run(context.Background(), totalsPipeline(), runner.Options{Mode: runner.Stream, Progress: -1, StateBackend: "memory",
			CheckpointDir: ckpt, CheckpointInterval: 20 * time.Millisecond, Stop: stop, Logger: slog.New(slog.DiscardHandler),
			Bindings: map[string]string{"in": "mem://" + in, "out": out}})
		done <- err
	}()
	time.Sleep(150 * time.Millisecond)
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	chks, _ := filepath.Glob(filepath.Join(ckpt, "chk-*"))
	sort.Strings(chks)
	if len(chks) == 0 {
		t.Fatal("no checkpoint")
	}
	if _, err := os.Stat(filepath.Join(chks[len(chks)-1], "SINKS_COMMITTED")); err != nil {
		t.Errorf("the last checkpoint, %s, is not marked committed: %v", chks[len(chks)-1], err)
	}
}
