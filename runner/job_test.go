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

	"github.com/weir-dev/weir/runner"
)

// TestReplayNeverTouchesAnotherJob: a replay with its own job id gets its
// own directories from the same templates; pointed at production's state or
// checkpoints by mistake, it is refused and production's files stay.
func TestReplayNeverTouchesAnotherJob(t *testing.T) {
	base := t.TempDir()
	opts := func(job, stateDir, ckpt string) runner.Options {
		out, _ := memOut()
		return runner.Options{Mode: runner.Stream, JobID: job, Progress: -1, Logger: slog.New(slog.DiscardHandler),
			StateDir: stateDir, CheckpointDir: ckpt, CheckpointInterval: time.Hour,
			Bindings: map[string]string{"in": memIn(ev{"a", 1, 1}, ev{"a", 2, 2}), "out": out}}
	}
	tmplState, tmplCkpt := filepath.Join(base, "{job}", "state"), filepath.Join(base, "{job}", "checkpoints")
	for _, job := range []string{"prod", "replay-1"} {
		if _, err := runner.Run(context.Background(), totalsPipeline(), opts(job, tmplState, tmplCkpt)); err != nil {
			t.Fatalf("%s: %v", job, err)
		}
		for _, d := range []string{"state", "checkpoints"} {
			b, err := os.ReadFile(filepath.Join(base, job, d, "WEIR_JOB"))
			if err != nil || strings.TrimSpace(string(b)) != job {
				t.Errorf("%s/%s: marker %q, %v", job, d, b, err)
			}
		}
	}
	prodState, prodCkpt := filepath.Join(base, "prod", "state"), filepath.Join(base, "prod", "checkpoints")
	before, _ := os.ReadDir(prodState)
	for _, tc := range []struct {
		name string
		o    runner.Options
		want string
	}{
		{"another job's checkpoints", opts("replay-2", filepath.Join(base, "r2"), prodCkpt), `belongs to job "prod", not "replay-2"`},
		{"another job's state", opts("replay-2", prodState, filepath.Join(base, "r2c")), `belongs to job "prod", not "replay-2"`},
		{"no job id on a job's directory", opts("", prodState, ""), `belongs to job "prod": pass --job-id prod`},
		{"{job} without a job id", opts("", tmplState, ""), "{job} but no --job-id"},
		{"a bad job id", opts("../x", tmplState, ""), "--job-id"},
	} {
		if tc.name == "no job id on a job's directory" {
			tc.o.Mode, tc.o.CheckpointDir = runner.Backfill, ""
		}
		_, err := runner.Run(context.Background(), totalsPipeline(), tc.o)
		if !errors.Is(err, runner.ErrOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	after, _ := os.ReadDir(prodState)
	if fmt.Sprint(len(before)) != fmt.Sprint(len(after)) || len(after) == 0 {
		t.Errorf("production's state directory changed: %d entries, then %d", len(before), len(after))
	}
}
