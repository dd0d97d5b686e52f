package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// weirBench runs weir-bench with the given arguments in this process.
func weirBench(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// mustWeirBench runs weir-bench and fails the test unless it succeeds.
func mustWeirBench(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := weirBench(t, args...)
	if code != 0 {
		t.Fatalf("weir-bench %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}
