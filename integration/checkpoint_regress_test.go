package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
)

type hooks struct {
	preCommit func(ctx context.Context, id int64, inner connector.CheckpointSink) ([]byte, error)
	commitCk  func(ctx context.Context, id int64, inner connector.CheckpointSink) error
}

var hookTable sync.Map // name -> *hookEntry

type hookEntry struct {
	inner string // URI
	h     hooks
}

type hookConn struct{}

func init() { connector.Register("hook", hookConn{}) }

func (hookConn) OpenSource(context.Context, connector.SourceSpec) (connector.Source, error) {
	return nil, fmt.Errorf("no")
}
func (hookConn) OpenSink(ctx context.Context, spec connector.SinkSpec) (connector.Sink, error) {
	v, _ := hookTable.Load(spec.URI.Host)
	e := v.(*hookEntry)
	u, _ := connector.ParseURI(e.inner)
	s, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: spec.Binding, URI: u, Type: spec.Type})
	if err != nil {
		return nil, err
	}
	return &hookSink{CheckpointSink: s.(connector.CheckpointSink), h: e.h}, nil
}

type hookSink struct {
	connector.CheckpointSink
	h hooks
}

func (s *hookSink) PreCommit(ctx context.Context, id int64) ([]byte, error) {
	if s.h.preCommit != nil {
		return s.h.preCommit(ctx, id, s.CheckpointSink)
	}
	return s.CheckpointSink.PreCommit(ctx, id)
}
func (s *hookSink) CommitCheckpoint(ctx context.Context, id int64) error {
	if s.h.commitCk != nil {
		return s.h.commitCk(ctx, id, s.CheckpointSink)
	}
	return s.CheckpointSink.CommitCheckpoint(ctx, id)
}

func runPV(t *testing.T, ctx context.Context, in, countsURI, late, ckpt, stateDir string, qlen int, drain chan struct{}, iv ...time.Duration) (*runner.Result, error) {
	interval := 20 * time.Millisecond
	if len(iv) > 0 {
		interval = iv[0]
	}
	p, err := pipelines.ProfileViews(pipelines.ProfileViewsConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return runner.Run(ctx, p, quietOptions(runner.Options{
		Mode: runner.Stream, Drain: drain,
		Bindings:      map[string]string{"pageviews": "mem://" + in, "counts": countsURI, "late": "mem://" + late},
		CheckpointDir: ckpt, CheckpointInterval: interval, StateDir: stateDir,
		BatchSize: 64, QueueLength: qlen,
	}))
}

// Regression: a reader that acks checkpoint N, keeps reading, and ends before N
// completes must not give N its post-barrier positions (it did: records were lost).
func TestReaderEndingDuringACheckpointKeepsItsPositions(t *testing.T) {
	views, _ := dataset(t, 20000)
	want, _ := refProfileViews(views, pipelines.ProfileViewsConfig{Window: time.Hour, OutOfOrderness: 5 * time.Minute})
	n := seq.Add(1)
	in, counts, late := fmt.Sprintf("rv1-in-%d", n), fmt.Sprintf("rv1-counts-%d", n), fmt.Sprintf("rv1-late-%d", n)
	src := memory.NewStream(in)
	cc := memory.NewCollector(counts)
	memory.NewCollector(late)
	dir := t.TempDir()
	ckpt, stateDir := filepath.Join(dir, "checkpoints"), filepath.Join(dir, "state")
	ctx, cancel := context.WithCancel(context.Background())
	var blockedID int64
	var once sync.Once
	hookTable.Store(fmt.Sprintf("h%d", n), &hookEntry{inner: "mem://" + counts, h: hooks{
		preCommit: func(c context.Context, id int64, inner connector.CheckpointSink) ([]byte, error) {
			once.Do(func() {
				blockedID = id
				// Keep checkpoint id in flight until the reader has read everything and retired.
				src.Send(anys(views[len(views)/2:])...)
				src.Close()
				for src.Consumed() < len(views) {
					time.Sleep(time.Millisecond)
				}
				time.Sleep(200 * time.Millisecond)
			})
			return inner.PreCommit(c, id)
		},
		commitCk: func(c context.Context, id int64, inner connector.CheckpointSink) error {
			if id == blockedID {
				cancel() // crash right after checkpoint id completed
				return c.Err()
			}
			return inner.CommitCheckpoint(c, id)
		},
	}})
	src.Send(anys(views[:len(views)/2])...)
	_, err := runPV(t, ctx, in, fmt.Sprintf("hook://h%d", n), late, ckpt, stateDir, 100000, nil)
	t.Logf("run 1: %v (blocked checkpoint %d)", err, blockedID)
	m, _ := os.ReadFile(filepath.Join(ckpt, fmt.Sprintf("chk-%012d", blockedID), "meta.json"))
	var meta struct {
		Splits map[string]map[string]json.RawMessage
	}
	json.Unmarshal(m, &meta)
	t.Logf("checkpoint %d splits: %s", blockedID, meta.Splits["pageviews"])
	res, err := runPV(t, context.Background(), in, "mem://"+counts, late, ckpt, stateDir, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run 2 read %d", res.Read["pageviews"])
	got := typed[pipelines.ProfileViewCount](t, cc.Values())
	var sg, sw int64
	for _, r := range got {
		sg += r.Count
	}
	for _, r := range want {
		sw += r.Count
	}
	t.Logf("views counted: got %d want %d", sg, sw)
	sameRows(t, "counts", got, want)
}

// Regression: a run that crashed after a sink pre-committed checkpoint 1 but before
// chk-1 was renamed leaves .pending-c1; the restart (no checkpoint to resume
// from) must drop it (it published it).
func TestRestartWithoutCheckpointDropsPendingOutput(t *testing.T) {
	views, _ := dataset(t, 20000)
	want, _ := refProfileViews(views, pipelines.ProfileViewsConfig{Window: time.Hour, OutOfOrderness: 5 * time.Minute})
	n := seq.Add(1)
	in, late := fmt.Sprintf("rv2-in-%d", n), fmt.Sprintf("rv2-late-%d", n)
	src := memory.NewStream(in)
	memory.NewCollector(late)
	dir := t.TempDir()
	out := filepath.Join(dir, "counts") + "/"
	os.MkdirAll(out, 0o755)
	ckpt, stateDir := filepath.Join(dir, "checkpoints"), filepath.Join(dir, "state")
	ctx, cancel := context.WithCancel(context.Background())
	hookTable.Store(fmt.Sprintf("h%d", n), &hookEntry{inner: "file://" + out, h: hooks{
		preCommit: func(c context.Context, id int64, inner connector.CheckpointSink) ([]byte, error) {
			h, err := inner.PreCommit(c, id)
			cancel() // crash before the checkpoint completes
			<-c.Done()
			if err != nil {
				return h, err
			}
			return h, c.Err()
		},
	}})
	src.Send(anys(views[:len(views)/2])...)
	_, err := runPV(t, ctx, in, fmt.Sprintf("hook://h%d", n), late, ckpt, stateDir, 16, nil, 700*time.Millisecond)
	t.Logf("run 1: %v", err)
	ents, _ := os.ReadDir(out)
	for _, e := range ents {
		t.Logf("after crash: %s", e.Name())
	}
	// The restarted run writes nothing before its checkpoint 1: its input
	// comes once that checkpoint is complete (or, if that takes a minute,
	// then: the counts are still checked).
	in2 := in + "-b"
	src2 := memory.NewStream(in2)
	go func() {
		for dl := time.Now().Add(time.Minute); newestCheckpoint(ckpt) < 1 && time.Now().Before(dl); {
			time.Sleep(2 * time.Millisecond)
		}
		src2.Send(anys(views)...)
		src2.Close()
	}()
	res, err := runPV(t, context.Background(), in2, "file://"+out, late, ckpt, stateDir, 16, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run 2 read %d", res.Read["pageviews"])
	var got []pipelines.ProfileViewCount
	parts, _ := filepath.Glob(filepath.Join(out, "part-*"))
	for _, p := range parts {
		got = append(got, readJSONL[pipelines.ProfileViewCount](t, p)...)
	}
	t.Logf("parts %v", parts)
	sameRows(t, "counts", got, want)
}
