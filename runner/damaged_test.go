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

// A stream job stopped twice (two checkpoints), resumed on a machine
// without its state directory after its newest checkpoint was damaged or
// removed, fails before it reads or writes anything, with one line naming
// what is wrong; it never restores damaged state, nor falls back to the
// older checkpoint, whose successor's output was published already.
func TestResumeFromDamagedCheckpointFails(t *testing.T) {
	largest := func(chk string) string {
		files, _ := filepath.Glob(filepath.Join(chk, "state", "*"))
		var victim string
		var size int64 = -1
		for _, f := range files {
			if info, err := os.Stat(f); err == nil && info.Size() > size {
				victim, size = f, info.Size()
			}
		}
		return victim
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, chk string) (want string)
	}{
		{"state file byte flipped", func(t *testing.T, chk string) string {
			victim := largest(chk)
			b, err := os.ReadFile(victim)
			if err != nil || len(b) == 0 {
				t.Fatalf("%s: %v", victim, err)
			}
			b[len(b)/2] ^= 1
			if err := os.WriteFile(victim, b, 0o644); err != nil {
				t.Fatal(err)
			}
			return filepath.Base(victim) + " does not match its checksum"
		}},
		{"newest checkpoint deleted", func(t *testing.T, chk string) string {
			if err := os.RemoveAll(chk); err != nil {
				t.Fatal(err)
			}
			return "its folder is missing"
		}},
		{"newest meta.json deleted", func(t *testing.T, chk string) string {
			if err := os.Remove(filepath.Join(chk, "meta.json")); err != nil {
				t.Fatal(err)
			}
			return "its meta.json is missing"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
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
			for round := range 2 {
				if _, err := run(func() {
					for i := range 500 {
						src.Send(ev{fmt.Sprint("k", i%50), int64(i), int64(i)})
					}
					waitUntil(t, "the elements to be read", func() bool { return src.Consumed() >= 500*(round+1) })
				}); err != nil {
					t.Fatal(err)
				}
			}
			// A new machine: no state directory.
			if err := os.RemoveAll(stateDir); err != nil {
				t.Fatal(err)
			}
			chks, _ := filepath.Glob(filepath.Join(ckpt, "chk-*"))
			if len(chks) != 2 {
				t.Fatalf("two stops left checkpoints %v, want two", chks)
			}
			chk := chks[len(chks)-1]
			want := tc.damage(t, chk)

			col, err := run(func() {})
			if !errors.Is(err, runner.ErrCheckpointDamaged) || !strings.Contains(err.Error(), filepath.Base(chk)) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("resumed: got %v; want one line, ErrCheckpointDamaged, naming %s, with %q", err, filepath.Base(chk), want)
			}
			if col.Written() != 0 || col.Commits() != 0 {
				t.Errorf("the refused run wrote %d and committed %d times", col.Written(), col.Commits())
			}
		})
	}
}
