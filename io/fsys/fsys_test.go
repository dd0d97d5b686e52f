package fsys_test

import (
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/fsys"
	"github.com/weir-dev/weir/io/hdfs/hdfstest"
)

func TestResolveLocal(t *testing.T) {
	tests := []struct {
		uri, want string
	}{
		{"file:///abs/path/x.jsonl", "/abs/path/x.jsonl"},
		{"file://localhost/abs/x.jsonl", "/abs/x.jsonl"},
		{"file://relative/path/x.jsonl", "relative/path/x.jsonl"},
		{"file://x.jsonl", "x.jsonl"},
		{"file://out/", "out/"},
		{"file:///data/a%3F.jsonl", "/data/a?.jsonl"},
		{"data/x.jsonl", "data/x.jsonl"},
		{"/abs/x.parquet?format=parquet", "/abs/x.parquet"},
	}
	for _, tt := range tests {
		u, err := url.Parse(tt.uri)
		if err != nil {
			t.Fatal(err)
		}
		f, got, err := fsys.Resolve(u)
		if err != nil || got != tt.want || f != fsys.Local {
			t.Errorf("Resolve(%q) = %v %q, %v; want the local disk, %q", tt.uri, f, got, err, tt.want)
		}
	}
	for _, bad := range []string{"file://", "s3://bucket/x"} {
		u, _ := url.Parse(bad)
		if _, got, err := fsys.Resolve(u); err == nil {
			t.Errorf("Resolve(%q) = %q, want an error", bad, got)
		}
	}
}

// tree makes files (and their directories) under a temporary directory.
func tree(t *testing.T, files ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, f)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func hidden(name string) bool { return strings.HasPrefix(name, ".") }

func rel(dir string, ps []string) string {
	var out []string
	for _, p := range ps {
		out = append(out, strings.TrimPrefix(p, dir+"/"))
	}
	return strings.Join(out, " ")
}

func TestGlobAndFiles(t *testing.T) {
	dir := tree(t, "a/x.jsonl", "a/y.parquet", "a/.tmp-z.jsonl", "b/x.jsonl", "b/c/deep.jsonl", ".h/x.jsonl", "top.jsonl")
	for _, tc := range []struct{ pattern, want string }{
		{"*/x.jsonl", "a/x.jsonl b/x.jsonl"},
		{"a/*", "a/x.jsonl a/y.parquet"},
		{".h/*", ".h/x.jsonl"},
		{"*", "a b top.jsonl"},
		{"[ab]/*.jsonl", "a/x.jsonl b/x.jsonl"},
		{"nothing/*", ""},
	} {
		got, err := fsys.Glob(fsys.Local, filepath.Join(dir, tc.pattern), hidden)
		if err != nil || rel(dir, got) != tc.want {
			t.Errorf("Glob(%s) = %q, %v; want %q", tc.pattern, rel(dir, got), err, tc.want)
		}
	}
	if _, err := fsys.Glob(fsys.Local, filepath.Join(dir, "[a"), hidden); err == nil {
		t.Error("a bad pattern globs")
	}
	got, err := fsys.Files(fsys.Local, dir, hidden)
	if want := "a/x.jsonl a/y.parquet b/c/deep.jsonl b/x.jsonl top.jsonl"; err != nil || rel(dir, got) != want {
		t.Errorf("Files = %q, %v; want %q", rel(dir, got), err, want)
	}
}

// TestWriteRenameRemove runs on the local disk and on HDFS (the in-repo
// server, with small blocks so that the file spans several).
func TestWriteRenameRemove(t *testing.T) {
	srv, err := hdfstest.Start(t.TempDir(), hdfstest.BlockSize(4<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	u, _ := url.Parse(srv.URI() + "fsys-test")
	hdfs, hdir, err := fsys.Resolve(u)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("local", func(t *testing.T) { writeRenameRemove(t, fsys.Local, t.TempDir()) })
	t.Run("hdfs", func(t *testing.T) { writeRenameRemove(t, hdfs, hdir) })
}

func writeRenameRemove(t *testing.T, f fsys.FS, dir string) {
	p := filepath.Join(dir, "sub", "x")
	if err := f.MkdirAll(filepath.Dir(p)); err != nil {
		t.Fatal(err)
	}
	big := []byte(strings.Repeat("hello, blocks ", 1000)) // 14000 bytes: four blocks
	if err := fsys.WriteFile(f, p+".big", big); err != nil {
		t.Fatal(err)
	}
	if b, err := fsys.ReadFile(f, p+".big"); err != nil || string(b) != string(big) {
		t.Fatalf("read back %d bytes, %v; wrote %d", len(b), err, len(big))
	}
	if err := fsys.WriteFile(f, p+".tmp", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile(f, p, []byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := f.Rename(p+".tmp", p); err != nil {
		t.Fatal(err)
	}
	if b, err := fsys.ReadFile(f, p); err != nil || string(b) != "hello" {
		t.Fatalf("read %q, %v", b, err)
	}
	r, _ := f.Open(p)
	if r.Size() != 5 {
		t.Errorf("size %d", r.Size())
	}
	buf := make([]byte, 3)
	if n, err := r.ReadAt(buf, 2); n != 3 || string(buf) != "llo" {
		t.Errorf("ReadAt: %q %v", buf[:n], err)
	}
	r.Close()
	if err := f.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Stat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat after remove: %v", err)
	}
	if err := f.RemoveAll(filepath.Join(dir, "sub")); err != nil {
		t.Fatal(err)
	}
}
