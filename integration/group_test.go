package integration

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/examples/pipelines"
)

// member is one process of a job scaled out over a consumer group.
type member struct {
	name string
	cmd  *exec.Cmd
	errb *syncBuffer
	done chan struct{} // closed when the process has exited
}

// syncBuffer is a bytes.Buffer that a process writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startMember(t *testing.T, name string, args []string) *member {
	t.Helper()
	m := &member{name: name, errb: &syncBuffer{}, done: make(chan struct{})}
	m.cmd = exec.Command(filepath.Join(bin, "profileviews"), args...)
	m.cmd.Stderr = m.errb
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { m.cmd.Wait(); close(m.done) }()
	return m
}

func (m *member) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// groupEmpty waits until consumer group g has no members.
func groupEmpty(t *testing.T, c *kfake.Cluster, g string) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	deadline := time.Now().Add(time.Minute)
	for {
		gs, err := adm.DescribeGroups(context.Background(), g)
		if err == nil && len(gs[g].Members) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("group %s still has members a minute after its processes were killed: %v %v", g, gs[g].Members, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// restoredRe matches the log line of a restore that read state.
var restoredRe = regexp.MustCompile(`state restored from changelog.* records=[1-9]`)

// TestGroupKillDashNine runs profileviews as two processes of one consumer
// group over a 4-partition topic, so that each runs some of the job's four
// tasks, and kills one or the other with SIGKILL at random moments,
// restarting it each time. Every kill makes the group move the dead
// process's tasks to the other one once its session times out, and every
// restart moves some back: each move resumes a task, in another process,
// from its latest checkpoint, with its state restored from the changelog
// (the processes have state directories of their own, as on two
// machines), and commits or aborts its transactions under the task's own
// transactional id. When the topic is read to its end, the committed
// output equals the answer of one uninterrupted run.
func TestGroupKillDashNine(t *testing.T) {
	if testing.Short() {
		t.Skip("the job runs in its own processes (make test runs it without -short)")
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "pageviews"), kfake.SeedTopics(3, "counts"),
		kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/"
	views, _, err := events.Generate(events.GenConfig{Seed: 9, PageViews: 1000000, Profiles: 2000, Span: 24 * time.Hour, LateFraction: -1})
	if err != nil {
		t.Fatal(err)
	}
	// Keyed by the viewed profile, which the job counts by: the topic is
	// partitioned as the job's tasks need.
	t0 := time.Now()
	produce(t, k+"pageviews?key=viewedProfileId", views)
	t.Logf("%d views produced in %s", len(views), time.Since(t0).Round(time.Millisecond))
	want, _ := refProfileViews(views, pipelines.ProfileViewsConfig{Window: time.Hour, OutOfOrderness: 5 * time.Minute})

	dir := t.TempDir()
	ckpt := filepath.Join(dir, "checkpoints")
	// While it is killed the job reads the topic unbounded, so that the
	// kills do not race the end of its input; the last runs read it to
	// its end offsets and end there.
	bounded := false
	args := func(name string) []string {
		in := k + "pageviews"
		if bounded {
			in += "?until=latest"
		}
		return []string{"--mode=stream", "--parallelism=1", "--progress=0",
			"--group", "profileviews", "--group-session-timeout", "1s", "--group-rebalance-timeout", "5s",
			"--bind", "pageviews=" + in,
			"--bind", "counts=" + k + "counts?delivery=exactly-once&txn-id=pv-counts&key=profileId",
			"--bind", "late=file://" + filepath.Join(dir, "late") + "/",
			"--checkpoint-dir", ckpt, "--checkpoint-interval", "50ms",
			"--changelog", k + "pv",
			"--state-dir", filepath.Join(dir, "state-"+name)}
	}
	allFinished := func() bool {
		for p := range 4 {
			if _, err := os.Stat(filepath.Join(ckpt, fmt.Sprintf("task-%d", p), "FINISHED")); err != nil {
				return false
			}
		}
		return true
	}
	ms := []*member{startMember(t, "a", args("a")), startMember(t, "b", args("b"))}
	defer func() {
		for _, m := range ms {
			m.cmd.Process.Kill()
			<-m.done
		}
	}()
	began := time.Now()
	rng := rand.New(rand.NewPCG(9, 10))
	kills := 0
	var logs []string // of the killed processes
	const wantKills = 6
	for kills < wantKills {
		i := rng.IntN(2)
		m := ms[i]
		// Kill it while it runs tasks: once one has started, at a random
		// moment of the next second.
		for !m.exited() && !strings.Contains(m.errb.String(), "run starting") {
			time.Sleep(20 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.Int64N(int64(time.Second))))
		if m.exited() {
			t.Fatalf("process %s ended (the topic is unbounded):\n%s", m.name, m.errb.String())
		}
		m.cmd.Process.Signal(syscall.SIGKILL)
		<-m.done
		logs = append(logs, m.errb.String())
		kills++
		ms[i] = startMember(t, m.name, args(m.name))
	}
	t.Logf("%d kills in %s", kills, time.Since(began).Round(time.Millisecond))
	// The test means something only if the killed runs wrote output that
	// the last ones could repeat or lose, and left every task a checkpoint
	// to resume from. Random kills on a loaded machine may come before
	// either: the processes then run on until they are there.
	checkpointed := func() bool {
		for p := range 4 {
			if newestCheckpoint(filepath.Join(ckpt, fmt.Sprintf("task-%d", p))) == 0 {
				return false
			}
		}
		return true
	}
	n := 0
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		if n = len(consume[pipelines.ProfileViewCount](t, k+"counts")); n > 0 && checkpointed() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("two minutes after the last kill, %d rows committed and every task checkpointed: %v", n, checkpointed())
		}
		for _, m := range ms {
			if m.exited() {
				t.Fatalf("process %s ended (the topic is unbounded):\n%s", m.name, m.errb.String())
			}
		}
	}
	t.Logf("%d of %d rows committed before the last runs", n, len(want))
	for _, m := range ms {
		m.cmd.Process.Signal(syscall.SIGKILL)
		<-m.done
		logs = append(logs, m.errb.String())
	}
	// The last runs start once the group has dropped the killed
	// processes (their sessions time out), as a deployment would restart.
	groupEmpty(t, c, "profileviews")
	bounded = true
	ms = []*member{startMember(t, "a", args("a")), startMember(t, "b", args("b"))}
	timeout := time.After(3 * time.Minute)
	for _, m := range ms {
		select {
		case <-m.done:
		case <-timeout:
			for _, o := range ms {
				t.Logf("process %s:\n%s", o.name, o.errb.String())
			}
			t.Fatalf("process %s did not end when the topic was read", m.name)
		}
		if code := m.cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("process %s: exit %d\n%s", m.name, code, m.errb.String())
		}
	}
	if !allFinished() {
		t.Fatalf("the processes ended before every task did")
	}
	t.Logf("the job ended %s after it started", time.Since(began).Round(time.Millisecond))
	restored := 0
	for _, m := range ms {
		logs = append(logs, m.errb.String())
	}
	if allResumed := strings.Count(strings.Join(logs[len(logs)-2:], ""), "resuming from checkpoint"); allResumed < 4 {
		t.Errorf("the last runs resumed %d tasks from checkpoints, want all four", allResumed)
	}
	for _, l := range logs {
		restored += len(restoredRe.FindAllString(l, -1))
	}
	t.Logf("%d task runs restored state from the changelog", restored)
	if restored == 0 {
		t.Errorf("no task moved with its state (no restore from the changelog)")
	}
	got := consume[pipelines.ProfileViewCount](t, k+"counts")
	sameRows(t, "counts after kill -9s of group members", got, want)
}
