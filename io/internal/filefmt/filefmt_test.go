package filefmt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/codec"
	"github.com/weir-dev/weir/io/connector"
)

func TestDetect(t *testing.T) {
	tests := []struct {
		path, query string
		want        codec.Format
	}{
		{"a.jsonl", "", codec.JSONL},
		{"a.ndjson", "", codec.JSONL},
		{"dir/a.json", "", codec.JSONL},
		{"a.parquet", "", codec.Parquet},
		{"a.PQ", "", codec.Parquet},
		{"a.parquet", "format=jsonl", codec.JSONL},
		{"a.txt", "format=parquet", codec.Parquet},
		{"a.txt", "", codec.Unknown},
		{"noext", "", codec.Unknown},
		{"a.jsonl", "format=csv", codec.Unknown},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		got, err := Detect("file", tt.path, q)
		if got != tt.want {
			t.Errorf("Detect(%q, %q) = %v, want %v", tt.path, tt.query, got, tt.want)
		}
		if tt.want == codec.Unknown {
			if !errors.Is(err, connector.ErrUnsupported) || !strings.Contains(err.Error(), tt.path) {
				t.Errorf("Detect(%q, %q): err = %v, want ErrUnsupported naming the file", tt.path, tt.query, err)
			}
		} else if err != nil {
			t.Errorf("Detect(%q, %q): %v", tt.path, tt.query, err)
		}
	}
}

func TestHidden(t *testing.T) {
	for name, want := range map[string]bool{
		"part-00000.jsonl": false, "a.parquet": false, "x.tmp.jsonl": false,
		".hidden": true, ".counts.jsonl.tmp-123": true, "_SUCCESS": true,
		"a.jsonl~": true, "a.tmp": true, ".a.swp": true, "b.swp": true, "c.partial": true, "": true,
	} {
		if got := Hidden(name); got != want {
			t.Errorf("Hidden(%q) = %v, want %v", name, got, want)
		}
	}
}

type rec struct {
	N int `json:"n"`
}

func readAll(t *testing.T, r connector.Reader, bufSize int) []connector.Record {
	t.Helper()
	var out []connector.Record
	buf := make([]connector.Record, bufSize)
	for {
		n, err := r.Read(context.Background(), buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestJSONLLines(t *testing.T) {
	long := `{"n":9,"pad":"` + strings.Repeat("x", 3000) + `"}`
	input := "{\"n\":1}\r\n\n   \n{\"n\":2}\n{bad}\n" + long + "\n" + `{"n":"pad` + strings.Repeat("y", 5000) + `"}` + "\n{\"n\":3}"
	for _, tc := range []struct{ bufSize, readBuf int }{{1, 0}, {2, 16}, {100, 0}, {100, 1000}} {
		bufSize := tc.bufSize
		r, err := NewJSONLReader("file", "in.jsonl", strings.NewReader(input), nil, reflect.TypeFor[rec]())
		if err != nil {
			t.Fatal(err)
		}
		jr := r.(*jsonlReader)
		jr.maxLen = 4096
		if tc.readBuf > 0 {
			// Lines longer than the buffer are assembled from pieces.
			jr.br = bufio.NewReaderSize(strings.NewReader(input), tc.readBuf)
		}
		got := readAll(t, r, bufSize)
		type want struct {
			pos  string
			n    int
			err  string
			raw  string
			size int64 // RawSize
		}
		wants := []want{
			{pos: "in.jsonl:1", n: 1},
			{pos: "in.jsonl:4", n: 2},
			{pos: "in.jsonl:5", err: "bad JSON", raw: "{bad}"},
			{pos: "in.jsonl:6", n: 9},
			{pos: "in.jsonl:7", err: "line longer than 4096 bytes", raw: `{"n":"padyyy`, size: 5011},
			{pos: "in.jsonl:8", n: 3},
		}
		if len(got) != len(wants) {
			t.Fatalf("buf %d: read %d records, want %d: %+v", bufSize, len(got), len(wants), got)
		}
		for i, w := range wants {
			g := got[i]
			if g.Pos != w.pos {
				t.Errorf("record %d: Pos = %q, want %q", i, g.Pos, w.pos)
			}
			if w.err == "" {
				if g.Err != nil || g.Value != (rec{w.n}) || g.Raw != nil {
					t.Errorf("record %d = %+v, want value %d", i, g, w.n)
				}
				continue
			}
			if g.Err == nil || !strings.Contains(g.Err.Error(), w.err) || !errors.Is(g.Err, codec.ErrDecode) {
				t.Errorf("record %d: Err = %v, want %q", i, g.Err, w.err)
			}
			if g.RawSize != w.size {
				t.Errorf("record %d: RawSize = %d, want %d", i, g.RawSize, w.size)
			}
			if !strings.HasPrefix(string(g.Raw), w.raw) || len(g.Raw) > RawLimit {
				t.Errorf("record %d: Raw = %.40q (%d bytes), want %q…", i, g.Raw, len(g.Raw), w.raw)
			}
		}
	}
}

// A line of MaxLine bytes is read; one byte more is a bad record, and the
// reader goes on after it.
func TestJSONLMaxLine(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 32 MiB")
	}
	line := func(n int) string {
		s := `{"n":1,"p":"`
		return s + strings.Repeat("z", n-len(s)-2) + `"}`
	}
	input := line(MaxLine) + "\n" + line(MaxLine+1) + "\n{\"n\":2}\n"
	r, _ := NewJSONLReader("file", "big.jsonl", strings.NewReader(input), nil, reflect.TypeFor[rec]())
	got := readAll(t, r, 10)
	if len(got) != 3 || got[0].Err != nil || got[1].Err == nil || got[2].Value != (rec{2}) {
		t.Fatalf("got %d records: %v / %v / %v", len(got), got[0].Err, got[1].Err, got[len(got)-1].Value)
	}
}

type errReader struct{ n int }

func (e *errReader) Read(p []byte) (int, error) {
	if e.n == 0 {
		e.n++
		return copy(p, "{\"n\":1}\n{\"n\":2}\n{\"n\":"), nil
	}
	return 0, errors.New("disk on fire")
}

func TestJSONLReadError(t *testing.T) {
	r, _ := NewJSONLReader("file", "in.jsonl", &errReader{}, nil, reflect.TypeFor[rec]())
	buf := make([]connector.Record, 10)
	n, err := r.Read(context.Background(), buf)
	if n != 2 || err != nil {
		t.Fatalf("Read = %d, %v; want the 2 whole lines first", n, err)
	}
	_, err = r.Read(context.Background(), buf)
	if err == nil || err == io.EOF || !strings.Contains(err.Error(), "in.jsonl:3: disk on fire") {
		t.Errorf("err = %v, want the read error naming the file and line", err)
	}
}

type maybeRec struct {
	N *int    `json:"n"`
	S *string `json:"s"`
}

type strictRec struct {
	N int    `json:"n"`
	S string `json:"s"`
}

// A Parquet row that cannot be read as the record type is a Record with
// Err and the row in Raw, between the rows around it.
func TestParquetBadRow(t *testing.T) {
	var buf bytes.Buffer
	enc, err := NewEncoder("file", "in.parquet", &buf, codec.Parquet, reflect.TypeFor[maybeRec](), nil)
	if err != nil {
		t.Fatal(err)
	}
	one, two, s := 1, 2, "x"
	if err := enc.Write([]any{maybeRec{&one, &s}, maybeRec{nil, &s}, maybeRec{&two, &s}}); err != nil {
		t.Fatal(err)
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewParquetReader("file", "in.parquet", bytes.NewReader(buf.Bytes()), int64(buf.Len()), nil, reflect.TypeFor[strictRec](), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := readAll(t, r, 10)
	if len(got) != 3 || got[0].Value != (strictRec{1, "x"}) || got[2].Value != (strictRec{2, "x"}) {
		t.Fatalf("records = %+v, want 3 with the good ones read", got)
	}
	bad := got[1]
	if bad.Value != nil || !errors.Is(bad.Err, codec.ErrDecode) || !strings.Contains(bad.Err.Error(), "field n is null") ||
		bad.Pos != "in.parquet:rowgroup 0 row 1" || string(bad.Raw) != `{"n":null,"s":"x"}` {
		t.Errorf("bad row = %+v (Raw %s); want Err naming n, its Pos and Raw", bad, bad.Raw)
	}
}
