package file_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/connector"
)

type kv struct {
	K string `json:"k"`
	V int    `json:"v"`
}

var kvType = reflect.TypeFor[kv]()

func openSink(t *testing.T, uri string, typ reflect.Type) (connector.Sink, error) {
	t.Helper()
	u, err := connector.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	return connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "out", URI: u, Type: typ})
}

func put(t *testing.T, uri string, values ...any) {
	t.Helper()
	sk, err := openSink(t, uri, kvType)
	if err != nil {
		t.Fatal(err)
	}
	if err := sk.Write(context.Background(), values); err != nil {
		t.Fatal(err)
	}
	if err := sk.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func openSource(t *testing.T, uri string, typ reflect.Type) (connector.Source, error) {
	t.Helper()
	u, err := connector.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	return connector.OpenSource(context.Background(), connector.SourceSpec{Binding: "in", URI: u, Type: typ})
}

// get reads every record of uri and the split IDs.
func get(t *testing.T, uri string) ([]connector.Record, []string) {
	t.Helper()
	src, err := openSource(t, uri, kvType)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	splits, err := src.Splits(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var recs []connector.Record
	var ids []string
	buf := make([]connector.Record, 100)
	for _, sp := range splits {
		ids = append(ids, sp.ID())
		r, err := sp.Open(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for {
			n, err := r.Read(context.Background(), buf)
			recs = append(recs, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		r.Close()
	}
	return recs, ids
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestRelativeURIs(t *testing.T) {
	t.Chdir(t.TempDir())
	put(t, "file://data/a.jsonl", kv{"a", 1})
	put(t, "data/b.parquet", kv{"b", 2})
	put(t, "file://localhost"+must(os.Getwd())+"/data/c.jsonl", kv{"c", 3})
	for _, uri := range []string{"data", "data/", "file://data", "file://data/*", "./data"} {
		recs, ids := get(t, uri)
		if len(recs) != 3 || len(ids) != 3 {
			t.Errorf("%s: %d records in %v, want 3 in 3 files", uri, len(recs), ids)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestSinkTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	sk, err := openSink(t, "file://"+dir+"/out.jsonl", kvType)
	if err != nil {
		t.Fatal(err)
	}
	if err := sk.Write(context.Background(), []any{kv{"a", 1}}); err != nil {
		t.Fatal(err)
	}
	names := dirNames(t, dir)
	if len(names) != 1 || !strings.HasPrefix(names[0], ".out.jsonl.tmp-") {
		t.Fatalf("while writing, the directory holds %v, want one .out.jsonl.tmp-*", names)
	}
	if err := sk.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != "out.jsonl" {
		t.Fatalf("after Commit, the directory holds %v, want out.jsonl", names)
	}
	fi, _ := os.Stat(filepath.Join(dir, "out.jsonl"))
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode())
	}
	if err := sk.Write(context.Background(), []any{kv{"b", 2}}); err == nil {
		t.Error("Write after Commit: no error")
	}
	if err := sk.Abort(); err != nil {
		t.Errorf("Abort after Commit: %v", err)
	}
	if names := dirNames(t, dir); len(names) != 1 {
		t.Errorf("Abort after Commit changed the directory: %v", names)
	}

	// Abort leaves nothing, not even the temporary file; a sink creates
	// missing directories.
	sk, err = openSink(t, "file://"+dir+"/new/deeper/out.parquet", kvType)
	if err != nil {
		t.Fatal(err)
	}
	sk.Write(context.Background(), []any{kv{"a", 1}})
	if err := sk.Abort(); err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, filepath.Join(dir, "new/deeper")); len(names) != 0 {
		t.Errorf("after Abort: %v", names)
	}

	// A failed Commit (canceled context) leaves nothing either.
	sk, _ = openSink(t, "file://"+dir+"/c/out.jsonl", kvType)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sk.Commit(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Commit with a canceled context: %v", err)
	}
	if names := dirNames(t, filepath.Join(dir, "c")); len(names) != 0 {
		t.Errorf("after a failed Commit: %v", names)
	}
}

func TestListingSkipsHiddenAndTemporary(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.jsonl", ".b.jsonl", "_SUCCESS", "c.jsonl~", "d.tmp", ".hid/e.jsonl", "_tmp/f.jsonl", "sub/g.jsonl", ".out.jsonl.tmp-42"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(`{"k":"`+name+`"}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "link.jsonl")); err != nil {
		t.Fatal(err)
	}
	_, ids := get(t, "file://"+dir)
	want := []string{dir + "/a.jsonl", dir + "/link.jsonl", dir + "/sub/g.jsonl"}
	if !reflect.DeepEqual(ids, want) {
		t.Errorf("splits %v, want %v", ids, want)
	}
	// A glob skips hidden names too, but a hidden file named outright is read.
	if _, ids := get(t, "file://"+dir+"/*"); len(ids) != 3 {
		t.Errorf("glob: splits %v, want 3", ids)
	}
	if _, ids := get(t, "file://"+dir+"/*/*.jsonl"); len(ids) != 1 {
		t.Errorf("glob */*.jsonl: splits %v, want sub/g.jsonl only", ids)
	}
	if _, ids := get(t, "file://"+dir+"/.hid/*"); len(ids) != 1 {
		t.Errorf("glob .hid/*: splits %v, want .hid/e.jsonl", ids)
	}
	if recs, _ := get(t, "file://"+dir+"/.b.jsonl"); len(recs) != 1 {
		t.Errorf("reading .b.jsonl by name: %d records", len(recs))
	}
}

// A directory with no data files is an error naming it, as a glob that
// matches nothing is, unless the URI says ?empty=ok: then both are empty
// inputs.
func TestEmptyDirectory(t *testing.T) {
	empty := t.TempDir()
	hidden := t.TempDir()
	for _, name := range []string{"_SUCCESS", ".crc", ".part-00000.jsonl.tmp-7", "_tmp/a.jsonl", "a.jsonl~"} {
		p := filepath.Join(hidden, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(`{"k":"x"}`+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		uri  string
		want string // the error; "" for an empty input
		is   error
	}{
		{empty, empty + ": the directory holds no data files", connector.ErrNotFound},
		{empty + "/", empty + ": the directory holds no data files", connector.ErrNotFound},
		{hidden, hidden + ": the directory holds no data files", connector.ErrNotFound},
		{empty + "/*.jsonl", "no file matches " + empty + "/*.jsonl", connector.ErrNotFound},
		{empty + "?empty=ok", "", nil},
		{hidden + "?empty=ok", "", nil},
		{empty + "/*.jsonl?empty=ok", "", nil},
		{empty + "/missing.jsonl?empty=ok", "no such file or directory", connector.ErrNotFound},
		{empty + "?empty=yes", `bad empty="yes"`, connector.ErrUnsupported},
	}
	for _, tt := range tests {
		src, err := openSource(t, "file://"+tt.uri, kvType)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v, want an empty input", tt.uri, err)
				continue
			}
			if splits, _ := src.Splits(context.Background()); len(splits) != 0 {
				t.Errorf("%s: splits %v, want none", tt.uri, splits)
			}
			src.Close()
			continue
		}
		if err == nil || !errors.Is(err, tt.is) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: err = %v, want one line with %q wrapping %v", tt.uri, err, tt.want, tt.is)
		}
	}
}

func TestGlobs(t *testing.T) {
	dir := t.TempDir()
	put(t, "file://"+dir+"/a1.jsonl", kv{"a1", 1})
	put(t, "file://"+dir+"/a2.jsonl", kv{"a2", 2})
	put(t, "file://"+dir+"/b/a3.jsonl", kv{"a3", 3})
	put(t, "file://"+dir+"/x[1].jsonl", kv{"x", 4})
	for uri, want := range map[string]int{
		"/a%3F.jsonl":      2, // '?' must be escaped in a URI
		"/a[12].jsonl":     2,
		"/*/a*.jsonl":      1,
		"/x[1].jsonl":      1, // an existing name is not a glob
		"/[ab]*":           3, // a directory matched is listed
		"/**/*.jsonl":      1, // "**" is no recursive match
		"/a*.jsonl?x=1":    2,
		"/*.jsonl?format=": 3,
	} {
		recs, ids := get(t, "file://"+dir+uri)
		if len(recs) != want {
			t.Errorf("%s: %d records from %v, want %d", uri, len(recs), ids, want)
		}
	}
}

func TestUnsupported(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.jsonl"), []byte("{}\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("hello\n"), 0o644)
	_, err := openSource(t, "file://"+dir, kvType)
	if !errors.Is(err, connector.ErrUnsupported) || !strings.Contains(err.Error(), "notes.txt") {
		t.Errorf("a directory holding notes.txt: err = %v, want ErrUnsupported naming it", err)
	}
	if _, err := openSource(t, "file://"+dir+"/notes.txt?format=jsonl", kvType); err != nil {
		t.Errorf("?format=jsonl: %v", err)
	}
	if _, err := openSource(t, "file://"+dir+"/a.jsonl?format=parquet", reflect.TypeFor[int]()); !errors.Is(err, connector.ErrUnsupported) {
		t.Errorf("Parquet rows as int: err = %v, want ErrUnsupported", err)
	}
	if _, err := openSink(t, "file://"+dir+"/m.parquet", reflect.TypeFor[map[string]any]()); !errors.Is(err, connector.ErrUnsupported) {
		t.Errorf("Parquet sink of maps: err = %v, want ErrUnsupported", err)
	}
	if _, err := openSink(t, "file://"+dir, kvType); !errors.Is(err, connector.ErrUnsupported) || !strings.Contains(err.Error(), "end the URI with /") {
		t.Errorf("sink on a directory: err = %v, want ErrUnsupported with a hint", err)
	}
	if _, err := openSink(t, "file://"+dir+"/x.parquet?compression=lzma", kvType); !errors.Is(err, connector.ErrUnsupported) {
		t.Errorf("compression=lzma: err = %v, want ErrUnsupported", err)
	}
	if _, err := openSink(t, "file://"+dir+"/x.parquet?rowgroup=0", kvType); !errors.Is(err, connector.ErrUnsupported) {
		t.Errorf("rowgroup=0: err = %v, want ErrUnsupported", err)
	}
	if names := dirNames(t, dir); len(names) != 2 {
		t.Errorf("failed OpenSink calls left files: %v", names)
	}
}

func TestParquetPositions(t *testing.T) {
	dir := t.TempDir()
	var values []any
	for i := range 250 {
		values = append(values, kv{"k", i})
	}
	put(t, "file://"+dir+"/rows.parquet?rowgroup=100&compression=snappy", values...)
	recs, _ := get(t, "file://"+dir+"/rows.parquet")
	if len(recs) != 250 {
		t.Fatalf("read %d records", len(recs))
	}
	for i, want := range map[int]string{0: "rowgroup 0 row 0", 99: "rowgroup 0 row 99", 100: "rowgroup 1 row 0", 249: "rowgroup 2 row 49"} {
		if got := recs[i].Pos; got != dir+"/rows.parquet:"+want {
			t.Errorf("record %d: Pos = %q, want …:%s", i, got, want)
		}
		if recs[i].Value != (kv{"k", i}) {
			t.Errorf("record %d = %v", i, recs[i].Value)
		}
	}
}

func TestJSONLPositions(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "in.ndjson")
	os.WriteFile(p, []byte("{\"k\":\"a\"}\n\n{\"k\":\n{\"k\":\"b\",\"v\":2}"), 0o644)
	recs, _ := get(t, "file://"+p)
	if len(recs) != 3 {
		t.Fatalf("read %d records, want 3", len(recs))
	}
	if recs[1].Pos != p+":3" || recs[1].Err == nil || string(recs[1].Raw) != `{"k":` {
		t.Errorf("bad line: %+v", recs[1])
	}
	if recs[2].Pos != p+":4" || recs[2].Value != (kv{"b", 2}) {
		t.Errorf("last line without a newline: %+v", recs[2])
	}
}
