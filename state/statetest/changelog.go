package statetest

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/weir-dev/weir/state"
)

// ChangeLogStore runs the conformance suite of state.ChangeLogStore: what a
// run that resumes on a fresh machine relies on. open opens the store of
// one job, empty on its first call in each test: later calls in the same
// test open the same store again (a restart). A store that is dropped
// without Close stands for a process that crashed; the suite closes it at
// the end of the test, and ignores what that Close returns.
func ChangeLogStore(t *testing.T, open func(t *testing.T, cfg state.ChangeLogConfig) state.ChangeLogStore) {
	s := &logSuite{open: open}
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"CommittedIsRestored", s.testCommittedIsRestored},
		{"OpenChangesAreDiscarded", s.testOpenChangesAreDiscarded},
		{"RecoverCommitsPreCommitted", s.testRecoverCommitsPreCommitted},
		{"RecoverWithoutHandleDiscards", s.testRecoverWithoutHandleDiscards},
		{"BaseStartsALineage", s.testBaseStartsALineage},
		{"Deletions", s.testDeletions},
	} {
		t.Run(tc.name, tc.fn)
	}
}

type logSuite struct {
	open func(t *testing.T, cfg state.ChangeLogConfig) state.ChangeLogStore
}

// logOp is the operator the suite's keys belong to.
const logOp = 7

var logConfig = state.ChangeLogConfig{Operators: map[uint32]string{logOp: "Count"}, KeyGroups: state.DefaultKeyGroups}

// logKey is a state key of the suite's operator, in the key group of its
// user key.
func logKey(k string) string {
	kb := []byte(k)
	return string(state.AppendCell(nil, state.Cell{Op: logOp, KG: state.KeyGroupOf(kb, state.DefaultKeyGroups), Key: kb, Name: "v"}))
}

func (s *logSuite) openLog(t *testing.T) state.ChangeLogStore {
	t.Helper()
	l := s.open(t, logConfig)
	t.Cleanup(func() { l.Close() })
	return l
}

func logCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// change records k=v (v "" is a deletion).
func change(t *testing.T, l state.ChangeLogStore, kvs ...string) {
	t.Helper()
	for i := 0; i+1 < len(kvs); i += 2 {
		var v []byte
		if kvs[i+1] != "" {
			v = []byte(kvs[i+1])
		}
		if err := l.Changed([]byte(logKey(kvs[i])), v); err != nil {
			t.Fatal(err)
		}
	}
}

// checkpoint pre-commits and commits, as a completed checkpoint does.
func checkpoint(t *testing.T, l state.ChangeLogStore) {
	t.Helper()
	ctx := logCtx(t)
	if _, err := l.PreCommit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// restored restores from base into a map of user key to value; a nil value
// deletes.
func restored(t *testing.T, l state.ChangeLogStore, base state.ChangeLogPosition) map[string]string {
	t.Helper()
	users := map[string]string{}
	for _, k := range []string{"a", "b", "c", "d"} {
		users[logKey(k)] = k
	}
	got := map[string]string{}
	_, err := l.Restore(logCtx(t), base, func(k, v []byte) error {
		u, ok := users[string(k)]
		if !ok {
			return fmt.Errorf("restored a key the suite never wrote: %x", k)
		}
		if v == nil {
			delete(got, u)
		} else {
			got[u] = string(v)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantState(t *testing.T, got map[string]string, kvs ...string) {
	t.Helper()
	want := map[string]string{}
	for i := 0; i+1 < len(kvs); i += 2 {
		want[kvs[i]] = kvs[i+1]
	}
	if !maps.Equal(got, want) {
		t.Errorf("restored %v, want %v", got, want)
	}
}

// Committed changes come back after a clean restart; the last change of a
// key wins.
func (s *logSuite) testCommittedIsRestored(t *testing.T) {
	l := s.openLog(t)
	ctx := logCtx(t)
	if err := l.Recover(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	change(t, l, "a", "1", "b", "1")
	checkpoint(t, l)
	change(t, l, "a", "2", "c", "2")
	checkpoint(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	r := s.openLog(t)
	if err := r.Recover(ctx, 2, nil); err != nil {
		t.Fatal(err)
	}
	wantState(t, restored(t, r, nil), "a", "2", "b", "1", "c", "2")
}

// Changes after the last checkpoint are never restored, whether the run
// closed or crashed.
func (s *logSuite) testOpenChangesAreDiscarded(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(fmt.Sprintf("crash=%v", crash), func(t *testing.T) {
			l := s.openLog(t)
			ctx := logCtx(t)
			if err := l.Recover(ctx, 0, nil); err != nil {
				t.Fatal(err)
			}
			change(t, l, "a", "1")
			checkpoint(t, l)
			change(t, l, "a", "x", "b", "x")
			if !crash {
				l.Close()
			}
			r := s.openLog(t)
			if err := r.Recover(ctx, 1, nil); err != nil {
				t.Fatal(err)
			}
			wantState(t, restored(t, r, nil), "a", "1")
		})
	}
}

// A checkpoint stored with its handle, whose run crashed before Commit:
// Recover with the handle commits its changes, and not what came after.
func (s *logSuite) testRecoverCommitsPreCommitted(t *testing.T) {
	l := s.openLog(t)
	ctx := logCtx(t)
	if err := l.Recover(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	change(t, l, "a", "1")
	checkpoint(t, l)
	change(t, l, "a", "2", "b", "2")
	h, err := l.PreCommit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := s.openLog(t) // the run crashed before it could Commit
	if err := r.Recover(ctx, 2, h); err != nil {
		t.Fatal(err)
	}
	wantState(t, restored(t, r, nil), "a", "2", "b", "2")
}

// Without the handle (the checkpoint was never stored), a pre-committed
// checkpoint's changes are discarded.
func (s *logSuite) testRecoverWithoutHandleDiscards(t *testing.T) {
	l := s.openLog(t)
	ctx := logCtx(t)
	if err := l.Recover(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	change(t, l, "a", "1")
	checkpoint(t, l)
	change(t, l, "a", "2")
	if _, err := l.PreCommit(ctx); err != nil {
		t.Fatal(err)
	}
	r := s.openLog(t)
	if err := r.Recover(ctx, 1, nil); err != nil {
		t.Fatal(err)
	}
	wantState(t, restored(t, r, nil), "a", "1")
}

// A job that starts with empty state takes End as its base: a restore from
// it reads nothing of the jobs before, and everything of its own.
func (s *logSuite) testBaseStartsALineage(t *testing.T) {
	l := s.openLog(t)
	ctx := logCtx(t)
	if err := l.Recover(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	change(t, l, "a", "old", "b", "old")
	checkpoint(t, l)
	l.Close()

	n := s.openLog(t)
	if err := n.Recover(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	base, err := n.End(ctx)
	if err != nil {
		t.Fatal(err)
	}
	change(t, n, "b", "new", "c", "new")
	checkpoint(t, n)
	n.Close()

	r := s.openLog(t)
	if err := r.Recover(ctx, 1, nil); err != nil {
		t.Fatal(err)
	}
	wantState(t, restored(t, r, base), "b", "new", "c", "new")
	wantState(t, restored(t, r, nil), "a", "old", "b", "new", "c", "new")
}

// A deletion comes back as a nil value, in order with the key's sets.
func (s *logSuite) testDeletions(t *testing.T) {
	l := s.openLog(t)
	ctx := logCtx(t)
	if err := l.Recover(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	change(t, l, "a", "1", "b", "1", "d", "1")
	checkpoint(t, l)
	change(t, l, "a", "", "b", "", "b", "2")
	checkpoint(t, l)
	change(t, l, "d", "")
	checkpoint(t, l)
	l.Close()
	r := s.openLog(t)
	if err := r.Recover(ctx, 3, nil); err != nil {
		t.Fatal(err)
	}
	wantState(t, restored(t, r, nil), "b", "2")
}
