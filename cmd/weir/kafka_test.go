package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDevKafkaGenCpCat starts the embedded broker as `weir dev kafka` does,
// generates page views into a topic, copies them out to a file and back into
// another topic, and prints that topic.
func TestDevKafkaGenCpCat(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dev", "kafka", "--listen", "127.0.0.1:0", "--topics", "pageviews:4,copy:2"}, pw, io.Discard)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "kafka" {
		t.Fatalf("unexpected first line %q", line)
	}
	addr := f[4]
	defer stopDev(t, "kafka", cancel, done)

	weir := func(args ...string) string { t.Helper(); return weirOK(t, args...) }
	dir := t.TempDir()
	weir("gen", "pageviews", "--pageviews", "kafka://"+addr+"/pageviews?key=viewerId", "--events", "1000", "--late-fraction", "0")
	out := weir("cp", "kafka://"+addr+"/pageviews?until=latest", "file://"+filepath.Join(dir, "views.jsonl"))
	if !strings.HasPrefix(out, "copied 1000 records") {
		t.Errorf("cp out of kafka: %q", out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "views.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), "\n"); n != 1000 || !strings.Contains(string(b), `"eventType":"PageViewEvent"`) {
		t.Errorf("copied file has %d lines", n)
	}
	weir("cp", "file://"+filepath.Join(dir, "views.jsonl"), "kafka://"+addr+"/copy?key=viewerId")
	table := weir("cat", "kafka://"+addr+"/copy?until=latest", "--sort", "-timestamp", "--limit", "3", "--columns", "viewerId,timestamp")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 4 || !strings.Contains(lines[0], "viewerId") {
		t.Errorf("weir cat of the copy:\n%s", table)
	}
	// The topic holds what the file it was copied from holds.
	views := filepath.Join(dir, "views.jsonl")
	if out := weir("validate", "kafka://"+addr+"/copy?until=latest", views, "--key", "viewerId,timestamp"); !strings.Contains(out, "\nmatching: 1000\nmissing in B: 0\n") {
		t.Errorf("weir validate of the topic and the file:\n%s", out)
	}
	var errb bytes.Buffer
	if code := run(context.Background(), []string{"validate", views, "kafka://" + addr + "/copy"}, io.Discard, &errb); code != 2 || !strings.Contains(errb.String(), "is unbounded") {
		t.Errorf("weir validate of a topic without ?until=: exit %d, stderr %q", code, errb.String())
	}
	// An unbounded copy stops at --limit.
	if out := weir("cp", "kafka://"+addr+"/copy", "file://"+filepath.Join(dir, "some.jsonl"), "--limit", "10"); !strings.HasPrefix(out, "copied 10 records") {
		t.Errorf("cp --limit: %q", out)
	}
}

// weirOK runs weir in the process with args and returns its standard
// output; a non-zero exit fails the test.
func weirOK(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), args, &out, &errb); code != 0 {
		t.Fatalf("weir %s: exit %d: %s", strings.Join(args, " "), code, errb.String())
	}
	return out.String()
}

// stopDev stops a weir dev command started in the test (cancel, then its
// exit code on done) and checks that it exits 0.
func stopDev(t *testing.T, name string, cancel func(), done <-chan int) {
	t.Helper()
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("weir dev %s exited %d", name, code)
		}
	case <-time.After(time.Minute):
		t.Errorf("weir dev %s did not stop", name)
	}
}
