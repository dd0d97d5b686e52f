// Package iotest is the conformance suite of Weir's connectors. Every
// file-like connector (file://, later hdfs://) runs RunFileLike from its
// tests, so that they all agree on what a sink's Commit and Abort mean, how
// sources list directories and globs, and how bad data is reported.
//
// Dependency direction: iotest imports io/connector and the testing
// package only; it reaches connectors through the registry, so a test that
// runs the suite imports the connector under test itself.
package iotest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/connector"
)

// row is the record type the suite writes and reads: a nested struct, a
// pointer, a slice and a time.Time.
type row struct {
	ID    int64     `json:"id"`
	Name  string    `json:"name"`
	Score *float64  `json:"score"`
	Tags  []string  `json:"tags"`
	At    time.Time `json:"at"`
	Geo   geo       `json:"geo"`
	Blob  []byte    `json:"blob"`
}

type geo struct {
	City string  `json:"city"`
	Lat  float64 `json:"lat"`
}

var rowType = reflect.TypeFor[row]()

func rows(from, n int) []any {
	out := make([]any, n)
	for i := range n {
		id := from + i
		r := row{
			ID:   int64(id),
			Name: fmt.Sprintf("row-%d", id),
			At:   time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(id) * 1500 * time.Millisecond),
			Geo:  geo{City: []string{"Oslo", "Lima", "Pune"}[id%3], Lat: float64(id) / 4},
		}
		if id%2 == 0 {
			s := float64(id) * 1.5
			r.Score = &s
			r.Tags = []string{"even", fmt.Sprint(id)}
			r.Blob = []byte{byte(id), 0, 0xff}
		}
		if id%5 == 0 {
			r.Tags = []string{}
		}
		out[i] = r
	}
	return out
}

// RunFileLike runs the conformance suite of file-like connectors. base is a
// URI prefix of an empty writable location, such as "file://"+t.TempDir();
// the suite writes and reads below it (base + "/name.jsonl") through
// connector.OpenSink and connector.OpenSource, so the connector of base's
// scheme must be registered.
//
// The contract checked:
//   - values written in JSON Lines or Parquet read back equal (a struct with
//     a nested struct, a pointer, a slice, []byte and time.Time at
//     millisecond precision), one split per file;
//   - nothing is visible under the name before Commit, the old file stays
//     visible until a new one is committed, and after Abort nothing is left
//     (a listing of the directory shows no file);
//   - a directory source reads every file below it, sorted, in its own
//     format; a glob source reads the files it matches; a sink URI ending
//     in '/' writes a part file inside;
//   - a missing path, or a glob matching nothing, is connector.ErrNotFound;
//   - a Parquet column of the wrong type, or no matching column at all, is
//     connector.ErrSchema (from OpenSource, Splits, Open or Read);
//   - a JSON line that does not decode is a Record with Err, Raw and a Pos
//     ending in ":LINE", and the lines around it are read;
//   - SourceSpec.Columns limits the fields a Parquet source fills;
//   - readers return the context's error once it is canceled.
func RunFileLike(t *testing.T, base string) {
	t.Helper()
	base = strings.TrimSuffix(base, "/")
	s := suite{base: base}
	t.Run("RoundTrip", s.roundTrip)
	t.Run("CommitIsAtomic", s.commitIsAtomic)
	t.Run("Abort", s.abort)
	t.Run("Directory", s.directory)
	t.Run("DirectorySink", s.directorySink)
	t.Run("Glob", s.glob)
	t.Run("NotFound", s.notFound)
	t.Run("UnknownFormat", s.unknownFormat)
	t.Run("SchemaMismatch", s.schemaMismatch)
	t.Run("MalformedJSONL", s.malformedJSONL)
	t.Run("Columns", s.columns)
	t.Run("MapRows", s.mapRows)
	t.Run("Cancel", s.cancel)
}

type suite struct{ base string }

// uri returns the URI of rel in a directory of its own for test t.
func (s suite) uri(t *testing.T, rel string) string {
	return s.base + "/" + sanitize(t.Name()) + "/" + rel
}

// sanitize turns a test name into a path element.
func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.':
			return r
		}
		return '_'
	}, name)
}

func parse(t *testing.T, uri string) *url.URL {
	t.Helper()
	u, err := connector.ParseURI(uri)
	if err != nil {
		t.Fatalf("ParseURI(%q): %v", uri, err)
	}
	return u
}

// write writes values of type typ to uri and commits.
func write(t *testing.T, uri string, typ reflect.Type, values []any) {
	t.Helper()
	sk := openSink(t, uri, typ)
	if err := sk.Write(context.Background(), values); err != nil {
		sk.Abort()
		t.Fatalf("Write %s: %v", uri, err)
	}
	if err := sk.Commit(context.Background()); err != nil {
		t.Fatalf("Commit %s: %v", uri, err)
	}
}

func openSink(t *testing.T, uri string, typ reflect.Type) connector.Sink {
	t.Helper()
	sk, err := connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "out", URI: parse(t, uri), Type: typ})
	if err != nil {
		t.Fatalf("OpenSink %s: %v", uri, err)
	}
	return sk
}

// readResult is everything read from a source.
type readResult struct {
	splits  []string
	records []connector.Record
}

// read reads every split of the source at uri, in order, and returns the
// first error met.
func read(ctx context.Context, t *testing.T, uri string, typ reflect.Type, columns []string) (readResult, error) {
	t.Helper()
	var res readResult
	src, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: "in", URI: parse(t, uri), Type: typ, Columns: columns})
	if err != nil {
		return res, err
	}
	defer src.Close()
	if !src.Bounded() {
		t.Errorf("%s: Bounded() = false, want true", uri)
	}
	splits, err := src.Splits(ctx)
	if err != nil {
		return res, err
	}
	buf := make([]connector.Record, 7) // odd, to make batches straddle reads
	for _, sp := range splits {
		res.splits = append(res.splits, sp.ID())
		r, err := sp.Open(ctx)
		if err != nil {
			return res, err
		}
		for {
			n, err := r.Read(ctx, buf)
			res.records = append(res.records, buf[:n]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				r.Close()
				return res, err
			}
		}
		if err := r.Close(); err != nil {
			return res, fmt.Errorf("closing %s: %w", sp.ID(), err)
		}
	}
	return res, nil
}

// mustRead reads uri and fails on an error or a record with Err.
func mustRead(t *testing.T, uri string, typ reflect.Type, columns []string) readResult {
	t.Helper()
	res, err := read(context.Background(), t, uri, typ, columns)
	if err != nil {
		t.Fatalf("reading %s: %v", uri, err)
	}
	for _, r := range res.records {
		if r.Err != nil {
			t.Fatalf("reading %s: record at %s: %v", uri, r.Pos, r.Err)
		}
	}
	return res
}

func values(recs []connector.Record) []any {
	out := make([]any, len(recs))
	for i, r := range recs {
		out[i] = r.Value
	}
	return out
}

func equalValues(t *testing.T, what string, got, want []any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: read %d values, want %d", what, len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%s: value %d:\n got %#v\nwant %#v", what, i, got[i], want[i])
		}
	}
}

// invisible checks that nothing can be read at uri nor listed in dir.
func invisible(t *testing.T, what, uri, dir string) {
	t.Helper()
	if _, err := read(context.Background(), t, uri, rowType, nil); !errors.Is(err, connector.ErrNotFound) {
		t.Errorf("%s: reading %s: err = %v, want ErrNotFound", what, uri, err)
	}
	res, err := read(context.Background(), t, dir, rowType, nil)
	if err != nil && !errors.Is(err, connector.ErrNotFound) {
		t.Errorf("%s: listing %s: %v", what, dir, err)
	}
	if len(res.splits) > 0 {
		t.Errorf("%s: listing %s shows %v, want nothing", what, dir, res.splits)
	}
}

var formats = []string{"jsonl", "parquet"}

func (s suite) roundTrip(t *testing.T) {
	for _, ext := range formats {
		t.Run(ext, func(t *testing.T) {
			uri := s.uri(t, "rows."+ext)
			want := rows(0, 1000)
			write(t, uri, rowType, want)
			res := mustRead(t, uri, rowType, nil)
			if len(res.splits) != 1 {
				t.Errorf("splits = %v, want one", res.splits)
			}
			equalValues(t, uri, values(res.records), want)
			for i, r := range res.records {
				if r.Pos == "" {
					t.Fatalf("record %d has no Pos", i)
				}
			}
			// Empty output is a valid file.
			empty := s.uri(t, "empty."+ext)
			write(t, empty, rowType, nil)
			if res := mustRead(t, empty, rowType, nil); len(res.records) != 0 || len(res.splits) != 1 {
				t.Errorf("empty file: %d splits, %d records; want 1, 0", len(res.splits), len(res.records))
			}
		})
	}
}

func (s suite) commitIsAtomic(t *testing.T) {
	for _, ext := range formats {
		t.Run(ext, func(t *testing.T) {
			dir := s.uri(t, "")
			uri := dir + "counts." + ext
			sk := openSink(t, uri, rowType)
			if err := sk.Write(context.Background(), rows(0, 10)); err != nil {
				t.Fatal(err)
			}
			invisible(t, "before Commit", uri, dir)
			if err := sk.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			equalValues(t, "after Commit", values(mustRead(t, uri, rowType, nil).records), rows(0, 10))

			// A second run replaces the output, which stays as it was
			// until the new one is committed.
			sk = openSink(t, uri, rowType)
			if err := sk.Write(context.Background(), rows(100, 3)); err != nil {
				t.Fatal(err)
			}
			equalValues(t, "during the second run", values(mustRead(t, uri, rowType, nil).records), rows(0, 10))
			if err := sk.Commit(context.Background()); err != nil {
				t.Fatal(err)
			}
			res := mustRead(t, dir, rowType, nil)
			if len(res.splits) != 1 {
				t.Errorf("after the second Commit the directory holds %v, want one file", res.splits)
			}
			equalValues(t, "after the second Commit", values(res.records), rows(100, 3))
		})
	}
}

func (s suite) abort(t *testing.T) {
	for _, ext := range formats {
		t.Run(ext, func(t *testing.T) {
			dir := s.uri(t, "")
			uri := dir + "out." + ext
			sk := openSink(t, uri, rowType)
			if err := sk.Write(context.Background(), rows(0, 10)); err != nil {
				t.Fatal(err)
			}
			if err := sk.Abort(); err != nil {
				t.Fatalf("Abort: %v", err)
			}
			invisible(t, "after Abort", uri, dir)
			if err := sk.Abort(); err != nil {
				t.Errorf("second Abort: %v", err)
			}
			// Abort right after opening.
			sk = openSink(t, uri, rowType)
			if err := sk.Abort(); err != nil {
				t.Fatalf("Abort: %v", err)
			}
			invisible(t, "after an Abort with no Write", uri, dir)
		})
	}
}

func (s suite) directory(t *testing.T) {
	dir := s.uri(t, "")
	write(t, dir+"b.jsonl", rowType, rows(10, 5))
	write(t, dir+"a.parquet", rowType, rows(0, 10))
	write(t, dir+"sub/c.jsonl", rowType, rows(15, 5))
	res := mustRead(t, dir, rowType, nil)
	if len(res.splits) != 3 {
		t.Fatalf("splits = %v, want 3", res.splits)
	}
	for i, want := range []string{"a.parquet", "b.jsonl", "c.jsonl"} {
		if !strings.HasSuffix(res.splits[i], want) {
			t.Errorf("split %d = %q, want …%s (sorted by name)", i, res.splits[i], want)
		}
	}
	equalValues(t, dir, values(res.records), rows(0, 20))
	// The same without the trailing slash.
	res = mustRead(t, strings.TrimSuffix(dir, "/"), rowType, nil)
	equalValues(t, dir, values(res.records), rows(0, 20))
}

func (s suite) directorySink(t *testing.T) {
	for _, ext := range formats {
		t.Run(ext, func(t *testing.T) {
			dir := s.uri(t, "out/")
			write(t, dir+"?format="+ext, rowType, rows(0, 7))
			res := mustRead(t, dir, rowType, nil)
			if len(res.splits) != 1 || !strings.HasSuffix(res.splits[0], "part-00000."+ext) {
				t.Errorf("splits = %v, want one part-00000.%s", res.splits, ext)
			}
			equalValues(t, dir, values(res.records), rows(0, 7))
		})
	}
}

func (s suite) glob(t *testing.T) {
	dir := s.uri(t, "")
	write(t, dir+"x1.jsonl", rowType, rows(0, 3))
	write(t, dir+"x2.parquet", rowType, rows(3, 3))
	write(t, dir+"y1.jsonl", rowType, rows(100, 3))
	res := mustRead(t, dir+"x*", rowType, nil)
	if len(res.splits) != 2 {
		t.Fatalf("x*: splits = %v, want 2", res.splits)
	}
	equalValues(t, dir+"x*", values(res.records), rows(0, 6))
	res = mustRead(t, dir+"*.jsonl", rowType, nil)
	equalValues(t, dir+"*.jsonl", values(res.records), slices.Concat(rows(0, 3), rows(100, 3)))
	if _, err := read(context.Background(), t, dir+"z*.jsonl", rowType, nil); !errors.Is(err, connector.ErrNotFound) {
		t.Errorf("a glob that matches nothing: err = %v, want ErrNotFound", err)
	}
}

func (s suite) notFound(t *testing.T) {
	for _, rel := range []string{"missing.jsonl", "missing.parquet", "missing-dir/", "missing-dir/x.jsonl"} {
		uri := s.uri(t, rel)
		_, err := read(context.Background(), t, uri, rowType, nil)
		if !errors.Is(err, connector.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", uri, err)
		}
		if err != nil && !strings.Contains(err.Error(), strings.TrimSuffix(rel, "/")) {
			t.Errorf("%s: error %q does not name the path", uri, err)
		}
	}
}

func (s suite) unknownFormat(t *testing.T) {
	uri := s.uri(t, "out.csv")
	_, err := connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "out", URI: parse(t, uri), Type: rowType})
	if !errors.Is(err, connector.ErrUnsupported) {
		t.Errorf("sink %s: err = %v, want ErrUnsupported", uri, err)
	}
	_, err = connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "out", URI: parse(t, s.uri(t, "out.jsonl?format=xml")), Type: rowType})
	if !errors.Is(err, connector.ErrUnsupported) {
		t.Errorf("sink ?format=xml: err = %v, want ErrUnsupported", err)
	}
}

func (s suite) schemaMismatch(t *testing.T) {
	uri := s.uri(t, "rows.parquet")
	write(t, uri, rowType, rows(0, 5))
	type wrongType struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	type noMatch struct {
		Foo int `json:"foo"`
		Bar int `json:"bar"`
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[wrongType](), reflect.TypeFor[noMatch]()} {
		_, err := read(context.Background(), t, uri, typ, nil)
		if !errors.Is(err, connector.ErrSchema) {
			t.Errorf("reading %s as %s: err = %v, want ErrSchema", uri, typ, err)
			continue
		}
		if !strings.Contains(err.Error(), "rows.parquet") {
			t.Errorf("error %q does not name the file", err)
		}
	}
	// Columns missing from the file keep their zero value.
	type partial struct {
		ID    int64 `json:"id"`
		Extra string
	}
	res := mustRead(t, uri, reflect.TypeFor[partial](), nil)
	equalValues(t, "partial", values(res.records), []any{partial{ID: 0}, partial{ID: 1}, partial{ID: 2}, partial{ID: 3}, partial{ID: 4}})
}

func (s suite) malformedJSONL(t *testing.T) {
	uri := s.uri(t, "mixed.jsonl")
	anyType := reflect.TypeFor[any]()
	write(t, uri, anyType, []any{
		map[string]any{"id": 1, "name": "one"},
		map[string]any{"id": "two"},
		map[string]any{"id": 3, "name": "three"},
		"not an object",
		map[string]any{"id": 5, "tags": []string{"a"}},
	})
	res, err := read(context.Background(), t, uri, rowType, nil)
	if err != nil {
		t.Fatalf("a bad line is not an error of the reader, got %v", err)
	}
	if len(res.records) != 5 {
		t.Fatalf("read %d records, want 5", len(res.records))
	}
	for i, r := range res.records {
		line := fmt.Sprintf(":%d", i+1)
		if !strings.HasSuffix(r.Pos, line) {
			t.Errorf("record %d: Pos = %q, want …%s", i, r.Pos, line)
		}
		bad := i == 1 || i == 3
		switch {
		case bad && r.Err == nil:
			t.Errorf("record %d (%s): no Err for a bad line", i, r.Pos)
		case bad && (len(r.Raw) == 0 || r.Value != nil):
			t.Errorf("record %d (%s): Raw = %q, Value = %v; want the line and nil", i, r.Pos, r.Raw, r.Value)
		case bad && strings.Contains(r.Err.Error(), "\n"):
			t.Errorf("record %d: Err %q spans lines", i, r.Err)
		case !bad && r.Err != nil:
			t.Errorf("record %d (%s): %v", i, r.Pos, r.Err)
		}
	}
	if got := res.records[4].Value; !reflect.DeepEqual(got, row{ID: 5, Tags: []string{"a"}}) {
		t.Errorf("record 4 = %#v", got)
	}
}

func (s suite) columns(t *testing.T) {
	uri := s.uri(t, "rows.parquet")
	write(t, uri, rowType, rows(0, 4))
	for _, cols := range [][]string{{"ID", "Geo"}, {"id", "geo"}} {
		res := mustRead(t, uri, rowType, cols)
		var want []any
		for _, v := range rows(0, 4) {
			r := v.(row)
			want = append(want, row{ID: r.ID, Geo: r.Geo})
		}
		equalValues(t, fmt.Sprintf("Columns %v", cols), values(res.records), want)
	}
}

func (s suite) mapRows(t *testing.T) {
	uri := s.uri(t, "rows.parquet")
	write(t, uri, rowType, rows(0, 3))
	res := mustRead(t, uri, reflect.TypeFor[map[string]any](), nil)
	if len(res.records) != 3 {
		t.Fatalf("read %d records, want 3", len(res.records))
	}
	m, ok := res.records[2].Value.(map[string]any)
	if !ok {
		t.Fatalf("value is %T, want map[string]any", res.records[2].Value)
	}
	if m["id"] != int64(2) || m["name"] != "row-2" || m["score"] != 3.0 {
		t.Errorf("row 2 = %v", m)
	}
	if g, ok := m["geo"].(map[string]any); !ok || g["city"] != "Pune" {
		t.Errorf("row 2 geo = %#v", m["geo"])
	}
	if m := res.records[1].Value.(map[string]any); m["score"] != nil {
		t.Errorf("row 1 score = %#v, want nil", m["score"])
	}
}

func (s suite) cancel(t *testing.T) {
	for _, ext := range formats {
		t.Run(ext, func(t *testing.T) {
			uri := s.uri(t, "rows."+ext)
			write(t, uri, rowType, rows(0, 10))
			ctx, cancel := context.WithCancel(context.Background())
			src, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: "in", URI: parse(t, uri), Type: rowType})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			splits, err := src.Splits(ctx)
			if err != nil || len(splits) != 1 {
				t.Fatalf("Splits = %v, %v", splits, err)
			}
			r, err := splits[0].Open(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			buf := make([]connector.Record, 2)
			if n, err := r.Read(ctx, buf); n != 2 || err != nil {
				t.Fatalf("Read = %d, %v", n, err)
			}
			cancel()
			if _, err := r.Read(ctx, buf); !errors.Is(err, context.Canceled) {
				t.Errorf("Read after cancel: err = %v, want context.Canceled", err)
			}
		})
	}
}
