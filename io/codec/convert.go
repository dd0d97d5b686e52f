package codec

import (
	"fmt"
	"reflect"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
)

// setter stores element i of arr, known not to be null, in dst, an
// addressable value of the Go type the setter was made for.
type setter func(arr arrow.Array, i int, dst reflect.Value)

// rowState gathers, while a batch is converted, the rows that cannot be
// read: a null where the Go field has no room for one, a string that is not
// UTF-8. Setters note the first problem of the row being converted, row.
type rowState struct {
	row int
	bad map[int]error
}

// fail notes a problem of the current row, unless it has one already.
func (rs *rowState) fail(reason string) {
	if rs == nil {
		return
	}
	if rs.bad == nil {
		rs.bad = map[int]error{}
	}
	if _, ok := rs.bad[rs.row]; !ok {
		rs.bad[rs.row] = fmt.Errorf("%w: %s", ErrDecode, reason)
	}
}

// badString notes a string that is not valid UTF-8 and says whether s is
// one: Go strings hold any bytes, and encoding/json would write such a one
// with U+FFFD in place of its bad bytes.
func (rs *rowState) badString(s, column string) bool {
	if utf8.ValidString(s) {
		return false
	}
	rs.fail("field " + column + " is not valid UTF-8")
	return true
}

// mismatch is a SchemaError without its file; the reader adds it.
func mismatch(column string, at arrow.DataType, field string, gt reflect.Type) *SchemaError {
	return &SchemaError{Column: column, FileType: at.String(), Field: field, GoType: gt.String()}
}

// makeSetter returns a setter from Arrow arrays of type at to Go values of
// type gt, with nulls leaving dst untouched (nil for pointers and slices,
// zero otherwise). column and field name the pair in errors. Problems of a
// row go to rs.
func makeSetter(at arrow.DataType, gt reflect.Type, column, field string, rs *rowState) (setter, error) {
	if dt, ok := at.(*arrow.DictionaryType); ok {
		inner, err := makeSetter(dt.ValueType, gt, column, field, rs)
		if err != nil {
			return nil, err
		}
		inner = nullable(inner, gt, column, rs)
		return func(arr arrow.Array, i int, dst reflect.Value) {
			d := arr.(*array.Dictionary)
			inner(d.Dictionary(), d.GetValueIndex(i), dst)
		}, nil
	}
	if gt.Kind() == reflect.Pointer {
		inner, err := makeSetter(at, gt.Elem(), column, field, rs)
		if err != nil {
			return nil, err
		}
		elem := gt.Elem()
		return func(arr arrow.Array, i int, dst reflect.Value) {
			p := reflect.New(elem)
			inner(arr, i, p.Elem())
			dst.Set(p)
		}, nil
	}
	s, err := valueSetter(at, gt, column, field, rs)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// nullable wraps s, a setter of Go values of type gt, so that a null is
// skipped where gt has room for it (a pointer, slice, map or interface,
// left nil) and is the row's problem where it has not: read as zero, a
// missing value would be counted as a real one.
func nullable(s setter, gt reflect.Type, column string, rs *rowState) setter {
	switch gt.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return func(arr arrow.Array, i int, dst reflect.Value) {
			if !arr.IsNull(i) {
				s(arr, i, dst)
			}
		}
	}
	reason := "field " + column + " is null; the record type's field is not a pointer"
	return func(arr arrow.Array, i int, dst reflect.Value) {
		if arr.IsNull(i) {
			rs.fail(reason)
			return
		}
		s(arr, i, dst)
	}
}

func valueSetter(at arrow.DataType, gt reflect.Type, column, field string, rs *rowState) (setter, error) {
	bad := func() (setter, error) { return nil, mismatch(column, at, field, gt) }
	if gt == timeType {
		switch at.ID() {
		case arrow.TIMESTAMP:
			unit := at.(*arrow.TimestampType).Unit
			return func(arr arrow.Array, i int, dst reflect.Value) {
				dst.Set(reflect.ValueOf(arr.(*array.Timestamp).Value(i).ToTime(unit)))
			}, nil
		case arrow.DATE32:
			return func(arr arrow.Array, i int, dst reflect.Value) {
				dst.Set(reflect.ValueOf(arr.(*array.Date32).Value(i).ToTime()))
			}, nil
		case arrow.DATE64:
			return func(arr arrow.Array, i int, dst reflect.Value) {
				dst.Set(reflect.ValueOf(arr.(*array.Date64).Value(i).ToTime()))
			}, nil
		}
		return bad()
	}
	switch gt.Kind() {
	case reflect.Bool:
		if at.ID() != arrow.BOOL {
			return bad()
		}
		return func(arr arrow.Array, i int, dst reflect.Value) {
			dst.SetBool(arr.(*array.Boolean).Value(i))
		}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := gt.Bits()
		if w, signed, ok := intWidth(at); !ok || (signed && w > bits) || (!signed && w >= bits) {
			return bad()
		}
		get := intGetter(at)
		return func(arr arrow.Array, i int, dst reflect.Value) { dst.SetInt(get(arr, i)) }, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if w, signed, ok := intWidth(at); !ok || signed || w > gt.Bits() {
			return bad()
		}
		get := uintGetter(at)
		return func(arr arrow.Array, i int, dst reflect.Value) { dst.SetUint(get(arr, i)) }, nil
	case reflect.Float32, reflect.Float64:
		switch {
		case at.ID() == arrow.FLOAT32:
			return func(arr arrow.Array, i int, dst reflect.Value) {
				dst.SetFloat(float64(arr.(*array.Float32).Value(i)))
			}, nil
		case at.ID() == arrow.FLOAT64 && gt.Kind() == reflect.Float64:
			return func(arr arrow.Array, i int, dst reflect.Value) {
				dst.SetFloat(arr.(*array.Float64).Value(i))
			}, nil
		}
		return bad()
	case reflect.String:
		switch at.ID() {
		case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
			return func(arr arrow.Array, i int, dst reflect.Value) {
				s := arr.(array.StringLike).Value(i)
				if rs.badString(s, column) {
					return
				}
				// Clone: the array's buffer must not outlive the batch.
				dst.SetString(strings.Clone(s))
			}, nil
		case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW, arrow.FIXED_SIZE_BINARY:
			return func(arr arrow.Array, i int, dst reflect.Value) {
				if s := string(binaryValue(arr, i)); !rs.badString(s, column) {
					dst.SetString(s)
				}
			}, nil
		}
		return bad()
	case reflect.Slice:
		if gt.Elem().Kind() == reflect.Uint8 {
			switch at.ID() {
			case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW, arrow.FIXED_SIZE_BINARY,
				arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
				return func(arr arrow.Array, i int, dst reflect.Value) {
					b := binaryValue(arr, i)
					v := reflect.MakeSlice(gt, len(b), len(b))
					reflect.Copy(v, reflect.ValueOf(b))
					dst.Set(v)
				}, nil
			}
			return bad()
		}
		lt, ok := at.(arrow.ListLikeType)
		if !ok || at.ID() == arrow.MAP {
			return bad()
		}
		elem, err := makeSetter(lt.Elem(), gt.Elem(), column+".element", field+"[]", rs)
		if err != nil {
			return nil, err
		}
		elem = nullable(elem, gt.Elem(), column+".element", rs)
		return func(arr arrow.Array, i int, dst reflect.Value) {
			l := arr.(array.ListLike)
			start, end := l.ValueOffsets(i)
			vals := l.ListValues()
			n := int(end - start)
			v := reflect.MakeSlice(gt, n, n)
			for k := range n {
				elem(vals, int(start)+k, v.Index(k))
			}
			dst.Set(v)
		}, nil
	case reflect.Struct:
		st, ok := at.(*arrow.StructType)
		if !ok {
			return bad()
		}
		fields, err := structFields(gt)
		if err != nil {
			return nil, err
		}
		type child struct {
			pos   int
			index []int
			set   setter
		}
		var children []child
		for _, f := range fields {
			pos, ok := findField(st.Fields(), f.column)
			if !ok {
				continue // a missing child keeps its zero value
			}
			cf := st.Field(pos)
			s, err := makeSetter(cf.Type, f.typ, column+"."+cf.Name, field+"."+f.name, rs)
			if err != nil {
				return nil, err
			}
			children = append(children, child{pos, f.index, nullable(s, f.typ, column+"."+cf.Name, rs)})
		}
		return func(arr arrow.Array, i int, dst reflect.Value) {
			sa := arr.(*array.Struct)
			for _, c := range children {
				c.set(sa.Field(c.pos), i, dst.FieldByIndex(c.index))
			}
		}, nil
	case reflect.Interface:
		if gt.NumMethod() != 0 {
			return bad()
		}
		get := anyGetter(at, column, rs)
		return func(arr arrow.Array, i int, dst reflect.Value) {
			if v := get(arr, i); v != nil {
				dst.Set(reflect.ValueOf(v))
			}
		}, nil
	case reflect.Map:
		if gt == anyMap && at.ID() == arrow.STRUCT {
			get := anyGetter(at, column, rs)
			return func(arr arrow.Array, i int, dst reflect.Value) {
				dst.Set(reflect.ValueOf(get(arr, i)))
			}, nil
		}
		return bad()
	}
	return bad()
}

// findField finds the field named name: exactly, else ignoring case (as
// encoding/json matches keys).
func findField(fields []arrow.Field, name string) (int, bool) {
	for i, f := range fields {
		if f.Name == name {
			return i, true
		}
	}
	for i, f := range fields {
		if strings.EqualFold(f.Name, name) {
			return i, true
		}
	}
	return 0, false
}

// intWidth returns the width of an Arrow integer type and whether it is
// signed.
func intWidth(at arrow.DataType) (bits int, signed, ok bool) {
	switch at.ID() {
	case arrow.INT8:
		return 8, true, true
	case arrow.INT16:
		return 16, true, true
	case arrow.INT32:
		return 32, true, true
	case arrow.INT64:
		return 64, true, true
	case arrow.UINT8:
		return 8, false, true
	case arrow.UINT16:
		return 16, false, true
	case arrow.UINT32:
		return 32, false, true
	case arrow.UINT64:
		return 64, false, true
	}
	return 0, false, false
}

func intGetter(at arrow.DataType) func(arrow.Array, int) int64 {
	switch at.ID() {
	case arrow.INT8:
		return func(a arrow.Array, i int) int64 { return int64(a.(*array.Int8).Value(i)) }
	case arrow.INT16:
		return func(a arrow.Array, i int) int64 { return int64(a.(*array.Int16).Value(i)) }
	case arrow.INT32:
		return func(a arrow.Array, i int) int64 { return int64(a.(*array.Int32).Value(i)) }
	case arrow.INT64:
		return func(a arrow.Array, i int) int64 { return a.(*array.Int64).Value(i) }
	}
	u := uintGetter(at)
	return func(a arrow.Array, i int) int64 { return int64(u(a, i)) }
}

func uintGetter(at arrow.DataType) func(arrow.Array, int) uint64 {
	switch at.ID() {
	case arrow.UINT8:
		return func(a arrow.Array, i int) uint64 { return uint64(a.(*array.Uint8).Value(i)) }
	case arrow.UINT16:
		return func(a arrow.Array, i int) uint64 { return uint64(a.(*array.Uint16).Value(i)) }
	case arrow.UINT32:
		return func(a arrow.Array, i int) uint64 { return uint64(a.(*array.Uint32).Value(i)) }
	case arrow.UINT64:
		return func(a arrow.Array, i int) uint64 { return a.(*array.Uint64).Value(i) }
	}
	panic(fmt.Sprintf("codec: %s is not an unsigned integer type", at))
}

// binaryValue returns a copy of element i of a binary or string array.
func binaryValue(arr arrow.Array, i int) []byte {
	var b []byte
	switch a := arr.(type) {
	case *array.Binary:
		b = a.Value(i)
	case *array.LargeBinary:
		b = a.Value(i)
	case *array.BinaryView:
		b = a.Value(i)
	case *array.FixedSizeBinary:
		b = a.Value(i)
	case array.StringLike:
		return []byte(a.Value(i))
	default:
		panic(fmt.Sprintf("codec: %s is not a binary type", arr.DataType()))
	}
	return append([]byte{}, b...)
}

// anyGetter returns a function converting element i of an Arrow array of
// type at to a plain Go value: nil for null, int64, uint64, float64, bool,
// string, []byte, time.Time, map[string]any for structs and string-keyed
// maps, []any for lists; other types as arrow-go renders them for JSON. A
// string that is not UTF-8 is noted in rs (when not nil) as a problem of
// column, a top-level column's name.
func anyGetter(at arrow.DataType, column string, rs *rowState) func(arrow.Array, int) any {
	get := anyValue(at, column, rs)
	return func(arr arrow.Array, i int) any {
		if arr.IsNull(i) {
			return nil
		}
		return get(arr, i)
	}
}

func anyValue(at arrow.DataType, column string, rs *rowState) func(arrow.Array, int) any {
	switch at.ID() {
	case arrow.BOOL:
		return func(a arrow.Array, i int) any { return a.(*array.Boolean).Value(i) }
	case arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64:
		get := intGetter(at)
		return func(a arrow.Array, i int) any { return get(a, i) }
	case arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64:
		get := uintGetter(at)
		return func(a arrow.Array, i int) any { return get(a, i) }
	case arrow.FLOAT32:
		return func(a arrow.Array, i int) any { return float64(a.(*array.Float32).Value(i)) }
	case arrow.FLOAT64:
		return func(a arrow.Array, i int) any { return a.(*array.Float64).Value(i) }
	case arrow.STRING, arrow.LARGE_STRING, arrow.STRING_VIEW:
		return func(a arrow.Array, i int) any {
			s := a.(array.StringLike).Value(i)
			rs.badString(s, column)
			return strings.Clone(s)
		}
	case arrow.BINARY, arrow.LARGE_BINARY, arrow.BINARY_VIEW, arrow.FIXED_SIZE_BINARY:
		return binaryAny
	case arrow.TIMESTAMP:
		unit := at.(*arrow.TimestampType).Unit
		return func(a arrow.Array, i int) any { return a.(*array.Timestamp).Value(i).ToTime(unit) }
	case arrow.DATE32:
		return func(a arrow.Array, i int) any { return a.(*array.Date32).Value(i).ToTime() }
	case arrow.DATE64:
		return func(a arrow.Array, i int) any { return a.(*array.Date64).Value(i).ToTime() }
	case arrow.DICTIONARY:
		inner := anyGetter(at.(*arrow.DictionaryType).ValueType, column, rs)
		return func(a arrow.Array, i int) any {
			d := a.(*array.Dictionary)
			return inner(d.Dictionary(), d.GetValueIndex(i))
		}
	case arrow.STRUCT:
		st := at.(*arrow.StructType)
		gets := make([]func(arrow.Array, int) any, st.NumFields())
		for k, f := range st.Fields() {
			gets[k] = anyGetter(f.Type, column+"."+f.Name, rs)
		}
		return func(a arrow.Array, i int) any {
			sa := a.(*array.Struct)
			m := make(map[string]any, len(gets))
			for k, get := range gets {
				m[st.Field(k).Name] = get(sa.Field(k), i)
			}
			return m
		}
	case arrow.MAP:
		mt := at.(*arrow.MapType)
		if mt.KeyType().ID() == arrow.STRING || mt.KeyType().ID() == arrow.LARGE_STRING {
			item := anyGetter(mt.ItemType(), column+".value", rs)
			return func(a arrow.Array, i int) any {
				ma := a.(*array.Map)
				keys := ma.Keys().(array.StringLike)
				start, end := ma.ValueOffsets(i)
				m := make(map[string]any, end-start)
				for k := int(start); k < int(end); k++ {
					key := keys.Value(k)
					rs.badString(key, column+".key")
					m[strings.Clone(key)] = item(ma.Items(), k)
				}
				return m
			}
		}
	case arrow.LIST, arrow.LARGE_LIST, arrow.FIXED_SIZE_LIST, arrow.LIST_VIEW, arrow.LARGE_LIST_VIEW:
		elem := anyGetter(at.(arrow.ListLikeType).Elem(), column+".element", rs)
		return func(a arrow.Array, i int) any {
			l := a.(array.ListLike)
			start, end := l.ValueOffsets(i)
			vals := l.ListValues()
			out := make([]any, 0, end-start)
			for k := int(start); k < int(end); k++ {
				out = append(out, elem(vals, k))
			}
			return out
		}
	}
	return func(a arrow.Array, i int) any { return a.GetOneForMarshal(i) }
}

func binaryAny(a arrow.Array, i int) any { return binaryValue(a, i) }

// timeOf converts a time.Time to a millisecond timestamp.
func timeOf(v reflect.Value) arrow.Timestamp {
	return arrow.Timestamp(v.Interface().(time.Time).UnixMilli())
}
