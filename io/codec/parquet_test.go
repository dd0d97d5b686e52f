package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/weir-dev/weir/io/connector"
)

type Base struct {
	Region string `json:"region"`
}

type allKinds struct {
	Base                // flattened, as encoding/json does
	I8    int8          `parquet:"i8"`
	I16   int16         `parquet:"i16"`
	I32   int32         `parquet:"i32"`
	I64   int64         `parquet:"i64"`
	I     int           `parquet:"i"`
	U8    uint8         `parquet:"u8"`
	U16   uint16        `parquet:"u16"`
	U32   uint32        `parquet:"u32"`
	U64   uint64        `parquet:"u64"`
	U     uint          `parquet:"u"`
	F32   float32       `json:"f32"`
	F64   float64       `json:"f64"`
	B     bool          `json:"b"`
	S     string        `json:"s"`
	Raw   []byte        `json:"raw"`
	At    time.Time     `json:"at"`
	PAt   *time.Time    `json:"p_at"`
	PI    *int64        `json:"pi"`
	PS    *string       `json:"ps"`
	Pt    point         `json:"pt"`
	PPt   *point        `json:"ppt"`
	Ints  []int32       `json:"ints"`
	Pts   []point       `json:"pts"`
	Grid  [][]string    `json:"grid"`
	Opt   []*int64      `json:"opt"`
	Dur   time.Duration `parquet:"dur" json:"-"`
	Skip  string        `parquet:"-"`
	JSkip string        `json:"-"`
	Named string        `parquet:"pq_name" json:"json_name"`
	Plain int16
	priv  int
}

func TestArrowSchema(t *testing.T) {
	ts := &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}
	pointType := arrow.StructOf(
		arrow.Field{Name: "x", Type: arrow.PrimitiveTypes.Int64},
		arrow.Field{Name: "y", Type: arrow.PrimitiveTypes.Int64},
	)
	f := func(name string, typ arrow.DataType, nullable bool) arrow.Field {
		return arrow.Field{Name: name, Type: typ, Nullable: nullable}
	}
	list := func(typ arrow.DataType, nullable bool) arrow.DataType {
		return arrow.ListOfField(arrow.Field{Name: "element", Type: typ, Nullable: nullable})
	}
	tests := []struct {
		name string
		typ  reflect.Type
		want []arrow.Field
		err  string
	}{
		{name: "point", typ: reflect.TypeFor[point](), want: pointType.Fields()},
		{name: "all kinds", typ: reflect.TypeFor[allKinds](), want: []arrow.Field{
			f("region", arrow.BinaryTypes.String, false),
			f("i8", arrow.PrimitiveTypes.Int8, false),
			f("i16", arrow.PrimitiveTypes.Int16, false),
			f("i32", arrow.PrimitiveTypes.Int32, false),
			f("i64", arrow.PrimitiveTypes.Int64, false),
			f("i", arrow.PrimitiveTypes.Int64, false),
			f("u8", arrow.PrimitiveTypes.Uint8, false),
			f("u16", arrow.PrimitiveTypes.Uint16, false),
			f("u32", arrow.PrimitiveTypes.Uint32, false),
			f("u64", arrow.PrimitiveTypes.Uint64, false),
			f("u", arrow.PrimitiveTypes.Uint64, false),
			f("f32", arrow.PrimitiveTypes.Float32, false),
			f("f64", arrow.PrimitiveTypes.Float64, false),
			f("b", arrow.FixedWidthTypes.Boolean, false),
			f("s", arrow.BinaryTypes.String, false),
			f("raw", arrow.BinaryTypes.Binary, true),
			f("at", ts, false),
			f("p_at", ts, true),
			f("pi", arrow.PrimitiveTypes.Int64, true),
			f("ps", arrow.BinaryTypes.String, true),
			f("pt", pointType, false),
			f("ppt", pointType, true),
			f("ints", list(arrow.PrimitiveTypes.Int32, false), true),
			f("pts", list(pointType, false), true),
			f("grid", list(list(arrow.BinaryTypes.String, false), true), true),
			f("opt", list(arrow.PrimitiveTypes.Int64, true), true),
			f("dur", arrow.PrimitiveTypes.Int64, false),
			f("pq_name", arrow.BinaryTypes.String, false),
			f("Plain", arrow.PrimitiveTypes.Int16, false),
		}},
		{name: "not a struct", typ: reflect.TypeFor[int](), err: "not a struct"},
		{name: "time is not a row", typ: reflect.TypeFor[time.Time](), err: "not a struct"},
		{name: "map field", typ: reflect.TypeFor[struct{ M map[string]int }](), err: ".M: type map[string]int has no Parquet column type"},
		{name: "interface field", typ: reflect.TypeFor[struct{ A any }](), err: ".A: type interface {}"},
		{name: "array field", typ: reflect.TypeFor[struct{ A [2]int }](), err: ".A: type [2]int"},
		{name: "recursive", typ: reflect.TypeFor[node](), err: "recursive type codec.node"},
		{name: "duplicate", typ: reflect.TypeFor[struct {
			A int `json:"a"`
			B int `parquet:"a"`
		}](), err: `same column name "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := ArrowSchema(tt.typ)
			if tt.err != "" {
				if !errors.Is(err, connector.ErrUnsupported) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want ErrUnsupported containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := arrow.NewSchema(tt.want, nil)
			if !sc.Equal(want) {
				t.Errorf("schema\n got %s\nwant %s", sc, want)
			}
		})
	}
}

type node struct {
	Kids []node
}

// writeParquet writes values of typ to a buffer.
func writeParquet(t *testing.T, typ reflect.Type, values []any, opts ParquetWriterOptions) []byte {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	opts.mem = mem
	var buf bytes.Buffer
	w, err := NewParquetWriter(&buf, typ, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Write in uneven slices, as a runner would.
	for len(values) > 0 {
		n := min(len(values), 37)
		if err := w.Write(values[:n]); err != nil {
			t.Fatal(err)
		}
		values = values[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readParquet reads every batch of data as typ.
func readParquet(t *testing.T, data []byte, typ reflect.Type, opts ParquetReaderOptions) ([]any, []Batch, error) {
	t.Helper()
	mem := memory.NewCheckedAllocator(memory.DefaultAllocator)
	defer mem.AssertSize(t, 0)
	opts.mem = mem
	r, err := NewParquetReader(bytes.NewReader(data), int64(len(data)), "t.parquet", typ, opts)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	var all []any
	var batches []Batch
	for {
		b, err := r.Next(context.Background())
		if err == io.EOF {
			return all, batches, nil
		}
		if err != nil {
			return nil, nil, err
		}
		all = append(all, b.Values...)
		b.Values = nil
		batches = append(batches, b)
	}
}

func sampleKinds(n int) []any {
	out := make([]any, n)
	for i := range n {
		at := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC).Add(time.Duration(i) * time.Millisecond * 1001)
		v := allKinds{
			Base: Base{Region: "eu"},
			I8:   int8(-i), I16: int16(-300 * i), I32: int32(-70000 * i), I64: -1 << 40 * int64(i), I: i,
			U8: uint8(i), U16: uint16(300 * i), U32: uint32(70000 * i), U64: 1<<63 + uint64(i), U: uint(i),
			F32: float32(i) / 2, F64: float64(i) / 3, B: i%2 == 0, S: strings.Repeat("s", i%7),
			At: at, Pt: point{i, -i}, Dur: time.Duration(i) * time.Second, Named: "n", Plain: 9,
		}
		if i%3 == 0 {
			v.Raw = []byte{byte(i), 0}
			v.PAt = &at
			v.PI = ptr(int64(i))
			v.PS = ptr("p")
			v.PPt = &point{i, i}
			v.Ints = []int32{1, 2, int32(i)}
			v.Pts = []point{{1, 2}, {3, 4}}
			v.Grid = [][]string{{"a"}, nil, {}}
			v.Opt = []*int64{nil, ptr(int64(i))}
		}
		if i%3 == 1 {
			v.Raw = []byte{}
			v.Ints = []int32{}
		}
		out[i] = v
	}
	return out
}

func TestParquetRoundTrip(t *testing.T) {
	tests := []struct {
		name   string
		typ    reflect.Type
		values []any
		opts   ParquetWriterOptions
	}{
		{"all kinds", reflect.TypeFor[allKinds](), sampleKinds(300), ParquetWriterOptions{}},
		{"snappy, small row groups", reflect.TypeFor[allKinds](), sampleKinds(300), ParquetWriterOptions{Compression: "snappy", RowGroupRows: 64}},
		{"uncompressed", reflect.TypeFor[point](), []any{point{1, 2}, point{3, 4}}, ParquetWriterOptions{Compression: "none"}},
		{"empty", reflect.TypeFor[point](), nil, ParquetWriterOptions{}},
		{"pointers written", reflect.TypeFor[point](), []any{&point{1, 2}}, ParquetWriterOptions{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := writeParquet(t, tt.typ, tt.values, tt.opts)
			got, _, err := readParquet(t, data, tt.typ, ParquetReaderOptions{BatchSize: 50})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.values) {
				t.Fatalf("read %d values, want %d", len(got), len(tt.values))
			}
			for i, want := range tt.values {
				if p, ok := want.(*point); ok {
					want = *p
				}
				if !reflect.DeepEqual(got[i], want) {
					t.Fatalf("value %d:\n got %#v\nwant %#v", i, got[i], want)
				}
			}
		})
	}
}

func TestParquetBatches(t *testing.T) {
	data := writeParquet(t, reflect.TypeFor[point](), pointsN(250), ParquetWriterOptions{RowGroupRows: 100})
	_, batches, err := readParquet(t, data, reflect.TypeFor[point](), ParquetReaderOptions{BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	type pos struct {
		rg  int
		row int64
	}
	var got []pos
	for _, b := range batches {
		got = append(got, pos{b.RowGroup, b.Row})
	}
	want := []pos{{0, 0}, {0, 64}, {1, 0}, {1, 64}, {2, 0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("batches start at %v, want %v", got, want)
	}
}

func pointsN(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = point{i, 2 * i}
	}
	return out
}

func TestParquetColumns(t *testing.T) {
	data := writeParquet(t, reflect.TypeFor[allKinds](), sampleKinds(10), ParquetWriterOptions{})
	type subset struct {
		S  string  `json:"s"`
		PS *string `json:"ps"`
		Pt point   `json:"pt"`
		No int     `json:"no_such_column"`
	}
	got, _, err := readParquet(t, data, reflect.TypeFor[subset](), ParquetReaderOptions{Columns: []string{"S", "pt"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		want := sampleKinds(10)[i].(allKinds)
		if v != (subset{S: want.S, Pt: want.Pt}) {
			t.Errorf("row %d = %+v", i, v)
		}
	}
	// Only the needed leaf columns are read.
	r, err := NewParquetReader(bytes.NewReader(data), int64(len(data)), "t.parquet", reflect.TypeFor[subset](), ParquetReaderOptions{Columns: []string{"S", "pt"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if len(r.leaves) != 3 { // s, pt.x, pt.y
		t.Errorf("reading leaves %v, want 3", r.leaves)
	}
}

func TestParquetWidening(t *testing.T) {
	type narrow struct {
		A int8    `json:"a"`
		B uint16  `json:"b"`
		C float32 `json:"c"`
		D string  `json:"d"`
		E []byte  `json:"e"`
	}
	type wide struct {
		A int64   `json:"a"`
		B int32   `json:"b"`
		C float64 `json:"c"`
		D []byte  `json:"d"`
		E string  `json:"e"`
	}
	data := writeParquet(t, reflect.TypeFor[narrow](), []any{narrow{-1, 65535, 1.5, "x", []byte("y")}}, ParquetWriterOptions{})
	got, _, err := readParquet(t, data, reflect.TypeFor[wide](), ParquetReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (wide{-1, 65535, 1.5, []byte("x"), "y"}); !reflect.DeepEqual(got[0], want) {
		t.Errorf("got %+v, want %+v", got[0], want)
	}
}

func TestParquetSchemaMismatch(t *testing.T) {
	data := writeParquet(t, reflect.TypeFor[allKinds](), sampleKinds(3), ParquetWriterOptions{})
	tests := []struct {
		name             string
		typ              reflect.Type
		column, fileType string
		field, goType    string
	}{
		{"string into int", reflect.TypeFor[struct {
			S int `json:"s"`
		}](), "s", "utf8", "S", "int"},
		{"int64 into int32", reflect.TypeFor[struct {
			I64 int32 `parquet:"i64"`
		}](), "i64", "int64", "I64", "int32"},
		{"uint64 into int64", reflect.TypeFor[struct {
			U64 int64 `parquet:"u64"`
		}](), "u64", "uint64", "U64", "int64"},
		{"signed into unsigned", reflect.TypeFor[struct {
			I8 uint64 `parquet:"i8"`
		}](), "i8", "int8", "I8", "uint64"},
		{"float64 into float32", reflect.TypeFor[struct {
			F float32 `json:"f64"`
		}](), "f64", "float64", "F", "float32"},
		{"nested", reflect.TypeFor[struct {
			Pt struct {
				X string `json:"x"`
			} `json:"pt"`
		}](), "pt.x", "int64", "Pt.X", "string"},
		{"list element", reflect.TypeFor[struct {
			Ints []string `json:"ints"`
		}](), "ints.element", "int32", "Ints[]", "string"},
		{"struct into scalar", reflect.TypeFor[struct {
			Pt int `json:"pt"`
		}](), "pt", "struct<x: int64, y: int64>", "Pt", "int"},
		{"time", reflect.TypeFor[struct {
			At time.Time `json:"s"`
		}](), "s", "utf8", "At", "time.Time"},
		{"no column matches", reflect.TypeFor[struct {
			Foo int
		}](), "", "region, i8", "", "struct { Foo int }"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readParquet(t, data, tt.typ, ParquetReaderOptions{})
			if !errors.Is(err, connector.ErrSchema) {
				t.Fatalf("err = %v, want ErrSchema", err)
			}
			var se *SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("err = %v, want a *SchemaError", err)
			}
			if se.File != "t.parquet" || se.Column != tt.column || !strings.HasPrefix(se.FileType, tt.fileType) ||
				!strings.HasSuffix(se.Field, tt.field) || se.GoType != tt.goType {
				t.Errorf("error %+v, want column %q, file type %q, field …%s, Go type %q", *se, tt.column, tt.fileType, tt.field, tt.goType)
			}
			for _, s := range []string{"t.parquet", tt.column, tt.goType} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
		})
	}
}

func TestParquetMapRows(t *testing.T) {
	data := writeParquet(t, reflect.TypeFor[allKinds](), sampleKinds(4), ParquetWriterOptions{})
	got, _, err := readParquet(t, data, reflect.TypeFor[map[string]any](), ParquetReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := got[3].(map[string]any)
	want := map[string]any{
		"region": "eu", "i8": int64(-3), "u16": uint64(900), "f32": 1.5, "b": false, "s": "sss",
		"raw": []byte{3, 0}, "at": time.Date(2024, 1, 2, 3, 4, 8, 3_000_000, time.UTC), "pi": int64(3),
		"pt": map[string]any{"x": int64(3), "y": int64(-3)}, "ints": []any{int64(1), int64(2), int64(3)},
		"grid": []any{[]any{"a"}, nil, []any{}}, "opt": []any{nil, int64(3)},
	}
	for k, w := range want {
		if !reflect.DeepEqual(m[k], w) {
			t.Errorf("%s = %#v, want %#v", k, m[k], w)
		}
	}
	if v, ok := got[1].(map[string]any)["pi"]; !ok || v != nil {
		t.Errorf("null pi = %#v, %v; want a nil entry", v, ok)
	}
	got, _, err = readParquet(t, data, reflect.TypeFor[map[string]any](), ParquetReaderOptions{Columns: []string{"s", "pt"}})
	if err != nil {
		t.Fatal(err)
	}
	if m := got[0].(map[string]any); len(m) != 2 {
		t.Errorf("with Columns: %v, want s and pt only", m)
	}
}

func TestParquetBadInput(t *testing.T) {
	_, err := NewParquetReader(strings.NewReader("not parquet at all"), 18, "junk.parquet", reflect.TypeFor[point](), ParquetReaderOptions{})
	if err == nil || !strings.Contains(err.Error(), "junk.parquet") {
		t.Errorf("err = %v, want one naming junk.parquet", err)
	}
	if _, err := NewParquetReader(strings.NewReader(""), 0, "x", reflect.TypeFor[int](), ParquetReaderOptions{}); !errors.Is(err, connector.ErrUnsupported) {
		t.Errorf("reading ints: err = %v, want ErrUnsupported", err)
	}
	if _, err := NewParquetWriter(io.Discard, reflect.TypeFor[point](), ParquetWriterOptions{Compression: "lzma"}); !errors.Is(err, connector.ErrUnsupported) {
		t.Errorf("lzma: err = %v, want ErrUnsupported", err)
	}
	w, _ := NewParquetWriter(io.Discard, reflect.TypeFor[point](), ParquetWriterOptions{})
	if err := w.Write([]any{"x"}); err == nil {
		t.Error("writing a string as a point: no error")
	}
	if err := w.Write([]any{(*point)(nil)}); err == nil {
		t.Error("writing a nil *point: no error")
	}
}

func TestParquetCancel(t *testing.T) {
	data := writeParquet(t, reflect.TypeFor[point](), pointsN(10), ParquetWriterOptions{})
	r, err := NewParquetReader(bytes.NewReader(data), int64(len(data)), "t.parquet", reflect.TypeFor[point](), ParquetReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

type looseRow struct {
	ID    *int64            `json:"id"`
	Name  *string           `json:"name"`
	Where *point            `json:"where"`
	Tags  []*int64          `json:"tags"`
	Attrs map[string]string `parquet:"-"`
}

type strictRow struct {
	ID    int64   `json:"id"`
	Name  string  `json:"name"`
	Where point   `json:"where"`
	Tags  []int64 `json:"tags"`
}

type roomyRow struct {
	ID    *int64   `json:"id"`
	Name  *string  `json:"name"`
	Where *point   `json:"where"`
	Tags  []*int64 `json:"tags"`
}

// A null in a column whose Go field has no room for one, and a string that
// is not UTF-8, make their row a bad one naming the column, with the row
// rendered as JSON; the other rows of the batch read as usual.
func TestParquetBadRows(t *testing.T) {
	good := looseRow{ID: ptr(int64(1)), Name: ptr("ann"), Where: &point{1, 2}, Tags: []*int64{ptr(int64(5))}}
	rows := []struct {
		row  looseRow
		want string // the reason read as strictRow; "" for a good row
	}{
		{good, ""},
		{looseRow{Name: ptr("bob"), Where: &point{}, Tags: nil}, "field id is null; the record type's field is not a pointer"},
		{looseRow{ID: ptr(int64(3)), Where: &point{}}, "field name is null"},
		{looseRow{ID: ptr(int64(4)), Name: ptr("x")}, "field where is null"},
		{looseRow{ID: ptr(int64(5)), Name: ptr("x"), Where: &point{}, Tags: []*int64{ptr(int64(1)), nil}}, "field tags.element is null"},
		{looseRow{ID: ptr(int64(6)), Name: ptr("b\xffd"), Where: &point{}}, "field name is not valid UTF-8"},
		{good, ""},
	}
	values := make([]any, len(rows))
	for i, r := range rows {
		values[i] = r.row
	}
	data := writeParquet(t, reflect.TypeFor[looseRow](), values, ParquetWriterOptions{})

	got, batches, err := readParquet(t, data, reflect.TypeFor[strictRow](), ParquetReaderOptions{BatchSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	bad := map[int]BadRow{}
	for _, b := range batches {
		for i, r := range b.Bad {
			bad[int(b.Row)+i] = r
		}
	}
	for i, r := range rows {
		b, isBad := bad[i]
		switch {
		case r.want == "" && (isBad || got[i] == nil):
			t.Errorf("row %d: bad %v, value %v; want it read", i, b.Err, got[i])
		case r.want == "":
		case !isBad || got[i] != nil:
			t.Errorf("row %d = %#v; want a bad row: %s", i, got[i], r.want)
		case !errors.Is(b.Err, ErrDecode) || !strings.Contains(b.Err.Error(), r.want):
			t.Errorf("row %d: Err = %v, want %q", i, b.Err, r.want)
		case !json.Valid(b.Raw) || !bytes.Contains(b.Raw, []byte(`"id":`)):
			t.Errorf("row %d: Raw = %s, want the row as a JSON object", i, b.Raw)
		}
	}
	if want := (strictRow{ID: 1, Name: "ann", Where: point{1, 2}, Tags: []int64{5}}); !reflect.DeepEqual(got[0], want) {
		t.Errorf("row 0 = %#v, want %#v", got[0], want)
	}

	// Read into fields with room for nulls, only the bad string is bad.
	_, batches, err = readParquet(t, data, reflect.TypeFor[roomyRow](), ParquetReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b := batches[0].Bad; len(b) != 1 || !strings.Contains(b[5].Err.Error(), "field name is not valid UTF-8") {
		t.Errorf("read with pointers: Bad = %v, want row 5's string only", b)
	}
	// Rows of map[string]any hold nulls as nil, but not bad strings.
	_, batches, err = readParquet(t, data, reflect.TypeFor[map[string]any](), ParquetReaderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if b := batches[0].Bad; len(b) != 1 || !strings.Contains(b[5].Err.Error(), "field name is not valid UTF-8") {
		t.Errorf("read as maps: Bad = %v, want row 5's string only", b)
	}
}
