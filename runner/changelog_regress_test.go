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
	opts := func(out, stateDir string, drain chan struct{}) runner.Options {
		return runner.Options{Mode: runner.Stream, Progress: -1, Parallelism: 1, StateDir: stateDir, Logger: slog.New(slog.DiscardHandler),
			CheckpointDir: filepath.Join(dir, "ckpt"), CheckpointInterval: time.Second, Changelog: changelog, Drain: drain,
			Bindings: map[string]string{"in": "mem://" + in, "out": out}}
	}
	send := func(n int) {
		before := src.Consumed()
		for i := 0; i < n; i++ {
			src.Send(ev{"k", int64(before + i), 1})
		}
		for src.Consumed() < before+n {
			time.Sleep(time.Millisecond)
		}
	}

	// Run 1: 5 records, a checkpoint, 5 more, a drain; its sink fails to
	// commit.
	drain := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		res, err := runner.Run(context.Background(), totalsPipeline(), opts("rvfail://x", filepath.Join(dir, "state-1"), drain))
		if res != nil {
			t.Logf("run 1: %d checkpoints", res.Checkpoints)
		}
		done <- err
	}()
	send(5)
	time.Sleep(1500 * time.Millisecond) // checkpoint 1 holds total 5
	send(5)
	close(drain)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "commit failed") {
		t.Fatalf("run 1: %v", err)
	}

	// Run 2, on another machine: resumes from checkpoint 1 and reads the
	// 5 records after it again.
	out, col := memOut()
	drain2 := make(chan struct{})
	go func() {
		_, err := runner.Run(context.Background(), totalsPipeline(), opts(out, filepath.Join(dir, "state-2"), drain2))
		done <- err
	}()
	for col.Written() < 5 {
		select {
		case err := <-done:
			t.Fatalf("run 2 ended: %v", err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	close(drain2)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(sortedStrings(col.Values())); got != "[k 10 k 6 k 7 k 8 k 9]" {
		t.Fatalf("after the restart: %s, want [k 10 k 6 k 7 k 8 k 9] (the state of checkpoint 1, total 5, plus the 5 records after it)", got)
	}
}
