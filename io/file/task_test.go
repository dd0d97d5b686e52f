package file_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/connector"
)

// openTaskSink opens uri as the sink of task.
func openTaskSink(t *testing.T, uri, task string) (connector.Sink, error) {
	t.Helper()
	u, err := connector.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	return connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "out", URI: u, Type: kvType, Task: task})
}

// checkpointSink opens uri as the checkpointing sink of task.
func checkpointSink(t *testing.T, uri, task string) connector.CheckpointSink {
	t.Helper()
	sk, err := openTaskSink(t, uri, task)
	if err != nil {
		t.Fatal(err)
	}
	cs, ok := sk.(connector.CheckpointSink)
	if !ok {
		t.Fatalf("%s: %T is no CheckpointSink", uri, sk)
	}
	return cs
}

// keys reads every record below uri and returns their keys, sorted.
func keys(t *testing.T, uri string) []string {
	t.Helper()
	recs, _ := get(t, uri)
	var ks []string
	for _, r := range recs {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Pos, r.Err)
		}
		ks = append(ks, r.Value.(kv).K)
	}
	slices.Sort(ks)
	return ks
}

// TestTaskFileNames: a directory sink names every file it writes with its
// task, and a sink of no task names them as it always did.
func TestTaskFileNames(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		task, query string
		// want: the names after a run without checkpoints, while a part
		// is being written, and after a run with checkpoints 1 and 2;
		// "N" stands for a number.
		once, temp, ckpts string
	}{
		{"", "", "part-00000.jsonl", ".part-00000.jsonl.tmp-N",
			"part-c000000000001.jsonl part-c000000000002.jsonl part-end-N.jsonl"},
		{"task-0", "", "part-task-0-00000.jsonl", ".part-task-0-00000.jsonl.tmp-N",
			"part-task-0-c000000000001.jsonl part-task-0-c000000000002.jsonl part-task-0-end-N.jsonl"},
		{"Task_7.b", "?format=parquet", "part-Task_7.b-00000.parquet", ".part-Task_7.b-00000.parquet.tmp-N",
			"part-Task_7.b-c000000000001.parquet part-Task_7.b-c000000000002.parquet part-Task_7.b-end-N.parquet"},
	} {
		names := func(dir string) string {
			return regexp.MustCompile(`(tmp|end)-[0-9]+`).ReplaceAllString(strings.Join(dirNames(t, dir), " "), "$1-N")
		}
		dir := filepath.Join(t.TempDir(), "out")
		uri := "file://" + dir + "/" + tc.query
		sk, err := openTaskSink(t, uri, tc.task)
		if err != nil {
			t.Fatalf("task %q: %v", tc.task, err)
		}
		sk.Write(ctx, []any{kv{"a", 1}})
		if got := names(dir); got != tc.temp {
			t.Errorf("task %q: while writing: %s, want %s", tc.task, got, tc.temp)
		}
		if err := sk.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if got := names(dir); got != tc.once {
			t.Errorf("task %q: without checkpoints: %s, want %s", tc.task, got, tc.once)
		}

		dir = filepath.Join(t.TempDir(), "out")
		uri = "file://" + dir + "/" + tc.query
		cs := checkpointSink(t, uri, tc.task)
		for id, k := range []string{"c1", "c2", "end"} {
			if err := cs.Write(ctx, []any{kv{k, id}}); err != nil {
				t.Fatal(err)
			}
			if k != "end" {
				if _, err := cs.PreCommit(ctx, int64(id+1)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := cs.CommitCheckpoint(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if err := cs.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if got := names(dir); got != tc.ckpts {
			t.Errorf("task %q: with checkpoints: %s, want %s", tc.task, got, tc.ckpts)
		}
		if got := keys(t, uri); !slices.Equal(got, []string{"c1", "c2", "end"}) {
			t.Errorf("task %q: read back %v", tc.task, got)
		}
	}
}

// TestTaskRecoverKeepsOtherTasksFiles: two tasks write one directory with
// checkpoint ids of their own; one recovering at an older checkpoint
// settles its own files only, and the directory reads as every task's
// committed output.
func TestTaskRecoverKeepsOtherTasksFiles(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "out")
	uri := "file://" + dir + "/"
	s0, s1 := checkpointSink(t, uri, "task-0"), checkpointSink(t, uri, "task-1")
	for _, id := range []int64{1, 2} {
		for task, s := range map[string]connector.CheckpointSink{"t0": s0, "t1": s1} {
			if err := s.Write(ctx, []any{kv{fmt.Sprintf("%s-c%d", task, id), int(id)}}); err != nil {
				t.Fatal(err)
			}
			if _, err := s.PreCommit(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Both are writing their next part when task-1 dies.
	s0.Write(ctx, []any{kv{"t0-c3", 3}})
	s1.Write(ctx, []any{kv{"t1-lost", 3}})
	defer s1.Abort()

	r1 := checkpointSink(t, uri, "task-1")
	if err := r1.Recover(ctx, 1, nil); err != nil {
		t.Fatal(err)
	}
	got := regexp.MustCompile(`tmp-[0-9]+`).ReplaceAllString(strings.Join(dirNames(t, dir), " "), "tmp-N")
	want := strings.Join([]string{
		".part-task-0-00000.jsonl.tmp-N", // task-0's part being written
		".pending-task-0-c000000000001.jsonl",
		".pending-task-0-c000000000002.jsonl",
		"part-task-1-c000000000001.jsonl", // task-1's c2 and its half-written part are gone
	}, " ")
	if got != want {
		t.Errorf("after task-1 recovered at checkpoint 1:\n got %s\nwant %s", got, want)
	}
	if got, want := keys(t, uri), []string{"t1-c1"}; !slices.Equal(got, want) {
		t.Errorf("read %v, want %v", got, want)
	}

	// task-0 goes on: its checkpoints complete, and its part being written
	// is still there to pre-commit.
	if _, err := s0.PreCommit(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if err := s0.CommitCheckpoint(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(t, uri), []string{"t0-c1", "t0-c2", "t0-c3", "t1-c1"}; !slices.Equal(got, want) {
		t.Errorf("read %v, want %v", got, want)
	}
}

// TestTaskRecoverTemporaryFiles: Recover deletes the pending files after
// its checkpoint and the temporary files of its own task only.
func TestTaskRecoverTemporaryFiles(t *testing.T) {
	files := []string{
		".part-00000.jsonl.tmp-1",
		".part-00000.parquet.tmp-2",
		".part-task-0-00000.jsonl.tmp-3",
		".part-task-1-00000.jsonl.tmp-4",
		".part-00000-x-00000.jsonl.tmp-5", // task "00000-x"
		".pending-c000000000001.jsonl",
		".pending-task-0-c000000000001.jsonl",
		".pending-task-1-c000000000001.jsonl",
		".pending-c1-c000000000001.jsonl", // task "c1"
	}
	for _, tc := range []struct {
		task    string
		removed []string
	}{
		{"", []string{".part-00000.jsonl.tmp-1", ".part-00000.parquet.tmp-2", ".pending-c000000000001.jsonl"}},
		{"task-0", []string{".part-task-0-00000.jsonl.tmp-3", ".pending-task-0-c000000000001.jsonl"}},
		{"c1", []string{".pending-c1-c000000000001.jsonl"}},
		{"00000-x", []string{".part-00000-x-00000.jsonl.tmp-5"}},
	} {
		dir := t.TempDir()
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cs := checkpointSink(t, "file://"+dir+"/", tc.task)
		if err := cs.Recover(context.Background(), 0, nil); err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, f := range files {
			if !slices.Contains(tc.removed, f) {
				want = append(want, f)
			}
		}
		slices.Sort(want)
		if got := dirNames(t, dir); !slices.Equal(got, want) {
			t.Errorf("task %q: Recover(0) left %v, want %v", tc.task, got, want)
		}
	}
}

// TestTaskOpenErrors: a sink of a task must be a directory, and the task
// a plain name.
func TestTaskOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		uri, task   string
		unsupported bool   // the error wraps connector.ErrUnsupported
		want        string // in the error; "" for none
	}{
		{"/out/", "task-3", false, ""},
		{"/out/", "", false, ""},
		{"/out.jsonl", "", false, ""},
		{"/out.jsonl", "task-3", true, dir + "/out.jsonl: task \"task-3\": a sink written by several tasks must be a directory (a URI ending in '/')"},
		{"/x/y.parquet", "task-0", true, "must be a directory"},
		{"/out", "task-0", true, "must be a directory"},
		{"/out/", "task/1", false, `bad task name "task/1"`},
		{"/out/", "../x", false, `bad task name "../x"`},
		{"/out/", "a b", false, `bad task name "a b"`},
		{"/out/", "tâche", false, `bad task name "tâche"`},
	} {
		sk, err := openTaskSink(t, "file://"+dir+tc.uri, tc.task)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s, task %q: %v", tc.uri, tc.task, err)
			} else {
				sk.Abort()
			}
			continue
		}
		if err == nil {
			sk.Abort()
			t.Errorf("%s, task %q: opened", tc.uri, tc.task)
			continue
		}
		if errors.Is(err, connector.ErrUnsupported) != tc.unsupported || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s, task %q: err = %v, want one line with %q (ErrUnsupported: %v)", tc.uri, tc.task, err, tc.want, tc.unsupported)
		}
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"out"}) {
		t.Errorf("the directory holds %v, want out/ only", names)
	}
}
