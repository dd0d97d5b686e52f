package codec

import (
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

var (
	timeType  = reflect.TypeFor[time.Time]()
	bytesType = reflect.TypeFor[[]byte]()
	anyMap    = reflect.TypeFor[map[string]any]()
)

// timestampType is the Arrow type of a time.Time column: milliseconds since
// the epoch, UTC, as event time is kept (windowing.Time).
var timestampType = &arrow.TimestampType{Unit: arrow.Millisecond, TimeZone: "UTC"}

// goField is one column-bearing field of a struct type.
type goField struct {
	column string       // column name
	name   string       // Go field name
	index  []int        // for reflect.Value.FieldByIndex
	typ    reflect.Type // field type
}

// ColumnName returns the Parquet column name of a struct field: the name in
// its `parquet` tag, else in its `json` tag, else the field's name. skip is
// true for a field tagged "-".
func ColumnName(f reflect.StructField) (name string, skip bool) {
	for _, key := range []string{"parquet", "json"} {
		tag, ok := f.Tag.Lookup(key)
		if !ok {
			continue
		}
		if tag == "-" {
			return "", true
		}
		if n, _, _ := strings.Cut(tag, ","); n != "" {
			return n, false
		}
	}
	return f.Name, false
}

// structFields lists the column-bearing fields of struct type t: exported
// fields not tagged "-", with the fields of embedded structs that carry no
// name tag flattened into t's, as encoding/json does. Two fields with one
// column name are an error.
func structFields(t reflect.Type) ([]goField, error) {
	var out []goField
	seen := map[string]string{}
	var walk func(t reflect.Type, prefix []int) error
	walk = func(t reflect.Type, prefix []int) error {
		for i := range t.NumField() {
			f := t.Field(i)
			name, skip := ColumnName(f)
			if skip {
				continue
			}
			idx := append(append([]int(nil), prefix...), i)
			_, named := f.Tag.Lookup("parquet")
			if !named {
				if tag, ok := f.Tag.Lookup("json"); ok {
					n, _, _ := strings.Cut(tag, ",")
					named = n != ""
				}
			}
			if f.Anonymous && !named {
				ft := f.Type
				if ft.Kind() == reflect.Pointer {
					if ft.Elem().Kind() == reflect.Struct {
						return unsupported("%s: embedded pointer field %s", t, f.Name)
					}
				}
				if ft.Kind() == reflect.Struct && ft != timeType {
					if err := walk(ft, idx); err != nil {
						return err
					}
					continue
				}
			}
			if !f.IsExported() {
				continue
			}
			if prev, dup := seen[name]; dup {
				return unsupported("%s: fields %s and %s have the same column name %q", t, prev, f.Name, name)
			}
			seen[name] = f.Name
			out = append(out, goField{column: name, name: f.Name, index: idx, typ: f.Type})
		}
		return nil
	}
	if err := walk(t, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// ArrowSchema derives the Arrow schema of the Parquet files holding values
// of struct type t. Columns are named by ColumnName, in field order. Types:
//
//	bool                         boolean
//	int8..int64, int             int8..int64 (int as int64)
//	uint8..uint64, uint          uint8..uint64 (uint as uint64)
//	float32, float64             float32, float64
//	string                       utf8
//	[]byte                       binary (nullable: nil is null)
//	time.Time                    timestamp[ms, tz=UTC] (read back in UTC,
//	                             without sub-millisecond precision)
//	*T                           T, nullable
//	struct                       struct of its fields
//	[]T                          list<T> (nullable: nil is null)
//
// Non-pointer fields other than []byte and slices are not nullable. Any
// other type (maps, interfaces, arrays, recursive structs) is an error
// wrapping connector.ErrUnsupported that names the field.
func ArrowSchema(t reflect.Type) (*arrow.Schema, error) {
	if t == nil || t.Kind() != reflect.Struct || t == timeType {
		return nil, unsupported("Parquet: type %v is not a struct", t)
	}
	st, err := arrowStruct(t, t.Name(), map[reflect.Type]bool{})
	if err != nil {
		return nil, err
	}
	return arrow.NewSchema(st.Fields(), nil), nil
}

func arrowStruct(t reflect.Type, path string, visiting map[reflect.Type]bool) (*arrow.StructType, error) {
	if visiting[t] {
		return nil, unsupported("Parquet: %s: recursive type %s", path, t)
	}
	visiting[t] = true
	defer delete(visiting, t)
	fields, err := structFields(t)
	if err != nil {
		return nil, err
	}
	afs := make([]arrow.Field, 0, len(fields))
	for _, f := range fields {
		at, nullable, err := arrowType(f.typ, path+"."+f.name, visiting)
		if err != nil {
			return nil, err
		}
		afs = append(afs, arrow.Field{Name: f.column, Type: at, Nullable: nullable})
	}
	return arrow.StructOf(afs...), nil
}

// arrowType maps a Go type to an Arrow type and says whether it is
// nullable. path names the field in errors.
func arrowType(t reflect.Type, path string, visiting map[reflect.Type]bool) (arrow.DataType, bool, error) {
	switch t {
	case timeType:
		return timestampType, false, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return arrow.FixedWidthTypes.Boolean, false, nil
	case reflect.Int8:
		return arrow.PrimitiveTypes.Int8, false, nil
	case reflect.Int16:
		return arrow.PrimitiveTypes.Int16, false, nil
	case reflect.Int32:
		return arrow.PrimitiveTypes.Int32, false, nil
	case reflect.Int64:
		return arrow.PrimitiveTypes.Int64, false, nil
	case reflect.Int:
		if strconv.IntSize == 32 {
			return arrow.PrimitiveTypes.Int32, false, nil
		}
		return arrow.PrimitiveTypes.Int64, false, nil
	case reflect.Uint8:
		return arrow.PrimitiveTypes.Uint8, false, nil
	case reflect.Uint16:
		return arrow.PrimitiveTypes.Uint16, false, nil
	case reflect.Uint32:
		return arrow.PrimitiveTypes.Uint32, false, nil
	case reflect.Uint64:
		return arrow.PrimitiveTypes.Uint64, false, nil
	case reflect.Uint:
		if strconv.IntSize == 32 {
			return arrow.PrimitiveTypes.Uint32, false, nil
		}
		return arrow.PrimitiveTypes.Uint64, false, nil
	case reflect.Float32:
		return arrow.PrimitiveTypes.Float32, false, nil
	case reflect.Float64:
		return arrow.PrimitiveTypes.Float64, false, nil
	case reflect.String:
		return arrow.BinaryTypes.String, false, nil
	case reflect.Pointer:
		if t.Elem().Kind() == reflect.Pointer {
			return nil, false, unsupported("Parquet: %s: pointer to pointer %s", path, t)
		}
		at, _, err := arrowType(t.Elem(), path, visiting)
		return at, true, err
	case reflect.Struct:
		st, err := arrowStruct(t, path, visiting)
		return st, false, err
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return arrow.BinaryTypes.Binary, true, nil
		}
		et, nullable, err := arrowType(t.Elem(), path+"[]", visiting)
		if err != nil {
			return nil, false, err
		}
		return arrow.ListOfField(arrow.Field{Name: "element", Type: et, Nullable: nullable}), true, nil
	}
	return nil, false, unsupported("Parquet: %s: type %s has no Parquet column type", path, t)
}
