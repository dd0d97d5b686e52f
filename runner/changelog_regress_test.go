package runner_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
)

// rvfail:// is a two-phase sink whose end-of-run Commit fails.
type rvFailConn struct{}

func init() { connector.Register("rvfail", rvFailConn{}) }

func (rvFailConn) OpenSource(context.Context, connector.SourceSpec) (connector.Source, error) {
	return nil, errors.New("no")
}
func (rvFailConn) OpenSink(context.Context, connector.SinkSpec) (connector.Sink, error) {
	return rvFailSink{}, nil
}

type rvFailSink struct{}

func (rvFailSink) Write(context.Context, []any) error               { return nil }
func (rvFailSink) PreCommit(context.Context, int64) ([]byte, error) { return nil, nil }
func (rvFailSink) CommitCheckpoint(context.Context, int64) error    { return nil }
func (rvFailSink) Recover(context.Context, int64, []byte) error     { return nil }
func (rvFailSink) Commit(context.Context) error                     { return errors.New("commit failed") }
func (rvFailSink) Abort() error                                     { return nil }

// TestChangelogCommitOpenBeforeSinks: a drained run with a changelog
// commits the state changes made after its last checkpoint (CommitOpen)
// before its sinks commit. When a sink then fails to commit (or the
// process dies before FINISHED is written), the directory is not finished
// and a restart resumes from the last checkpoint, but the state it
// rebuilds from the changelog is the state after the drain: the records
// after the checkpoint are applied twice.
//
// The checkpoint is a stop's final one, so that no timer decides what it
// holds: the run after it resumes, reads 5 more records and drains.
func TestChangelogCommitOpenBeforeSinks(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	changelog := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/rvtotals?partitions=2"
	in := fmt.Sprintf("rv-clog-in-%d", names.Add(1))
	src := memory.NewStream(in)
	dir := t.TempDir()
	// start runs the totals on out and stateDir until stop or drain is
	// closed; only a stop's final checkpoint is taken.
	start := func(out, stateDir string, stop, drain chan struct{}) chan error {
		done := make(chan error, 1)
		go func() {
			_, err := runner.Run(context.Background(), totalsPipeline(), runner.Options{Mode: runner.Stream, Progress: -1, Parallelism: 1,
				StateDir: stateDir, Logger: slog.New(slog.DiscardHandler),
				CheckpointDir: filepath.Join(dir, "ckpt"), CheckpointInterval: time.Hour, Changelog: changelog, Stop: stop, Drain: drain,
				Bindings: map[string]string{"in": "mem://" + in, "out": out}})
			done <- err
		}()
		return done
	}
	// send sends n records and waits until the run has read them.
	send := func(n int, done chan error) {
		t.Helper()
		before := src.Consumed()
		for i := 0; i < n; i++ {
			src.Send(ev{"k", int64(before + i), 1})
		}
		waitUntil(t, fmt.Sprintf("the run to read %d records", n), func() bool { return src.Consumed() >= before+n || len(done) > 0 })
		if len(done) > 0 {
			t.Fatalf("the run ended before it read its input: %v", <-done)
		}
	}

	// Run 1: 5 records, then a stop: checkpoint 1 holds total 5.
	stop := make(chan struct{})
	out1, col1 := memOut()
	done := start(out1, filepath.Join(dir, "state-1"), stop, nil)
	send(5, done)
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("run 1: %v", err)
	}
	if got := fmt.Sprint(sortedStrings(col1.Values())); got != "[k 1 k 2 k 3 k 4 k 5]" {
		t.Fatalf("run 1: %s", got)
	}

	// Run 1 goes on from checkpoint 1: 5 more records, a drain; its sink
	// fails to commit.
	drain := make(chan struct{})
	done = start("rvfail://x", filepath.Join(dir, "state-1"), nil, drain)
	send(5, done)
	close(drain)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "commit failed") {
		t.Fatalf("run 1, resumed: %v", err)
	}

	// Run 2, on another machine: resumes from checkpoint 1 and reads the
	// 5 records after it again.
	out, col := memOut()
	drain2 := make(chan struct{})
	done = start(out, filepath.Join(dir, "state-2"), nil, drain2)
	waitUntil(t, "run 2 to write 5 totals", func() bool { return col.Written() >= 5 || len(done) > 0 })
	close(drain2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sortedStrings(col.Values())); got != "[k 10 k 6 k 7 k 8 k 9]" {
		t.Fatalf("after the restart: %s, want [k 10 k 6 k 7 k 8 k 9] (the state of checkpoint 1, total 5, plus the 5 records after it)", got)
	}
}
