package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// memlog://JOB is a changelog store in this process's memory, registered
// as a second store beside kafka://: the runner reaches stores through
// state.ChangeLogStore alone, so a store of any scheme plugs in the same way.
func init() { state.RegisterChangeLog("memlog", openMemLog) }

type logRec struct{ k, v []byte }

// memLogJob is one job's changelog: what is committed, and what each
// checkpoint pre-committed, by handle, until it is committed or discarded.
type memLogJob struct {
	mu        sync.Mutex
	committed []logRec
	pre       map[string][]logRec
	next      int
}

var memLogs = struct {
	sync.Mutex
	jobs map[string]*memLogJob
}{jobs: map[string]*memLogJob{}}

type memLog struct {
	job  *memLogJob
	open []logRec // this run's changes since its last PreCommit
	mu   sync.Mutex
	last string // the handle of the last PreCommit
}

func openMemLog(_ context.Context, u *url.URL, _ state.ChangeLogConfig) (state.ChangeLogStore, error) {
	memLogs.Lock()
	defer memLogs.Unlock()
	j := memLogs.jobs[u.Host+u.Path]
	if j == nil {
		j = &memLogJob{pre: map[string][]logRec{}}
		memLogs.jobs[u.Host+u.Path] = j
	}
	return &memLog{job: j}, nil
}

func (l *memLog) Changed(k, v []byte) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var vc []byte
	if v != nil {
		vc = append([]byte{}, v...)
	}
	l.open = append(l.open, logRec{append([]byte(nil), k...), vc})
	return nil
}

func (l *memLog) PreCommit(context.Context) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.job.mu.Lock()
	defer l.job.mu.Unlock()
	l.job.next++
	l.last = fmt.Sprint(l.job.next)
	l.job.pre[l.last] = l.open
	l.open = nil
	return []byte(l.last), nil
}

func (l *memLog) Commit(context.Context) error {
	l.job.mu.Lock()
	defer l.job.mu.Unlock()
	recs, ok := l.job.pre[l.last]
	if !ok {
		return errors.New("memlog: nothing pre-committed")
	}
	l.job.committed = append(l.job.committed, recs...)
	delete(l.job.pre, l.last)
	return nil
}

func (l *memLog) Recover(_ context.Context, _ int64, handle []byte) error {
	l.job.mu.Lock()
	defer l.job.mu.Unlock()
	if recs, ok := l.job.pre[string(handle)]; handle != nil && ok {
		l.job.committed = append(l.job.committed, recs...)
	}
	clear(l.job.pre) // a crashed run's later checkpoints
	return nil
}

func (l *memLog) End(context.Context) (state.ChangeLogPosition, error) {
	l.job.mu.Lock()
	defer l.job.mu.Unlock()
	return json.Marshal(len(l.job.committed))
}

func (l *memLog) Restore(_ context.Context, base state.ChangeLogPosition, apply func(k, v []byte) error) (state.RestoreStats, error) {
	var from int
	if base != nil {
		if err := json.Unmarshal(base, &from); err != nil {
			return state.RestoreStats{}, err
		}
	}
	l.job.mu.Lock()
	recs := l.job.committed[from:]
	l.job.mu.Unlock()
	for _, r := range recs {
		if err := apply(r.k, r.v); err != nil {
			return state.RestoreStats{}, err
		}
	}
	return state.RestoreStats{Records: int64(len(recs))}, nil
}

func (l *memLog) Close() error { return nil }

// The in-memory store keeps the stores' contract, as kafka:// does.
func TestMemLogConformance(t *testing.T) {
	statetest.ChangeLogStore(t, func(t *testing.T, cfg state.ChangeLogConfig) state.ChangeLogStore {
		l, err := state.OpenChangeLog(context.Background(), "memlog://"+strings.ReplaceAll(t.Name(), "/", "-"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}

// A job whose changelog is a memlog:// store, resumed with an empty state
// directory (on another machine), goes on with the state the changelog
// rebuilt; a scheme with no store registered is refused at launch.
func TestChangelogOfAnotherStore(t *testing.T) {
	in := fmt.Sprintf("memlog-in-%d", names.Add(1))
	src := memory.NewStream(in)
	dir := t.TempDir()
	opts := func(out, stateDir, clog string) runner.Options {
		return runner.Options{Mode: runner.Stream, Progress: -1, Parallelism: 2, StateDir: stateDir, Logger: slog.New(slog.DiscardHandler),
			CheckpointDir: filepath.Join(dir, "checkpoints"), CheckpointInterval: time.Hour, Changelog: clog,
			Bindings: map[string]string{"in": "mem://" + in, "out": out}}
	}
	// runUntil runs until feed is read, then stops the run: its final
	// checkpoint holds everything read.
	runUntil := func(o runner.Options, feed []any) error {
		stop := make(chan struct{})
		o.Stop = stop
		done := make(chan error, 1)
		go func() {
			_, err := runner.Run(context.Background(), totalsPipeline(), o)
			done <- err
		}()
		want := src.Consumed() + len(feed)
		src.Send(feed...)
		for deadline := time.Now().Add(time.Minute); src.Consumed() < want; {
			select {
			case err := <-done:
				return err
			case <-time.After(2 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("the run read %d of %d records in a minute", src.Consumed(), want)
			}
		}
		close(stop)
		return <-done
	}
	clog := fmt.Sprintf("memlog://job-%d", names.Add(1))
	var feed []any
	for i := 0; i < 300; i++ {
		feed = append(feed, ev{Key: fmt.Sprint("k", i%7), At: int64(i), V: 1})
	}
	out1, _ := memOut()
	if err := runUntil(opts(out1, filepath.Join(dir, "state-1"), clog), feed); err != nil {
		t.Fatal(err)
	}
	out2, c2 := memOut()
	if err := runUntil(opts(out2, filepath.Join(dir, "state-2"), clog), []any{ev{"k0", 1000, 5}, ev{"k6", 1001, 1}}); err != nil {
		t.Fatal(err)
	}
	// 300 elements over 7 keys: k0 has 43, k6 has 42.
	if got := fmt.Sprint(sortedStrings(c2.Values())); got != "[k0 48 k6 43]" {
		t.Fatalf("after a restore from the memlog:// changelog: %s, want [k0 48 k6 43]", got)
	}

	_, err := runner.Run(context.Background(), totalsPipeline(), opts("discard://", filepath.Join(dir, "state-3"), "nolog://x"))
	if !errors.Is(err, state.ErrNoChangeLogStore) || !strings.Contains(err.Error(), "memlog://") {
		t.Errorf("an unknown changelog scheme: %v, want ErrNoChangeLogStore naming the known ones", err)
	}
}
