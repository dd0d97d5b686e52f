package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
)

// checkpointRun starts profileviews in stream mode with checkpoints, on the
// in-memory stream and collectors named, and returns a function that waits
// for its end.
func checkpointRun(t *testing.T, ctx context.Context, in, counts, late, ckpt, stateDir string, stop, drain chan struct{}) func() (*runner.Result, error) {
	t.Helper()
	p, err := pipelines.ProfileViews(pipelines.ProfileViewsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var res *runner.Result
	go func() {
		defer close(done)
		res, err = runner.Run(ctx, p, quietOptions(runner.Options{
			Mode: runner.Stream, Stop: stop, Drain: drain,
			Bindings:      map[string]string{"pageviews": "mem://" + in, "counts": "mem://" + counts, "late": "mem://" + late},
			CheckpointDir: ckpt, CheckpointInterval: 20 * time.Millisecond, StateDir: stateDir,
		}))
	}()
	return func() (*runner.Result, error) { <-done; return res, err }
}

func waitConsumed(t *testing.T, s *memory.Stream, n int) {
	t.Helper()
	for dl := time.Now().Add(time.Minute); s.Consumed() < n; time.Sleep(2 * time.Millisecond) {
		if time.Now().After(dl) {
			t.Fatalf("only %d of %d records read", s.Consumed(), n)
		}
	}
}

// TestStopAndResume stops a stream (a final checkpoint), restarts it from
// the checkpoint on the same state directory, and drains it: the output of
// the two runs together is exactly the output of one uninterrupted run.
func TestStopAndResume(t *testing.T) {
	views, _ := dataset(t, 20000)
	want, wantLate := refProfileViews(views, pipelines.ProfileViewsConfig{Window: time.Hour, OutOfOrderness: 5 * time.Minute})
	n := seq.Add(1)
	in, counts, late := fmt.Sprintf("sr-in-%d", n), fmt.Sprintf("sr-counts-%d", n), fmt.Sprintf("sr-late-%d", n)
	src := memory.NewStream(in)
	cc, lc := memory.NewCollector(counts), memory.NewCollector(late)
	dir := t.TempDir()
	ckpt, stateDir := filepath.Join(dir, "checkpoints"), filepath.Join(dir, "state")

	stop := make(chan struct{})
	wait := checkpointRun(t, context.Background(), in, counts, late, ckpt, stateDir, stop, nil)
	half := len(views) / 2
	src.Send(anys(views[:half])...)
	waitConsumed(t, src, half)
	time.Sleep(50 * time.Millisecond) // let a few periodic checkpoints happen
	close(stop)
	res, err := wait()
	if err != nil || !res.Stopped {
		t.Fatalf("first run: %v, %+v", err, res)
	}
	if id, ok := markerIDForTest(stateDir); !ok || id == 0 {
		t.Errorf("the stopped run did not mark its state directory with its final checkpoint")
	}
	first := len(cc.Values())

	drain := make(chan struct{})
	wait = checkpointRun(t, context.Background(), in, counts, late, ckpt, stateDir, nil, drain)
	src.Send(anys(views[half:])...)
	waitConsumed(t, src, len(views))
	close(drain)
	if _, err := wait(); err != nil {
		t.Fatalf("second run: %v", err)
	}
	t.Logf("%d count rows before the stop, %d after", first, len(cc.Values())-first)
	if first == 0 {
		t.Error("nothing was committed before the stop")
	}
	sameRows(t, "counts across a stop", typed[pipelines.ProfileViewCount](t, cc.Values()), want)
	sameRows(t, "late across a stop", typed[events.PageViewEvent](t, lc.Values()), wantLate)
}

// TestCrashesDuringCheckpointing kills the job (cancels its run, which
// aborts its sinks: what was not committed is gone, as in a crash) at random
// moments, at least ten times, restarting it each time from the newest
// checkpoint: the committed output at the end is exactly once.
func TestCrashesDuringCheckpointing(t *testing.T) {
	views, _ := dataset(t, 30000)
	want, wantLate := refProfileViews(views, pipelines.ProfileViewsConfig{Window: time.Hour, OutOfOrderness: 5 * time.Minute})
	n := seq.Add(1)
	in, counts, late := fmt.Sprintf("cr-in-%d", n), fmt.Sprintf("cr-counts-%d", n), fmt.Sprintf("cr-late-%d", n)
	src := memory.NewStream(in)
	cc, lc := memory.NewCollector(counts), memory.NewCollector(late)
	dir := t.TempDir()
	ckpt, stateDir := filepath.Join(dir, "checkpoints"), filepath.Join(dir, "state")
	rng := rand.New(rand.NewPCG(1, 2))

	fed := 0
	crashes := 0
	// The crashes go on until the newest checkpoint has read records:
	// the last run must resume from one.
	for fed < len(views) || crashes < 10 || !checkpointRead(ckpt, "pageviews") {
		ctx, cancel := context.WithCancel(context.Background())
		wait := checkpointRun(t, ctx, in, counts, late, ckpt, stateDir, nil, nil)
		// Feed a slice while the job runs, then crash it a little later.
		k := min(len(views), fed+len(views)/12)
		src.Send(anys(views[fed:k])...)
		fed = k
		if crashes >= 10 && !checkpointRead(ckpt, "pageviews") {
			// Every crash so far came before a checkpoint that read
			// anything (a loaded machine starts runs slowly): this one
			// waits for one.
			for dl := time.Now().Add(time.Minute); !checkpointRead(ckpt, "pageviews"); time.Sleep(2 * time.Millisecond) {
				if time.Now().After(dl) {
					t.Fatalf("no checkpoint that read records in a minute")
				}
			}
		} else {
			time.Sleep(time.Duration(10+rng.IntN(150)) * time.Millisecond)
		}
		cancel()
		if _, err := wait(); err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("crash %d: %v", crashes, err)
		}
		crashes++
	}
	// The last run reads to the end of the stream, fires every window and
	// commits.
	src.Close()
	wait := checkpointRun(t, context.Background(), in, counts, late, ckpt, stateDir, nil, nil)
	res, err := wait()
	if err != nil {
		t.Fatalf("last run: %v", err)
	}
	if res.Read["pageviews"] == int64(len(views)) {
		t.Error("the last run read everything: it did not resume from a checkpoint")
	}
	t.Logf("%d crashes; the last run resumed and read %d records", crashes, res.Read["pageviews"])
	sameRows(t, "counts across crashes", typed[pipelines.ProfileViewCount](t, cc.Values()), want)
	sameRows(t, "late across crashes", typed[events.PageViewEvent](t, lc.Values()), wantLate)
}

// checkpointRead reports whether the newest checkpoint in dir has read
// records of binding: a run resuming from it does not start the binding
// over.
func checkpointRead(dir, binding string) bool {
	id := newestCheckpoint(dir)
	if id == 0 {
		return false
	}
	b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("chk-%012d", id), "meta.json"))
	if err != nil {
		return false // removed meanwhile: a newer one is complete
	}
	var meta struct {
		Splits map[string]map[string]struct {
			Pos []byte `json:"pos"`
		} `json:"splits"`
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		return false
	}
	for _, s := range meta.Splits[binding] {
		if len(s.Pos) > 0 {
			return true
		}
	}
	return false
}

func markerIDForTest(stateDir string) (int64, bool) {
	b, err := os.ReadFile(filepath.Join(stateDir, "WEIR_CHECKPOINT"))
	if err != nil {
		return 0, false
	}
	var id int64
	_, err = fmt.Sscan(string(b), &id)
	return id, err == nil
}
