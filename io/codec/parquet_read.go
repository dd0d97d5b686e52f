package codec

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

// ParquetReaderOptions tunes a ParquetReader. The zero value is ready to use.
type ParquetReaderOptions struct {
	// Columns, when set, limits reading to these top-level fields, named by
	// Go field name or by column name (SourceSpec.Columns). Struct fields not
	// listed keep their zero value. Default: every field of the type (for
	// map[string]any, every column of the file).
	Columns []string
	// BatchSize is the number of rows converted at a time. Default 4096.
	BatchSize int
	// RowGroups, when set, limits reading to these row groups, in this
	// order (a split of the file). Default: all of them.
	RowGroups []int

	mem memory.Allocator // tests only; default memory.DefaultAllocator
}

// Batch is a run of consecutive rows of one row group.
type Batch struct {
	// Values holds one value of the reader's type per row.
	Values []any
	// RowGroup is the index of the row group, from 0.
	RowGroup int
	// Row is the index of Values[0] within the row group, from 0.
	Row int64
	// Bad holds the rows that cannot be read, by their index in Values,
	// whose entry is nil: a null in a column whose Go field has no room
	// for one (not a pointer, slice, map or interface; read as zero it
	// would be counted as a real value), or a string that is not UTF-8.
	// Nil when every row was read.
	Bad map[int]BadRow
}

// BadRow is a row that cannot be read.
type BadRow struct {
	// Err wraps ErrDecode and says what is wrong in one line, naming the
	// column: "field viewedProfileId is null; the record type's field is
	// not a pointer".
	Err error
	// Raw is the row's columns that were read, as a JSON object, for a
	// dead-letter record.
	Raw []byte
}

// ParquetReader reads the rows of a Parquet file as Go values, one batch at a
// time, reading only the columns its type needs. It is not safe for
// concurrent use.
type ParquetReader struct {
	name    string
	typ     reflect.Type
	fr      *pqarrow.FileReader
	pf      *file.Reader
	leaves  []int // leaf columns to read
	cols    []readCol
	isMap   bool
	batch   int64
	mem     memory.Allocator
	rg      int   // current row group
	rgs     []int // the row groups to read; nil: all
	rgi     int   // index in rgs of rg
	row     int64
	rr      pqarrow.RecordReader // of row group rg; nil between row groups
	numRows int64
	rs      rowState // the problems of the batch being converted
}

// readCol is one top-level column read.
type readCol struct {
	field int                        // index in the file's top-level fields
	name  string                     // column name
	index []int                      // struct field index; nil for map rows
	set   setter                     // struct rows
	get   func(arrow.Array, int) any // map rows
}

// NewParquetReader opens the Parquet file in r (size bytes long) for
// reading values of t, a struct type or map[string]any. name names the file
// in errors. The reader checks the file's schema against t at once:
//
//   - a struct field whose column is missing keeps its zero value;
//   - a column whose type cannot be stored in its field (see ArrowSchema;
//     integers may widen, float32 may widen to float64, any timestamp or
//     date fits time.Time, binary and strings fit string and []byte) is a
//     *SchemaError, which wraps connector.ErrSchema;
//   - so is a file in which no field of t has a column.
//
// Null values leave pointers, slices, maps and interfaces nil; a null in a
// column whose field has no room for one (an int, a string, a struct), and
// a string that is not valid UTF-8, make their row a Batch.Bad row rather
// than a zero or a mangled value. Columns
// are matched by name, exactly or else ignoring case. Reading accepts a
// little more than ArrowSchema derives: a field of type any receives what a
// map[string]any row would hold, and a map[string]any field a struct column.
//
// Rows of map[string]any hold, per column: nil for null, int64, uint64,
// float64, bool, string, []byte, time.Time (UTC), map[string]any for
// structs and string-keyed maps, []any for lists.
func NewParquetReader(r io.ReaderAt, size int64, name string, t reflect.Type, opts ParquetReaderOptions) (*ParquetReader, error) {
	if t == nil || (t.Kind() != reflect.Struct && t != anyMap) || t == timeType {
		return nil, unsupported("%s: Parquet rows cannot be read as %v (want a struct or map[string]any)", name, t)
	}
	pr := &ParquetReader{name: name, typ: t, isMap: t == anyMap, batch: int64(opts.BatchSize), mem: opts.mem, rgs: opts.RowGroups}
	if pr.batch <= 0 {
		pr.batch = 4096
	}
	if pr.mem == nil {
		pr.mem = memory.DefaultAllocator
	}
	var fields []goField
	if !pr.isMap {
		var err error
		if fields, err = structFields(t); err != nil {
			return nil, err
		}
		if len(opts.Columns) > 0 {
			fields = slices.DeleteFunc(fields, func(f goField) bool {
				return !slices.Contains(opts.Columns, f.name) && !slices.Contains(opts.Columns, f.column)
			})
		}
	}

	pf, err := file.NewParquetReader(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, fmt.Errorf("codec: %s: not a readable Parquet file: %w", name, err)
	}
	pr.pf = pf
	pr.numRows = pf.NumRows()
	for _, rg := range pr.rgs {
		if rg < 0 || rg >= pf.NumRowGroups() {
			pf.Close()
			return nil, fmt.Errorf("codec: %s: no row group %d (the file has %d)", name, rg, pf.NumRowGroups())
		}
	}
	if pr.rgs != nil {
		pr.numRows = 0
		for _, rg := range pr.rgs {
			pr.numRows += pf.MetaData().RowGroup(rg).NumRows()
		}
		if len(pr.rgs) > 0 {
			pr.rg = pr.rgs[0]
		}
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: pr.batch}, pr.mem)
	if err != nil {
		pf.Close()
		return nil, fmt.Errorf("codec: %s: reading Parquet schema: %w", name, err)
	}
	pr.fr = fr
	if err := pr.plan(fields, opts.Columns); err != nil {
		pf.Close()
		return nil, err
	}
	return pr, nil
}

func (pr *ParquetReader) plan(fields []goField, columns []string) error {
	top := pr.fr.Manifest.Fields
	arrowFields := make([]arrow.Field, len(top))
	for i := range top {
		arrowFields[i] = *top[i].Field
	}
	if pr.isMap {
		for i, f := range arrowFields {
			if len(columns) > 0 && !slices.Contains(columns, f.Name) {
				continue
			}
			pr.cols = append(pr.cols, readCol{field: i, name: f.Name, get: anyGetter(f.Type, f.Name, &pr.rs)})
		}
	} else {
		for _, f := range fields {
			i, ok := findField(arrowFields, f.column)
			if !ok {
				continue // documented: the field keeps its zero value
			}
			af := arrowFields[i]
			s, err := makeSetter(af.Type, f.typ, af.Name, pr.typ.Name()+"."+f.name, &pr.rs)
			if err != nil {
				if se, ok := err.(*SchemaError); ok {
					se.File = pr.name
				}
				return err
			}
			pr.cols = append(pr.cols, readCol{field: i, name: af.Name, index: f.index, set: nullable(s, f.typ, af.Name, &pr.rs)})
		}
	}
	if len(pr.cols) == 0 {
		names := make([]string, len(arrowFields))
		for i, f := range arrowFields {
			names[i] = f.Name
		}
		return &SchemaError{File: pr.name, FileType: strings.Join(names, ", "), GoType: pr.typ.String()}
	}
	// Read columns in file order: the record reader returns them so.
	slices.SortFunc(pr.cols, func(a, b readCol) int { return a.field - b.field })
	for k := 1; k < len(pr.cols); k++ {
		if pr.cols[k].field == pr.cols[k-1].field {
			return unsupported("%s: fields %q and %q both match column %q", pr.name, pr.cols[k-1].name, pr.cols[k].name, pr.cols[k].name)
		}
	}
	for _, c := range pr.cols {
		pr.leaves = appendLeaves(pr.leaves, &top[c.field])
	}
	slices.Sort(pr.leaves)
	return nil
}

func appendLeaves(dst []int, f *pqarrow.SchemaField) []int {
	if f.IsLeaf() {
		return append(dst, f.ColIndex)
	}
	for i := range f.Children {
		dst = appendLeaves(dst, &f.Children[i])
	}
	return dst
}

// NumRows returns the number of rows in the file.
func (pr *ParquetReader) NumRows() int64 { return pr.numRows }

// NumRowGroups returns the number of row groups in the file.
func (pr *ParquetReader) NumRowGroups() int { return pr.pf.NumRowGroups() }

// Next returns the next batch of rows, or io.EOF after the last. It checks
// ctx between batches. An error other than io.EOF is fatal for the file.
func (pr *ParquetReader) Next(ctx context.Context) (Batch, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Batch{}, err
		}
		if pr.rr == nil {
			if pr.rg >= pr.pf.NumRowGroups() || pr.rgs != nil && pr.rgi >= len(pr.rgs) {
				return Batch{}, io.EOF
			}
			if pr.pf.MetaData().RowGroup(pr.rg).NumRows() == 0 {
				pr.nextRowGroup()
				continue
			}
			rr, err := pr.fr.GetRecordReader(ctx, pr.leaves, []int{pr.rg})
			if err != nil {
				return Batch{}, fmt.Errorf("codec: %s: row group %d: %w", pr.name, pr.rg, err)
			}
			pr.rr, pr.row = rr, 0
		}
		if !pr.rr.Next() {
			err := pr.rr.Err()
			pr.rr.Release()
			pr.rr = nil
			if err != nil {
				return Batch{}, fmt.Errorf("codec: %s: row group %d: %w", pr.name, pr.rg, err)
			}
			pr.nextRowGroup()
			continue
		}
		rec := pr.rr.RecordBatch()
		values, bad, err := pr.convert(rec)
		if err != nil {
			return Batch{}, err
		}
		b := Batch{Values: values, RowGroup: pr.rg, Row: pr.row, Bad: bad}
		pr.row += int64(len(values))
		return b, nil
	}
}

func (pr *ParquetReader) nextRowGroup() {
	if pr.rgs == nil {
		pr.rg++
		return
	}
	pr.rgi++
	if pr.rgi < len(pr.rgs) {
		pr.rg = pr.rgs[pr.rgi]
	}
}

// convert turns a record batch into values, one column at a time.
func (pr *ParquetReader) convert(rec arrow.RecordBatch) (values []any, bad map[int]BadRow, err error) {
	defer func() {
		// A file whose arrays are not what their types say must not bring
		// down the run with a panic.
		if p := recover(); p != nil {
			values, bad, err = nil, nil, fmt.Errorf("codec: %s: row group %d: cannot convert rows: %v", pr.name, pr.rg, p)
		}
	}()
	if int(rec.NumCols()) != len(pr.cols) {
		return nil, nil, fmt.Errorf("codec: %s: row group %d: read %d columns, want %d", pr.name, pr.rg, rec.NumCols(), len(pr.cols))
	}
	n := int(rec.NumRows())
	values = make([]any, n)
	pr.rs.bad = nil
	if pr.isMap {
		rows := make([]map[string]any, n)
		for i := range rows {
			rows[i] = make(map[string]any, len(pr.cols))
		}
		for k, c := range pr.cols {
			arr := rec.Column(k)
			for i, m := range rows {
				pr.rs.row = i
				m[c.name] = c.get(arr, i)
			}
		}
		for i, m := range rows {
			values[i] = m
		}
		return values, pr.badRows(rec, values), nil
	}
	rows := reflect.MakeSlice(reflect.SliceOf(pr.typ), n, n)
	for k, c := range pr.cols {
		arr := rec.Column(k)
		for i := range n {
			pr.rs.row = i
			c.set(arr, i, rows.Index(i).FieldByIndex(c.index))
		}
	}
	for i := range n {
		values[i] = rows.Index(i).Interface()
	}
	return values, pr.badRows(rec, values), nil
}

// badRows returns the rows of rec that cannot be read, setting their
// values to nil, with each rendered as JSON from the columns read.
func (pr *ParquetReader) badRows(rec arrow.RecordBatch, values []any) map[int]BadRow {
	if len(pr.rs.bad) == 0 {
		return nil
	}
	bad := make(map[int]BadRow, len(pr.rs.bad))
	gets := make([]func(arrow.Array, int) any, len(pr.cols))
	for k := range pr.cols {
		gets[k] = anyGetter(rec.Column(k).DataType(), "", nil)
	}
	for i, err := range pr.rs.bad {
		values[i] = nil
		m := make(map[string]any, len(pr.cols))
		for k, c := range pr.cols {
			m[c.name] = gets[k](rec.Column(k), i)
		}
		raw, merr := json.Marshal(m)
		if merr != nil {
			raw = nil // the reason alone, then
		}
		bad[i] = BadRow{Err: err, Raw: raw}
	}
	pr.rs.bad = nil
	return bad
}

// Close releases the reader. It does not close r.
func (pr *ParquetReader) Close() error {
	if pr.rr != nil {
		pr.rr.Release()
		pr.rr = nil
	}
	if pr.pf != nil {
		pf := pr.pf
		pr.pf = nil
		return pf.Close()
	}
	return nil
}
