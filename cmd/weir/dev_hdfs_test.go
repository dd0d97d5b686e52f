package main

import (
	"bufio"
	"context"
	"io"
	"strings"
	"testing"
)

// TestDevHDFS starts `weir dev hdfs`, writes generated page views to it
// through hdfs:// with small blocks, and prints them back.
func TestDevHDFS(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"dev", "hdfs", "--listen", "127.0.0.1:0", "--dir", t.TempDir(), "--block-size", "65536"}, pw, io.Discard)
		pw.Close()
	}()
	r := bufio.NewReader(pr)
	var uri string
	for range 2 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if u, ok := strings.CutPrefix(strings.TrimSpace(line), "use "); ok {
			uri = u
		}
	}
	go io.Copy(io.Discard, r)
	if !strings.HasPrefix(uri, "hdfs://127.0.0.1:") || !strings.HasSuffix(uri, "/") {
		t.Fatalf("weir dev hdfs printed no hdfs:// URI to use (got %q)", uri)
	}
	defer stopDev(t, "hdfs", cancel, done)

	weir := func(args ...string) string { t.Helper(); return weirOK(t, args...) }
	views := uri + "demo/pageviews.jsonl" // a few blocks of 64 KiB
	weir("gen", "pageviews", "--pageviews", views, "--events", "2000", "--late-fraction", "0")
	table := weir("cat", views, "--sort", "-timestamp", "--limit", "3", "--columns", "viewerId,timestamp")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 4 || !strings.Contains(lines[0], "viewerId") {
		t.Errorf("weir cat %s:\n%s", views, table)
	}
	if out := weir("cp", views, uri+"demo/copy.jsonl"); !strings.HasPrefix(out, "copied 2000 records") {
		t.Errorf("weir cp within hdfs: %q", out)
	}
}
