package runner_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
)

// A stream job stopped with a final checkpoint, resumed on a machine
// without its state directory from a checkpoint whose state copy was
// damaged since, fails before it reads or writes anything, naming the
// checkpoint and the file; it never restores the damaged state.
func TestResumeFromDamagedCheckpointFails(t *testing.T) {
	name := fmt.Sprintf("damaged-%d", names.Add(1))
	src := memory.NewStream(name)
	root := t.TempDir()
	stateDir, ckpt := filepath.Join(root, "state"), filepath.Join(root, "ckpt")
	build := func() *sdk.Pipeline {
		p := sdk.NewPipeline()
		kv := sdk.KeyBy(sdk.Read[ev](p, "in", sdk.EventTime(at)), func(e ev) string { return e.Key })
		sdk.Write(sdk.Count(kv), "out")
		return p
	}
	run := func(feed func()) (*memory.Collector, error) {
		out, col := memOut()
		stop := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			_, err := runner.Run(context.Background(), build(), runner.Options{Mode: runner.Stream, Progress: -1,
				StateDir: stateDir, CheckpointDir: ckpt, CheckpointInterval: time.Hour, Stop: stop,
				Bindings: map[string]string{"in": "mem://" + name, "out": out}})
			done <- err
		}()
		feed()
		close(stop)
		return col, <-done
	}
	if _, err := run(func() {
		for i := range 500 {
			src.Send(ev{fmt.Sprint("k", i%50), int64(i), int64(i)})
		}
		waitUntil(t, "the elements to be read", func() bool { return src.Consumed() >= 500 })
	}); err != nil {
		t.Fatal(err)
	}
	// A new machine: no state directory; the newest checkpoint's largest
	// state file has a byte flipped.
	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}
	chks, _ := filepath.Glob(filepath.Join(ckpt, "chk-*"))
	if len(chks) == 0 {
		t.Fatal("the stop left no checkpoint")
	}
	chk := chks[len(chks)-1]
	files, _ := filepath.Glob(filepath.Join(chk, "state", "*"))
	var victim string
	var size int64
	for _, f := range files {
		if info, err := os.Stat(f); err == nil && info.Size() > size {
			victim, size = f, info.Size()
		}
	}
	b, err := os.ReadFile(victim)
	if err != nil || len(b) == 0 {
		t.Fatalf("%s: %v", victim, err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(victim, b, 0o644); err != nil {
		t.Fatal(err)
	}

	col, err := run(func() {})
	if !errors.Is(err, runner.ErrCheckpointDamaged) || !strings.Contains(err.Error(), filepath.Base(chk)) || !strings.Contains(err.Error(), filepath.Base(victim)) {
		t.Fatalf("resumed from the damaged checkpoint: got %v; want ErrCheckpointDamaged naming %s and %s", err, filepath.Base(chk), filepath.Base(victim))
	}
	if col.Written() != 0 || col.Commits() != 0 {
		t.Errorf("the refused run wrote %d and committed %d times", col.Written(), col.Commits())
	}
}
