package runner_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/fsys"
	"github.com/weir-dev/weir/io/hdfs/hdfstest"
)

// job is a pipeline program running as a process, with its stderr read
// line by line.
type job struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	errs []string
	line chan string // every stderr line, for waitFor
	done chan struct{}
}

func startJob(t *testing.T, bin string, env []string, args ...string) *job {
	t.Helper()
	j := &job{cmd: exec.Command(bin, args...), line: make(chan string, 1000), done: make(chan struct{})}
	j.cmd.Env = append(os.Environ(), env...)
	r, err := j.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := j.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.cmd.Process.Kill(); <-j.done })
	go func() {
		defer close(j.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			j.mu.Lock()
			j.errs = append(j.errs, sc.Text())
			j.mu.Unlock()
			select {
			case j.line <- sc.Text():
			default:
			}
		}
		j.cmd.Wait()
	}()
	return j
}

// waitFor returns the first stderr line from now on that matches re.
func (j *job) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case l := <-j.line:
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		case <-j.done:
			t.Fatalf("the job ended before it logged %q:\n%s", re, j.stderr())
		case <-timeout:
			t.Fatalf("the job has not logged %q in a minute:\n%s", re, j.stderr())
		}
	}
}

// exit waits for the job to end and returns its exit code; it fails the
// test if the job is still running after a minute.
func (j *job) exit(t *testing.T) int {
	t.Helper()
	select {
	case <-j.done:
		return j.cmd.ProcessState.ExitCode()
	case <-time.After(time.Minute):
		t.Fatalf("the job is still running a minute after it was stopped:\n%s", j.stderr())
		return 0
	}
}

func (j *job) stderr() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.errs, "\n")
}

// buildProfileViews builds the profileviews example into a temporary
// directory and returns its path.
func buildProfileViews(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/weir-dev/weir/examples/profileviews")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building profileviews: %v\n%s", err, out)
	}
	return filepath.Join(dir, "profileviews")
}

var checkpointLine = regexp.MustCompile(`msg=checkpoint id=(\d+)`)

// TestStopGivesUpOnHungHDFS runs a stream job whose checkpoints go to HDFS,
// makes HDFS stop answering (hdfstest paused, as by SIGSTOP; the HDFS
// deadline set far off, so that only the stop can end the wait), and
// stops the job: once --stop-timeout has passed after one SIGTERM, or 5s
// after a second, the process exits 1 with one line saying what it
// abandoned. The checkpoint it names as the last completed is the one the
// next run resumes from.
func TestStopGivesUpOnHungHDFS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a job as a process")
	}
	bin := buildProfileViews(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "pageviews"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/"
	views, _, err := events.Generate(events.GenConfig{Seed: 5, PageViews: 5000, Profiles: 100})
	if err != nil {
		t.Fatal(err)
	}
	produceViews(t, k+"pageviews?key=viewerId", views)
	srv, err := hdfstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	env := []string{fsys.HDFSTimeoutEnv + "=1h"}
	args := func(name string, extra ...string) []string {
		return append([]string{"--mode=stream", "--parallelism=2", "--progress=0",
			"--bind", "pageviews=" + k + "pageviews",
			"--bind", "counts=file://" + filepath.Join(dir, name, "counts") + "/",
			"--bind", "late=discard://",
			"--checkpoint-dir", srv.URI() + name, "--checkpoint-interval", "100ms",
			"--state-dir", filepath.Join(dir, name, "state")}, extra...)
	}
	gaveUp := regexp.MustCompile(`^weir: gave up on the run: the run did not end within (\S+) of the (stop|abort): (.*)$`)
	hang := func(t *testing.T, j *job) {
		j.waitFor(t, checkpointLine)
		srv.Pause()
		t.Cleanup(srv.Resume)
		time.Sleep(300 * time.Millisecond) // the next checkpoint begins, and hangs
	}
	check := func(t *testing.T, j *job, within, after, store string) string {
		if code := j.exit(t); code != 1 {
			t.Fatalf("exit code %d, want 1:\n%s", code, j.stderr())
		}
		var lines []string
		for _, l := range strings.Split(j.stderr(), "\n") {
			if strings.HasPrefix(l, "weir: ") {
				lines = append(lines, l)
			}
		}
		if len(lines) != 1 {
			t.Fatalf("want one line saying what was abandoned, got:\n%s", j.stderr())
		}
		t.Log(lines[0])
		m := gaveUp.FindStringSubmatch(lines[0])
		if m == nil || m[1] != within || m[2] != after || !regexp.MustCompile(`abandoned (checkpoint \d+ being written|recording) in `+regexp.QuoteMeta(store)).MatchString(m[3]) {
			t.Fatalf("the line says:\n%s\nwant: gave up %s after the %s, naming what it abandoned in %s", lines[0], within, after, store)
		}
		return m[3]
	}

	t.Run("stop timeout", func(t *testing.T) {
		j := startJob(t, bin, env, args("a", "--stop-timeout=2s")...)
		hang(t, j)
		j.cmd.Process.Signal(syscall.SIGTERM)
		what := check(t, j, "2s", "stop", srv.URI()+"a")
		done := regexp.MustCompile(`output after checkpoint (\d+) in \S+ is not committed: the next run resumes from it`).FindStringSubmatch(what)
		if done == nil {
			t.Fatalf("the line names no checkpoint to resume from: %s", what)
		}
		// The next run resumes from the checkpoint the line named.
		srv.Resume()
		j = startJob(t, bin, env, args("a")...)
		m := j.waitFor(t, regexp.MustCompile(`msg="resuming from checkpoint" id=(\d+)`))
		if m[1] != done[1] {
			t.Errorf("the next run resumed from checkpoint %s; the line said %s", m[1], done[1])
		}
		j.waitFor(t, checkpointLine)
		j.cmd.Process.Signal(syscall.SIGTERM)
		if code := j.exit(t); code != 0 {
			t.Errorf("the next run, stopped: exit %d:\n%s", code, j.stderr())
		}
	})

	t.Run("abort", func(t *testing.T) {
		j := startJob(t, bin, env, args("b", "--stop-timeout=off")...)
		hang(t, j)
		j.cmd.Process.Signal(syscall.SIGTERM)
		j.waitFor(t, regexp.MustCompile(`stop requested`))
		j.cmd.Process.Signal(syscall.SIGTERM)
		check(t, j, "5s", "abort", srv.URI()+"b")
	})
}

func produceViews(t *testing.T, uri string, views []events.PageViewEvent) {
	t.Helper()
	u, _ := connector.ParseURI(uri)
	ctx := context.Background()
	s, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: "seed", URI: u, Type: reflect.TypeFor[events.PageViewEvent]()})
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]any, len(views))
	for i, v := range views {
		vals[i] = v
	}
	if err := errors.Join(s.Write(ctx, vals), s.Commit(ctx)); err != nil {
		t.Fatal(err)
	}
}
