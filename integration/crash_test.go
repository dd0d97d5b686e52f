package integration

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/examples/pipelines"
)

// TestKillDashNine runs profileviews as a process, in stream mode with
// checkpoints, from a 4-partition Kafka topic, and kills it with SIGKILL at
// random moments (at least ten times, and at least once while a checkpoint
// is being written), restarting it each time. When it finally runs to the
// end of the topic, the committed output equals the answer of one
// uninterrupted run, with nothing lost and nothing twice. It writes its
// counts to directories of part files, or to a Kafka topic with
// exactly-once delivery, read back as a read_committed consumer.
func TestKillDashNine(t *testing.T) {
	if testing.Short() {
		t.Skip("the job runs in its own process: nothing for -race to see here (make test runs it without -short)")
	}
	// The three run side by side: most of their time is spent waiting to
	// kill.
	t.Run("part files", func(t *testing.T) { t.Parallel(); killDashNine(t, "", false) })
	t.Run("kafka exactly-once", func(t *testing.T) {
		t.Parallel()
		killDashNine(t, "delivery=exactly-once&txn-id=profileviews-counts&key=profileId", false)
	})
	// Every restart on a fresh state directory, as on another machine:
	// the state comes back from the changelog each time.
	t.Run("changelog on a new machine", func(t *testing.T) { t.Parallel(); killDashNine(t, "", true) })
}

// killDashNine writes the counts to part files, or to a Kafka topic with
// the given options; with changelog, the state goes to a changelog and
// every run has a new state directory.
func killDashNine(t *testing.T, kafkaOpts string, changelog bool) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "pageviews"), kfake.SeedTopics(3, "counts"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/"
	views, _, err := events.Generate(events.GenConfig{Seed: 5, PageViews: 1000000, Profiles: 2000, Span: 24 * time.Hour, LateFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	produce(t, k+"pageviews?key=viewerId", views)
	want, _ := refProfileViews(views, pipelines.ProfileViewsConfig{Window: time.Hour, OutOfOrderness: 5 * time.Minute})

	dir := t.TempDir()
	ckpt := filepath.Join(dir, "checkpoints")
	counts := "file://" + filepath.Join(dir, "counts") + "/"
	if kafkaOpts != "" {
		counts = k + "counts?" + kafkaOpts
	}
	args := []string{"--mode=stream", "--parallelism=2", "--progress=0",
		"--bind", "pageviews=" + k + "pageviews?until=latest",
		"--bind", "counts=" + counts,
		"--bind", "late=file://" + filepath.Join(dir, "late") + "/",
		"--checkpoint-dir", ckpt, "--checkpoint-interval", "40ms",
		"--state-dir", filepath.Join(dir, "state")}
	runs := 0
	argsOfRun := func() []string {
		runs++
		if !changelog {
			return args
		}
		return append(slices.Clone(args), "--changelog", k+"pv", "--state-dir", filepath.Join(dir, fmt.Sprintf("state-%d", runs)))
	}
	// committed reads the output a consumer can see: the committed part
	// files, or the topic as a read_committed consumer.
	committed := func() []pipelines.ProfileViewCount {
		if kafkaOpts != "" {
			return consume[pipelines.ProfileViewCount](t, k+"counts")
		}
		var got []pipelines.ProfileViewCount
		parts, _ := filepath.Glob(filepath.Join(dir, "counts", "part-*"))
		for _, p := range parts {
			got = append(got, readJSONL[pipelines.ProfileViewCount](t, p)...)
		}
		return got
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const minDelay = 250 * time.Millisecond
	delay := minDelay
	kills, duringWrite := 0, 0
	finished := false // a killed run finished its work before its kill
	// With a changelog, a checkpoint writes only its meta.json: too quick
	// to be caught at; the other two cases are. The kills go on until the
	// killed runs have committed output (how soon depends on the load).
	for (kills < 10 || duringWrite == 0 && !changelog || len(committed()) == 0) && kills < 60 {
		cmd := exec.Command(filepath.Join(bin, "profileviews"), argsOfRun()...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		before := newestCheckpoint(ckpt)
		if kills >= 10 && duringWrite == 0 && !changelog {
			// Ten random kills missed every checkpoint write: watch for
			// one to begin and kill the job in it.
			deadline := time.Now().Add(2 * delay)
			for time.Now().Before(deadline) {
				if m, _ := filepath.Glob(filepath.Join(ckpt, "chk-*.tmp")); len(m) > 0 {
					break
				}
				time.Sleep(200 * time.Microsecond)
			}
		} else {
			time.Sleep(delay/2 + time.Duration(rng.Int64N(int64(delay))))
		}
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if cmd.ProcessState.Exited() {
			if err != nil {
				t.Fatalf("the job failed before it was killed: %v\n%s", err, errb.String())
			}
			finished = true // it finished first
			break
		}
		if _, err := os.Stat(filepath.Join(ckpt, "FINISHED")); err == nil {
			finished = true // it finished its work just before the kill
			break
		}
		kills++
		if m, _ := filepath.Glob(filepath.Join(ckpt, "chk-*.tmp")); len(m) > 0 {
			duringWrite++
		}
		if newestCheckpoint(ckpt) == before || kills >= 10 && len(committed()) == 0 {
			// On a loaded machine a run may not get to a checkpoint of
			// its own before the kill, or (restoring its state first)
			// not to one with output: give the next one longer.
			delay = min(delay*3/2, 4*time.Second)
		} else {
			// It made progress: back towards the shortest runs, which
			// leave the most kills before the input is done.
			delay = max(delay*3/4, minDelay)
		}
	}
	t.Logf("%d kills, %d while a checkpoint was being written", kills, duringWrite)
	if kills < 10 {
		t.Fatalf("the job finished after %d kills; the test needs ten", kills)
	}
	if duringWrite == 0 && !changelog {
		t.Fatalf("%d kills, none while a checkpoint was being written; the test needs one", kills)
	}
	// The test means something only if the killed runs wrote output that
	// the last run could repeat or lose.
	if n := len(committed()); n == 0 {
		t.Fatalf("the killed runs committed no output")
	} else {
		t.Logf("%d of %d rows committed before the last run", n, len(want))
	}
	if finished {
		// The job is done (its checkpoint directory says so, and a new
		// run would refuse it): its output must be complete already.
		t.Log("the job finished between kills: no last run")
	} else {
		r := runCLI(t, "profileviews", argsOfRun()...)
		if r.code != 0 {
			t.Fatalf("last run: exit %d\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "resuming from checkpoint") {
			t.Error("the last run did not resume from a checkpoint")
		}
		if changelog && !strings.Contains(r.stderr, "state restored from changelog") {
			t.Errorf("the last run did not restore from the changelog:\n%s", r.stderr)
		}
	}
	sameRows(t, "counts after kill -9s", committed(), want)
	if hidden, _ := filepath.Glob(filepath.Join(dir, "counts", ".*")); len(hidden) != 0 {
		t.Errorf("files left behind: %v", hidden)
	}
}

// newestCheckpoint returns the id of the newest complete checkpoint in dir.
func newestCheckpoint(dir string) int64 {
	var newest int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		var id int64
		if n, _ := fmt.Sscanf(e.Name(), "chk-%d", &id); n == 1 && !strings.HasSuffix(e.Name(), ".tmp") && id > newest {
			newest = id
		}
	}
	return newest
}
