package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/kafka"
)

func openTxnSink(t *testing.T, u string) connector.CheckpointSink {
	t.Helper()
	s, err := connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "out", URI: uri(t, u), Type: reflect.TypeFor[event]()})
	if err != nil {
		t.Fatal(err)
	}
	cs, ok := s.(connector.CheckpointSink)
	if !ok {
		t.Fatalf("%s: %T is not a two-phase sink", u, s)
	}
	return cs
}

func users(recs []connector.Record) string {
	var us []string
	for _, r := range recs {
		us = append(us, r.Value.(event).User)
	}
	sort.Strings(us)
	return strings.Join(us, " ")
}

func evs(names ...string) []any {
	var out []any
	for _, n := range names {
		out = append(out, event{User: n})
	}
	return out
}

// TestExactlyOnceSinkAcrossCrashes runs the two-phase protocol the runner
// drives, crashes at each point that matters, and reads the topic as a
// read_committed consumer after the restart's Recover.
func TestExactlyOnceSinkAcrossCrashes(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// run writes and crashes; it returns the checkpoint to resume
		// from and its handle.
		run  func(t *testing.T, s connector.CheckpointSink) (int64, []byte)
		want string
	}{{
		name: "crash after the checkpoint completed, before its commit",
		run: func(t *testing.T, s connector.CheckpointSink) (int64, []byte) {
			s.Write(ctx, evs("a", "b"))
			h1, _ := s.PreCommit(ctx, 1)
			if err := s.CommitCheckpoint(ctx, 1); err != nil || h1 == nil {
				t.Fatalf("checkpoint 1: %v, handle %s", err, h1)
			}
			s.Write(ctx, evs("c"))
			h2, err := s.PreCommit(ctx, 2)
			if err != nil {
				t.Fatal(err)
			}
			return 2, h2 // crash: no CommitCheckpoint(2)
		},
		want: "a b c",
	}, {
		name: "crash after a commit, with output written after it",
		run: func(t *testing.T, s connector.CheckpointSink) (int64, []byte) {
			s.Write(ctx, evs("a"))
			h1, _ := s.PreCommit(ctx, 1)
			s.CommitCheckpoint(ctx, 1)
			s.Write(ctx, evs("x", "y"))
			return 1, h1 // crash while x and y are in an open transaction
		},
		want: "a",
	}, {
		name: "crash after a pre-commit whose checkpoint did not complete",
		run: func(t *testing.T, s connector.CheckpointSink) (int64, []byte) {
			s.Write(ctx, evs("a"))
			h1, _ := s.PreCommit(ctx, 1)
			s.CommitCheckpoint(ctx, 1)
			s.Write(ctx, evs("x"))
			s.PreCommit(ctx, 2)
			return 1, h1
		},
		want: "a",
	}, {
		name: "a failed run aborts, and the restart has no checkpoint",
		run: func(t *testing.T, s connector.CheckpointSink) (int64, []byte) {
			s.Write(ctx, evs("x"))
			if err := s.Abort(); err != nil {
				t.Fatal(err)
			}
			return 0, nil
		},
		want: "",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := cluster(t, 2, "out")
			u := "kafka://" + addr + "/out?delivery=exactly-once&txn-id=job-1&key=user"
			at, h := tc.run(t, openTxnSink(t, u))
			s := openTxnSink(t, u)
			if err := s.Recover(ctx, at, h); err != nil {
				t.Fatalf("recover at %d: %v", at, err)
			}
			// The restarted run goes on from there.
			s.Write(ctx, evs("z"))
			h3, _ := s.PreCommit(ctx, at+1)
			if err := s.CommitCheckpoint(ctx, at+1); err != nil || h3 == nil {
				t.Fatalf("checkpoint after the restart: %v", err)
			}
			if err := s.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			recs, _ := readAll(t, "kafka://"+addr+"/out?until=latest")
			want := strings.TrimSpace(tc.want + " z")
			if got := users(recs); got != want {
				t.Fatalf("read_committed sees %q, want %q", got, want)
			}
		})
	}
}

// TestExactlyOnceWithoutCheckpoints: with no checkpoints the run's output
// is one transaction, visible only when the run commits.
func TestExactlyOnceWithoutCheckpoints(t *testing.T) {
	ctx := context.Background()
	addr := cluster(t, 1, "out")
	u := "kafka://" + addr + "/out?delivery=exactly-once&txn-id=backfill"
	s := openTxnSink(t, u)
	s.Write(ctx, evs("a", "b"))
	if recs, _ := readAll(t, "kafka://"+addr+"/out?until=latest"); len(recs) != 0 {
		t.Fatalf("before the commit a read_committed consumer sees %q", users(recs))
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if recs, _ := readAll(t, "kafka://"+addr+"/out?until=latest"); users(recs) != "a b" {
		t.Fatalf("after the commit: %q", users(recs))
	}
}

// TestRecoverReportsAnAbortedTransaction: a pre-committed transaction that
// something else aborted (here, a second producer under the same txn-id)
// cannot be committed; Recover says its output is lost instead of going on.
func TestRecoverReportsAnAbortedTransaction(t *testing.T) {
	ctx := context.Background()
	addr := cluster(t, 1, "out")
	u := "kafka://" + addr + "/out?delivery=exactly-once&txn-id=shared"
	s := openTxnSink(t, u)
	s.Write(ctx, evs("a"))
	h, err := s.PreCommit(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	other := openTxnSink(t, u)
	if err := other.Recover(ctx, 0, nil); err != nil { // fences the id
		t.Fatal(err)
	}
	err = openTxnSink(t, u).Recover(ctx, 1, h)
	if err == nil || !strings.Contains(err.Error(), "lost") {
		t.Fatalf("recover: %v, want an error saying the output is lost", err)
	}
}

func TestExactlyOnceNeedsATxnID(t *testing.T) {
	addr := cluster(t, 1, "out")
	_, err := connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "out", URI: uri(t, "kafka://"+addr+"/out?delivery=exactly-once"), Type: reflect.TypeFor[event]()})
	if !errors.Is(err, kafka.ErrBadURI) || !strings.Contains(err.Error(), "txn-id") {
		t.Fatalf("got %v", err)
	}
}

// TestExactlyOnceOutlivesTheWriteContext: the engine cancels the context
// it wrote with when the run ends, before the runner commits; the records
// still buffered then must be committed, not failed.
func TestExactlyOnceOutlivesTheWriteContext(t *testing.T) {
	addr := cluster(t, 1, "out")
	s := openTxnSink(t, "kafka://"+addr+"/out?delivery=exactly-once&txn-id=run-end")
	wctx, cancel := context.WithCancel(context.Background())
	var vs []any
	for i := 0; i < 20000; i++ {
		vs = append(vs, event{User: "u", N: int64(i)})
	}
	if err := s.Write(wctx, vs); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := s.Commit(context.Background()); err != nil {
		t.Fatalf("commit after the write's context ended: %v", err)
	}
	if recs, _ := readAll(t, "kafka://"+addr+"/out?until=latest"); len(recs) != len(vs) {
		t.Fatalf("read %d records, wrote %d", len(recs), len(vs))
	}
}

// TestRecoverRefusesAnOlderCheckpoint: each checkpoint's transaction also
// commits the checkpoint's id, so a sink resumed from a checkpoint older
// than the last one it committed (the newer checkpoints' folders were
// deleted) refuses with connector.ErrPublishedAhead instead of publishing
// that output again. A pre-committed checkpoint that was never committed
// does not count, and the newest committed checkpoint resumes.
func TestRecoverRefusesAnOlderCheckpoint(t *testing.T) {
	ctx := context.Background()
	addr := cluster(t, 1, "out")
	u := "kafka://" + addr + "/out?delivery=exactly-once&txn-id=job-m"
	s := openTxnSink(t, u)
	handles := map[int64][]byte{}
	for id := int64(1); id <= 3; id++ {
		s.Write(ctx, evs(fmt.Sprint("c", id)))
		h, err := s.PreCommit(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CommitCheckpoint(ctx, id); err != nil {
			t.Fatal(err)
		}
		handles[id] = h
	}
	s.Write(ctx, evs("c4"))
	if _, err := s.PreCommit(ctx, 4); err != nil { // a crash before 4 completes
		t.Fatal(err)
	}

	// Published tells without waiting for, or ending, the open one.
	if p, err := openTxnSink(t, u).(connector.PublishedSink).Published(ctx); err != nil || p != 3 {
		t.Errorf("published: %d, %v; want checkpoint 3", p, err)
	}
	err := openTxnSink(t, u).Recover(ctx, 2, handles[2])
	if !errors.Is(err, connector.ErrPublishedAhead) || !strings.Contains(err.Error(), "checkpoint 3") || strings.Contains(err.Error(), "\n") {
		t.Errorf("recover at 2 after 3 was committed: %v, want one line wrapping ErrPublishedAhead naming checkpoint 3", err)
	}
	if err := openTxnSink(t, u).Recover(ctx, 0, nil); !errors.Is(err, connector.ErrPublishedAhead) {
		t.Errorf("a start with no checkpoint after 3 was committed: %v, want ErrPublishedAhead", err)
	}
	if err := openTxnSink(t, u).Recover(ctx, 3, handles[3]); err != nil {
		t.Errorf("recover at the last committed checkpoint: %v", err)
	}
	if recs, _ := readAll(t, "kafka://"+addr+"/out?until=latest"); users(recs) != "c1 c2 c3" {
		t.Errorf("read_committed sees %q, want c1 c2 c3", users(recs))
	}
}
