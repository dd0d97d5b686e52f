package runner_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/runner"
)

// lockedLog is a log a run writes while the test reads it.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestGroupHandsTasksOver runs the running-totals job as two processes of
// one consumer group over a 4-partition topic. The first runs all four
// tasks; the second joins and the group gives it some of them; the first
// stops, and the second is given them all; then the second drains. Each
// move hands a task's state over through its final checkpoint, so every
// key's totals, across both processes' part files, are exactly 1, 2, ...,
// n: a lost state would start a key again from 1, a record read twice
// would repeat a total.
func TestGroupHandsTasksOver(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "in"), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/"
	ctx := context.Background()
	sent := map[string]int{}
	at := int64(0)
	feed := func(n int) {
		t.Helper()
		u, _ := connector.ParseURI(k + "in?key=Key")
		s, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: "feed", URI: u, Type: reflect.TypeFor[ev]()})
		if err != nil {
			t.Fatal(err)
		}
		var vs []any
		for range n {
			key := fmt.Sprint("k", at%13)
			vs = append(vs, ev{Key: key, At: at, V: 1})
			sent[key]++
			at++
		}
		if err := s.Write(ctx, vs); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	outDir := filepath.Join(dir, "out")
	ckpt := filepath.Join(dir, "checkpoints")
	type proc struct {
		stop, drain chan struct{}
		log         *lockedLog
		done        chan struct{}
		res         *runner.Result
		err         error
	}
	start := func(name string) *proc {
		p := &proc{stop: make(chan struct{}), drain: make(chan struct{}), log: &lockedLog{}, done: make(chan struct{})}
		o := runner.Options{Mode: runner.Stream, Progress: -1, Parallelism: 1, StateDir: filepath.Join(dir, "state-"+name),
			Logger:        slog.New(slog.NewTextHandler(p.log, nil)),
			CheckpointDir: ckpt, CheckpointInterval: 30 * time.Millisecond,
			Group: "totals", GroupSessionTimeout: time.Second, GroupRebalanceTimeout: 10 * time.Second,
			Bindings: map[string]string{"in": k + "in", "out": "file://" + outDir + "/"},
			Stop:     p.stop, Drain: p.drain}
		go func() {
			defer close(p.done)
			p.res, p.err = runner.Run(ctx, totalsPipeline(), o)
		}()
		return p
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("waited a minute for %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	checkpointed := func(task int) int {
		m, _ := filepath.Glob(filepath.Join(ckpt, fmt.Sprintf("task-%d", task), "chk-*[0-9]"))
		return len(m)
	}
	// committed reads every committed part: each line a "key total".
	committed := func() []string {
		var lines []string
		parts, _ := filepath.Glob(filepath.Join(outDir, "part-*"))
		for _, p := range parts {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				var s string
				if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				lines = append(lines, s)
			}
			f.Close()
		}
		return lines
	}

	feed(1500)
	a := start("a")
	waitFor("the first process to checkpoint its four tasks", func() bool {
		return checkpointed(0) > 0 && checkpointed(1) > 0 && checkpointed(2) > 0 && checkpointed(3) > 0
	})
	b := start("b")
	waitFor("the second process to be given tasks", func() bool {
		return strings.Contains(b.log.String(), "msg=\"run starting\"")
	})
	feed(1500)
	close(a.stop)
	<-a.done
	if a.err != nil || !a.res.Stopped {
		t.Fatalf("the first process: %v (stopped: %v)\n%s", a.err, a.res != nil && a.res.Stopped, a.log.String())
	}
	waitFor("the second process to be given every task", func() bool { return strings.Contains(b.log.String(), `tasks="[0 1 2 3]"`) })
	feed(1000)
	waitFor("every total to be committed", func() bool { return len(committed()) >= 4000 })
	close(b.drain)
	<-b.done
	if b.err != nil || !b.res.Drained {
		t.Fatalf("the second process: %v\n%s", b.err, b.log.String())
	}
	for _, p := range []*proc{a, b} {
		if n := strings.Count(p.log.String(), "tasks assigned"); n == 0 {
			t.Errorf("a process was assigned no tasks:\n%s", p.log.String())
		}
	}
	if !strings.Contains(b.log.String(), "resuming from checkpoint") {
		t.Errorf("no task resumed from a checkpoint in the second process:\n%s", b.log.String())
	}

	// The group holds the offsets of the tasks' last checkpoints: the
	// ends of the partitions, which Kafka's tools show as no lag.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	offs, err := adm.FetchOffsets(ctx, "totals")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "in")
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(e kadm.ListedOffset) {
		if o, ok := offs.Lookup("in", e.Partition); !ok || o.At != e.Offset {
			t.Errorf("partition %d: the group's offset is %v, want its end %d", e.Partition, o.At, e.Offset)
		}
	})
	totals := map[string][]int{}
	for _, l := range committed() {
		key, n, _ := strings.Cut(l, " ")
		v, err := strconv.Atoi(n)
		if err != nil {
			t.Fatalf("line %q", l)
		}
		totals[key] = append(totals[key], v)
	}
	for key, n := range sent {
		got := slices.Sorted(slices.Values(totals[key]))
		want := make([]int, n)
		for i := range want {
			want[i] = i + 1
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: %d totals %v..., want 1 to %d once each", key, len(got), got[:min(len(got), 12)], n)
		}
	}
	if len(totals) != len(sent) {
		t.Errorf("%d keys, want %d", len(totals), len(sent))
	}
	if hidden, _ := filepath.Glob(filepath.Join(outDir, ".*")); len(hidden) != 0 {
		t.Errorf("files left behind: %v", hidden)
	}
}

// TestGroupOptionErrors: a scaled-out job streams, keeps checkpoints, and
// reads kafka:// topics of as many partitions each.
func TestGroupOptionErrors(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/"
	ckpt := t.TempDir()
	for _, tc := range []struct {
		name string
		o    runner.Options
		is   error
		want string
	}{
		{"backfill", runner.Options{Mode: runner.Backfill, Group: "g"}, runner.ErrOptions, "--group is for --mode=stream"},
		{"no checkpoints", runner.Options{Mode: runner.Stream, Group: "g"}, runner.ErrOptions, "--group needs --checkpoint-dir"},
		{"session timeout without a group", runner.Options{Mode: runner.Stream, GroupSessionTimeout: time.Second}, runner.ErrOptions, "with --group"},
		{"a memory source", runner.Options{Mode: runner.Stream, Group: "g", CheckpointDir: ckpt,
			Bindings: map[string]string{"in": memIn(ev{"a", 1, 1}), "out": "discard://"}}, runner.ErrBinding, "cannot scale a job out over a group"},
		{"group= on the source", runner.Options{Mode: runner.Stream, Group: "g", CheckpointDir: ckpt,
			Bindings: map[string]string{"in": k + "in?group=x", "out": "discard://"}}, runner.ErrBinding, "do not apply in consumer group"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Logger = slog.New(slog.DiscardHandler)
			if tc.o.Bindings == nil {
				tc.o.Bindings = map[string]string{"in": k + "in", "out": "discard://"}
			}
			_, err := runner.Run(context.Background(), totalsPipeline(), tc.o)
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%v, want %v saying %q", err, tc.is, tc.want)
			}
		})
	}
}
