package codec

import (
	"fmt"
	"io"
	"reflect"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ParquetWriterOptions tunes a ParquetWriter. The zero value is ready to use.
type ParquetWriterOptions struct {
	// Compression is the codec of the column chunks: "zstd", "snappy",
	// "gzip" or "none". Default "zstd".
	Compression string
	// RowGroupRows is the number of rows per row group. Default 65536.
	RowGroupRows int

	mem memory.Allocator // tests only; default memory.DefaultAllocator
}

// Validate reports a bad option, wrapping connector.ErrUnsupported.
func (o ParquetWriterOptions) Validate() error {
	if _, err := compression(o.Compression); err != nil {
		return err
	}
	if o.RowGroupRows < 0 {
		return unsupported("Parquet: negative row group size %d", o.RowGroupRows)
	}
	return nil
}

func compression(name string) (compress.Compression, error) {
	switch name {
	case "", "zstd":
		return compress.Codecs.Zstd, nil
	case "snappy":
		return compress.Codecs.Snappy, nil
	case "gzip":
		return compress.Codecs.Gzip, nil
	case "none", "uncompressed":
		return compress.Codecs.Uncompressed, nil
	}
	return 0, unsupported("Parquet: unknown compression %q (want zstd, snappy, gzip or none)", name)
}

// ParquetWriter writes values of a struct type to a Parquet file, with the
// schema ArrowSchema derives. Values are appended to Arrow builders as they
// come and written out a row group at a time. It is not safe for concurrent
// use.
type ParquetWriter struct {
	typ    reflect.Type
	fw     *pqarrow.FileWriter
	rb     *array.RecordBuilder
	cols   []writeCol
	rows   int
	maxRow int
	err    error // sticky
}

type writeCol struct {
	index []int
	app   appender
}

// appender appends a Go value to an Arrow builder.
type appender func(b array.Builder, v reflect.Value)

// NewParquetWriter starts a Parquet file of values of struct type t on w.
// Close writes the footer; it does not close w.
func NewParquetWriter(w io.Writer, t reflect.Type, opts ParquetWriterOptions) (*ParquetWriter, error) {
	sc, err := ArrowSchema(t)
	if err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	codec, _ := compression(opts.Compression)
	pw := &ParquetWriter{typ: t, maxRow: opts.RowGroupRows}
	if pw.maxRow == 0 {
		pw.maxRow = 64 << 10
	}
	mem := opts.mem
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	fields, err := structFields(t)
	if err != nil {
		return nil, err
	}
	for _, f := range fields {
		app, err := makeAppender(f.typ)
		if err != nil {
			return nil, err
		}
		pw.cols = append(pw.cols, writeCol{index: f.index, app: app})
	}
	props := parquet.NewWriterProperties(
		parquet.WithCompression(codec),
		parquet.WithMaxRowGroupLength(int64(pw.maxRow)),
		parquet.WithAllocator(mem),
		parquet.WithCreatedBy("weir"),
	)
	fw, err := pqarrow.NewFileWriter(sc, noClose{w}, props,
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(mem)))
	if err != nil {
		return nil, fmt.Errorf("codec: starting Parquet file: %w", err)
	}
	pw.fw = fw
	pw.rb = array.NewRecordBuilder(mem, sc)
	return pw, nil
}

// noClose hides w's Close method: pqarrow closes a writer it can.
type noClose struct{ w io.Writer }

func (n noClose) Write(p []byte) (int, error) { return n.w.Write(p) }

// Write appends values, which must be of the writer's type or a pointer to
// it (a nil pointer is an error). A full row group is written out to w.
func (pw *ParquetWriter) Write(values []any) error {
	if pw.err != nil {
		return pw.err
	}
	for _, v := range values {
		if err := checkValue(v, pw.typ); err != nil {
			return err
		}
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Pointer {
			if rv.IsNil() {
				return fmt.Errorf("codec: nil %s written", rv.Type())
			}
			rv = rv.Elem()
		}
		for k, c := range pw.cols {
			c.app(pw.rb.Field(k), rv.FieldByIndex(c.index))
		}
		pw.rows++
		if pw.rows >= pw.maxRow {
			if err := pw.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (pw *ParquetWriter) flush() error {
	if pw.rows == 0 {
		return nil
	}
	rec := pw.rb.NewRecordBatch()
	defer rec.Release()
	pw.rows = 0
	if err := pw.fw.Write(rec); err != nil {
		pw.err = fmt.Errorf("codec: writing Parquet row group: %w", err)
		return pw.err
	}
	return nil
}

// Close writes the rows still buffered and the file's footer. It does not
// close the underlying writer.
func (pw *ParquetWriter) Close() error {
	if pw.fw == nil {
		return pw.err
	}
	err := pw.flush()
	pw.rb.Release()
	if cerr := pw.fw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("codec: finishing Parquet file: %w", cerr)
	}
	pw.fw = nil
	if pw.err == nil {
		pw.err = err
	}
	return err
}

// makeAppender returns the appender for Go type t, which ArrowSchema has
// accepted, to a builder of the Arrow type it derived.
func makeAppender(t reflect.Type) (appender, error) {
	if t == timeType {
		return func(b array.Builder, v reflect.Value) {
			b.(*array.TimestampBuilder).Append(timeOf(v))
		}, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return func(b array.Builder, v reflect.Value) { b.(*array.BooleanBuilder).Append(v.Bool()) }, nil
	case reflect.Int8:
		return func(b array.Builder, v reflect.Value) { b.(*array.Int8Builder).Append(int8(v.Int())) }, nil
	case reflect.Int16:
		return func(b array.Builder, v reflect.Value) { b.(*array.Int16Builder).Append(int16(v.Int())) }, nil
	case reflect.Int32:
		return func(b array.Builder, v reflect.Value) { b.(*array.Int32Builder).Append(int32(v.Int())) }, nil
	case reflect.Int64, reflect.Int:
		if t.Bits() == 32 {
			return func(b array.Builder, v reflect.Value) { b.(*array.Int32Builder).Append(int32(v.Int())) }, nil
		}
		return func(b array.Builder, v reflect.Value) { b.(*array.Int64Builder).Append(v.Int()) }, nil
	case reflect.Uint8:
		return func(b array.Builder, v reflect.Value) { b.(*array.Uint8Builder).Append(uint8(v.Uint())) }, nil
	case reflect.Uint16:
		return func(b array.Builder, v reflect.Value) { b.(*array.Uint16Builder).Append(uint16(v.Uint())) }, nil
	case reflect.Uint32:
		return func(b array.Builder, v reflect.Value) { b.(*array.Uint32Builder).Append(uint32(v.Uint())) }, nil
	case reflect.Uint64, reflect.Uint:
		if t.Bits() == 32 {
			return func(b array.Builder, v reflect.Value) { b.(*array.Uint32Builder).Append(uint32(v.Uint())) }, nil
		}
		return func(b array.Builder, v reflect.Value) { b.(*array.Uint64Builder).Append(v.Uint()) }, nil
	case reflect.Float32:
		return func(b array.Builder, v reflect.Value) { b.(*array.Float32Builder).Append(float32(v.Float())) }, nil
	case reflect.Float64:
		return func(b array.Builder, v reflect.Value) { b.(*array.Float64Builder).Append(v.Float()) }, nil
	case reflect.String:
		return func(b array.Builder, v reflect.Value) { b.(*array.StringBuilder).Append(v.String()) }, nil
	case reflect.Pointer:
		inner, err := makeAppender(t.Elem())
		if err != nil {
			return nil, err
		}
		return func(b array.Builder, v reflect.Value) {
			if v.IsNil() {
				b.AppendNull()
				return
			}
			inner(b, v.Elem())
		}, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return func(b array.Builder, v reflect.Value) {
				if v.IsNil() {
					b.AppendNull()
					return
				}
				b.(*array.BinaryBuilder).Append(v.Bytes())
			}, nil
		}
		elem, err := makeAppender(t.Elem())
		if err != nil {
			return nil, err
		}
		return func(b array.Builder, v reflect.Value) {
			lb := b.(*array.ListBuilder)
			if v.IsNil() {
				lb.AppendNull()
				return
			}
			lb.Append(true)
			vb := lb.ValueBuilder()
			for i := range v.Len() {
				elem(vb, v.Index(i))
			}
		}, nil
	case reflect.Struct:
		fields, err := structFields(t)
		if err != nil {
			return nil, err
		}
		apps := make([]appender, len(fields))
		for k, f := range fields {
			if apps[k], err = makeAppender(f.typ); err != nil {
				return nil, err
			}
		}
		return func(b array.Builder, v reflect.Value) {
			sb := b.(*array.StructBuilder)
			sb.Append(true)
			for k, f := range fields {
				apps[k](sb.FieldBuilder(k), v.FieldByIndex(f.index))
			}
		}, nil
	}
	return nil, unsupported("Parquet: type %s has no Parquet column type", t)
}
