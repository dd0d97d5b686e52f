package file

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/connector"
)

func TestTempOwner(t *testing.T) {
	tests := []struct {
		name string
		pid  int
		host string
		ok   bool
	}{
		{".out.jsonl.tmp-123", 0, "", true},
		{".out.jsonl.tmp-42@build-7.example.com-99", 42, "build-7.example.com", true},
		{".out.jsonl.tmp-42@h-1", 42, "h", true},
		{".out.jsonl.tmp-", 0, "", false},
		{".out.jsonl.tmp-12x", 0, "", false},
		{".out.jsonl.tmp-42@-1", 0, "", false},
		{".out.jsonl.tmp-x@h-1", 0, "", false},
		{".out.jsonl.tmp-0@h-1", 0, "", false},
		{".out.jsonl.tmp-42@h_x-1", 0, "", false},
		{".out.jsonl.tmp-42@h-", 0, "", false},
		{".out.jsonl.tmp-1.bak", 0, "", false},
		{".out.jsonl.bak.tmp-1", 0, "", false},
		{".other.jsonl.tmp-1", 0, "", false},
		{"out.jsonl.tmp-1", 0, "", false},
		{"out.jsonl", 0, "", false},
	}
	for _, tt := range tests {
		pid, host, ok := tempOwner("out.jsonl", tt.name)
		if pid != tt.pid || host != tt.host || ok != tt.ok {
			t.Errorf("tempOwner(%q) = %d, %q, %v; want %d, %q, %v", tt.name, pid, host, ok, tt.pid, tt.host, tt.ok)
		}
	}
	if pid, host, ok := tempOwner("out.jsonl", ownedTempName("out.jsonl")); pid != os.Getpid() || host != hostname || !ok {
		t.Errorf("a name of this process parses as %d, %q, %v", pid, host, ok)
	}
}

// deadPid returns the pid of a process that has ended.
func deadPid(t *testing.T) int {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run a process: %v", err)
	}
	return cmd.Process.Pid
}

// Opening a single-file sink removes the temporary files of this output
// whose writer is gone, and only those.
func TestSinkSweepsStaleTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	dead := deadPid(t)
	if processAlive(dead) {
		t.Skipf("pid %d was reused", dead)
	}
	swept := []string{
		".out.jsonl.tmp-8127361", // an older Weir's
		fmt.Sprintf(".out.jsonl.tmp-%d@%s-5", dead, hostname),
	}
	kept := []string{
		fmt.Sprintf(".out.jsonl.tmp-%d@%s-6", os.Getppid(), hostname), // alive
		fmt.Sprintf(".out.jsonl.tmp-%d@%s-7", os.Getpid(), hostname),  // this process's
		fmt.Sprintf(".out.jsonl.tmp-%d@other-host-8", dead),           // cannot tell
		".out.jsonl.bak.tmp-1", ".other.jsonl.tmp-1", ".out.jsonl.tmp-1.x", "out.jsonl", "keep.jsonl",
	}
	for _, name := range append(slices.Clone(swept), kept...) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("{}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	u, _ := connector.ParseURI("file://" + dir + "/out.jsonl")
	sk, err := openSink(context.Background(), connector.SinkSpec{Binding: "out", URI: u, Type: reflect.TypeFor[map[string]any](),
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Abort()
	own := filepath.Base(sk.(*sink).tmp)
	if pid, host, ok := tempOwner("out.jsonl", own); pid != os.Getpid() || host != hostname || !ok {
		t.Errorf("the sink writes through %s, want a name with this pid and host", own)
	}
	var names []string
	for _, e := range must(os.ReadDir(dir)) {
		if e.Name() != own {
			names = append(names, e.Name())
		}
	}
	slices.Sort(kept)
	if !slices.Equal(names, kept) {
		t.Errorf("after the sweep the folder holds %v, want %v", names, kept)
	}
	for _, name := range swept {
		if !strings.Contains(logs.String(), "removed a temporary file a killed run left") || !strings.Contains(logs.String(), name) {
			t.Errorf("the log does not name %s as removed:\n%s", name, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "other-host") {
		t.Errorf("the log does not name the file of another host as kept:\n%s", logs.String())
	}

	// A second sink of the same output in this process leaves the first
	// one's file alone, and both commit.
	sk2, err := openSink(context.Background(), connector.SinkSpec{Binding: "out", URI: u, Type: reflect.TypeFor[map[string]any]()})
	if err != nil {
		t.Fatal(err)
	}
	if err := sk2.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := sk.Commit(context.Background()); err != nil {
		t.Errorf("the first sink's Commit after a second sink opened: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
