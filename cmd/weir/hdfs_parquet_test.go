package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/hdfs/hdfstest"
)

// TestHDFSParquet: weir validate and weir cp read Parquet on hdfs:// as on
// the local disk, whether the URI names a file or a directory of Parquet
// part files, as weir cat does.
func TestHDFSParquet(t *testing.T) {
	srv, err := hdfstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	dir := t.TempDir()
	rows := counts()
	local := filepath.Join(dir, "counts.jsonl")
	writeLines(t, local, countLines(rows)...)
	file := srv.URI() + "out/counts.parquet"
	writeRows(t, file, rows)
	parts := srv.URI() + "parts/"
	writeRows(t, parts+"?format=parquet", rows)

	for _, a := range []string{file, parts, srv.URI() + "parts/*"} {
		out := validateOK(t, a, local, "--key", "profileId,windowStart")
		if !strings.Contains(out, "\nmatching: 6\n") {
			t.Errorf("weir validate %s %s:\n%s", a, local, out)
		}
		copied := filepath.Join(t.TempDir(), "copy.jsonl")
		if out := mustWeir(t, "cp", a, copied); !strings.HasPrefix(out, "copied 6 records") {
			t.Errorf("weir cp %s: %q", a, out)
		}
		b, err := os.ReadFile(copied)
		if err != nil || !strings.Contains(string(b), `"profileId":3`) {
			t.Errorf("weir cp %s: %s, %v", a, b, err)
		}
	}
}
