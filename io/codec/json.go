package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"unicode/utf8"
)

// JSONDecoder decodes JSON lines into new values of one type.
type JSONDecoder struct {
	typ reflect.Type
	// nulls describes where the type has no room for a null; nil when it
	// has room everywhere (map[string]any, json.RawMessage).
	nulls *jsonNode
}

// NewJSONDecoder returns a decoder of lines into values of t: a struct (field
// names as encoding/json sees them), a map with string keys (such as
// map[string]any), a slice, or a basic type. Other kinds (channels,
// functions, interfaces other than any) are an error wrapping
// connector.ErrUnsupported.
func NewJSONDecoder(t reflect.Type) (*JSONDecoder, error) {
	if err := checkJSONType(t); err != nil {
		return nil, err
	}
	d := &JSONDecoder{typ: t}
	if n := jsonPlan(t, map[reflect.Type]*jsonNode{}); n.refusesNull(map[*jsonNode]bool{}) {
		d.nulls = n
	}
	return d, nil
}

func checkJSONType(t reflect.Type) error {
	if t == nil {
		return unsupported("JSON: no type given")
	}
	switch t.Kind() {
	case reflect.Chan, reflect.Func, reflect.UnsafePointer, reflect.Complex64, reflect.Complex128, reflect.Uintptr:
		return unsupported("JSON: cannot hold records in a %s", t)
	case reflect.Map:
		switch t.Key().Kind() {
		case reflect.String, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		default:
			return unsupported("JSON: map key type %s", t.Key())
		}
	}
	return nil
}

// Type returns the decoder's type.
func (d *JSONDecoder) Type() reflect.Type { return d.typ }

// Decode decodes one line (without its newline) into a new value of the
// decoder's type and returns it as an any holding that type. Fields of the
// line that the type does not have are ignored; fields the line lacks keep
// their zero value. An error wraps ErrDecode and reads as a one-line reason:
//
//	codec: cannot decode: bad JSON at byte 7: invalid character 'x' looking for beginning of value
//	codec: cannot decode: field "age": JSON string where int is wanted
//	codec: cannot decode: field viewedProfileId is null; the record type's field is not a pointer
//	codec: cannot decode: field user.name is not valid UTF-8
//
// Unlike encoding/json, which reads it as "leave the field zero", a null
// where the type has no room for one (a field, element or map value that
// is not a pointer, slice, map, interface or a type with its own
// UnmarshalJSON; time.Time has no room either) is an error: a missing
// value read as 0 would be counted as a real one. So is a string anywhere
// in the line, key or value, that is not valid UTF-8, which encoding/json
// would quietly replace with U+FFFD.
func (d *JSONDecoder) Decode(line []byte) (any, error) {
	p := reflect.New(d.typ)
	if err := json.Unmarshal(line, p.Interface()); err != nil {
		return nil, decodeError(err, d.typ)
	}
	// Most lines are valid UTF-8 and hold no null: two fast scans find
	// them, and only the rest are walked.
	badUTF8 := !utf8.Valid(line)
	if badUTF8 || d.nulls != nil && bytes.Contains(line, nullLiteral) {
		if reason := checkJSON(line, d.nulls, badUTF8); reason != "" {
			return nil, fmt.Errorf("%w: %s", ErrDecode, reason)
		}
	}
	return p.Elem().Interface(), nil
}

var nullLiteral = []byte("null")

func decodeError(err error, t reflect.Type) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	var reason string
	switch {
	case errors.As(err, &syn):
		if syn.Offset > 0 {
			reason = fmt.Sprintf("bad JSON at byte %d: %s", syn.Offset, syn.Error())
		} else {
			reason = "bad JSON: " + syn.Error()
		}
	case errors.As(err, &typ):
		what := typ.Value
		want := "?"
		if typ.Type != nil {
			want = typ.Type.String()
		}
		if typ.Field != "" {
			reason = fmt.Sprintf("field %q: JSON %s where %s is wanted", typ.Field, what, want)
		} else {
			reason = fmt.Sprintf("JSON %s where %s is wanted", what, want)
		}
	default:
		// Errors of UnmarshalJSON/UnmarshalText methods (time.Time, say).
		reason = fmt.Sprintf("bad value for %s: %s", t, err.Error())
	}
	return fmt.Errorf("%w: %s", ErrDecode, oneLine(reason))
}

// JSONWriter writes values as JSON lines.
type JSONWriter struct {
	typ reflect.Type
	enc *json.Encoder
}

// NewJSONWriter returns a writer of values of t to w, one JSON document and
// a newline per value, with HTML characters left unescaped. It buffers
// nothing: give it a buffered w.
func NewJSONWriter(w io.Writer, t reflect.Type) (*JSONWriter, error) {
	if err := checkJSONType(t); err != nil {
		return nil, err
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSONWriter{typ: t, enc: enc}, nil
}

// Write encodes values, which must be of the writer's type or a pointer to
// it.
func (w *JSONWriter) Write(values []any) error {
	for _, v := range values {
		if err := checkValue(v, w.typ); err != nil {
			return err
		}
		if err := w.enc.Encode(v); err != nil {
			return fmt.Errorf("codec: JSON: %w", err)
		}
	}
	return nil
}

// Close does nothing: the writer holds no buffer. It makes JSONWriter and
// ParquetWriter interchangeable.
func (w *JSONWriter) Close() error { return nil }

// checkValue checks that v holds a t or a *t.
func checkValue(v any, t reflect.Type) error {
	vt := reflect.TypeOf(v)
	if vt == t || (vt != nil && vt.Kind() == reflect.Pointer && vt.Elem() == t) {
		return nil
	}
	if t.Kind() == reflect.Interface && (vt == nil || vt.Implements(t)) {
		return nil
	}
	return fmt.Errorf("codec: value of type %v written where %s is declared", vt, t)
}
