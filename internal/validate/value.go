package validate

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Rows are normalized as they are read, so that the two sides compare alike
// whatever format they came from. A normalized value is one of:
//
//   - nil;
//   - bool or string;
//   - int64, or uint64 for integers above math.MaxInt64: integers, whether
//     a Go integer type or a JSON number written without a fraction or
//     exponent;
//   - float64: floating-point numbers (Go floats, and JSON numbers written
//     with a fraction or an exponent);
//   - []any of normalized values;
//   - map[string]any of normalized values, without nil ones: a null field
//     and an absent field are the same.
//
// time.Time becomes its RFC 3339 text in UTC (as encoding/json writes a UTC
// time) and []byte its base64 text (as encoding/json writes it), so that a
// Parquet timestamp or binary column compares equal to the JSON a sink
// wrote for the same value.

// normalizer normalizes rows, leaving out the ignored fields.
type normalizer struct {
	ignore map[string]bool // dotted paths; nil when nothing is ignored
}

// row returns the normalized copy of r.
func (n *normalizer) row(r map[string]any) map[string]any {
	return n.object(r, "")
}

func (n *normalizer) object(m map[string]any, path string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		p := k
		if n.ignore != nil {
			if path != "" {
				p = path + "." + k
			}
			if n.ignore[p] {
				continue
			}
		}
		if v = n.value(v, p); v != nil {
			out[k] = v
		}
	}
	return out
}

// value normalizes v, found at path (dotted; the elements of a list are at
// the list's path).
func (n *normalizer) value(v any, path string) any {
	switch v := v.(type) {
	case nil, bool, string, int64, float64:
		return v
	case json.Number:
		return number(v)
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case []byte:
		return base64.StdEncoding.EncodeToString(v)
	case json.RawMessage:
		return n.value(decodeJSON(v), path)
	case map[string]any:
		return n.object(v, path)
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = n.value(e, path)
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool()
	case reflect.String:
		return rv.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := rv.Uint(); u > math.MaxInt64 {
			return u
		} else {
			return int64(u)
		}
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil
		}
		return n.value(rv.Elem().Interface(), path)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return nil
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = n.value(rv.Index(i).Interface(), path)
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() == reflect.String {
			if rv.IsNil() {
				return nil
			}
			m := make(map[string]any, rv.Len())
			for it := rv.MapRange(); it.Next(); {
				m[it.Key().String()] = it.Value().Interface()
			}
			return n.object(m, path)
		}
	}
	// Anything else (a struct, a map with other keys): as encoding/json
	// sees it.
	b, err := json.Marshal(v)
	if err != nil {
		return reflect.ValueOf(v).String()
	}
	return n.value(decodeJSON(b), path)
}

// decodeJSON decodes JSON with numbers as json.Number; text that is not
// JSON stays text.
func decodeJSON(b []byte) any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return string(b)
	}
	return v
}

// number normalizes a JSON number: an integer if written without a fraction
// or an exponent and it fits in 64 bits, a float64 otherwise.
func number(n json.Number) any {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u
		}
	}
	f, _ := strconv.ParseFloat(s, 64) // ±Inf when out of range
	return f
}

func isNumber(v any) bool {
	switch v.(type) {
	case int64, uint64, float64:
		return true
	}
	return false
}

// asFloat returns a normalized number as a float64.
func asFloat(v any) float64 {
	switch v := v.(type) {
	case int64:
		return float64(v)
	case uint64:
		return float64(v)
	}
	return v.(float64)
}

// integral returns f as an int64, or as a uint64 above math.MaxInt64, when
// f is an integer in their range.
func integral(f float64) (any, bool) {
	switch {
	case f != math.Trunc(f) || math.IsInf(f, 0):
		return nil, false
	case f >= -(1<<63) && f < 1<<63:
		return int64(f), true
	case f >= 0 && f < 1<<64:
		return uint64(f), true
	}
	return nil, false
}

// equal reports whether two normalized values are equal: numbers by value
// (3 and 3.0 are equal), floating-point ones within tol (see
// Options.Tolerance), lists element by element and records field by field.
func equal(a, b any, tol float64) bool {
	switch a := a.(type) {
	case nil:
		return b == nil
	case bool:
		bb, ok := b.(bool)
		return ok && a == bb
	case string:
		bs, ok := b.(string)
		return ok && a == bs
	case int64, uint64, float64:
		return isNumber(b) && equalNumbers(a, b, tol)
	case []any:
		bl, ok := b.([]any)
		if !ok || len(a) != len(bl) {
			return false
		}
		for i := range a {
			if !equal(a[i], bl[i], tol) {
				return false
			}
		}
		return true
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, va := range a {
			vb, ok := bm[k]
			if !ok || !equal(va, vb, tol) {
				return false
			}
		}
		return true
	}
	return false
}

// equalNumbers compares two normalized numbers. Integers compare exactly,
// an integer and a float exactly when the float is integral; when either is
// a float, tol applies.
func equalNumbers(a, b any, tol float64) bool {
	fa, aFloat := a.(float64)
	fb, bFloat := b.(float64)
	switch {
	case !aFloat && !bFloat:
		return a == b // int64 and uint64 never hold the same value
	case aFloat && bFloat:
		if fa == fb || (math.IsNaN(fa) && math.IsNaN(fb)) {
			return true
		}
	default:
		i, f := a, fb
		if aFloat {
			i, f = b, fa
		}
		if fi, ok := integral(f); ok && fi == i {
			return true
		}
		fa, fb = asFloat(a), asFloat(b)
	}
	if tol == 0 || math.IsNaN(fa) || math.IsNaN(fb) || math.IsInf(fa, 0) || math.IsInf(fb, 0) {
		return false // not equal, and no tolerance makes them so
	}
	d := math.Abs(fa - fb)
	return d <= tol || d <= tol*max(math.Abs(fa), math.Abs(fb))
}

// appendKey appends an encoding of a normalized value to b that is the same
// for two values exactly when they are equal with no tolerance. Numbers are
// encoded by value, so 3 and 3.0 encode alike.
func appendKey(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, 'n')
	case bool:
		if v {
			return append(b, 't')
		}
		return append(b, 'f')
	case int64:
		return strconv.AppendInt(append(b, 'i'), v, 10)
	case uint64:
		return strconv.AppendUint(append(b, 'i'), v, 10)
	case float64:
		if i, ok := integral(v); ok {
			return appendKey(b, i)
		}
		if math.IsNaN(v) {
			return append(b, "fNaN"...)
		}
		return strconv.AppendFloat(append(b, 'f'), v, 'g', -1, 64)
	case string:
		return strconv.AppendQuote(b, v)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendKey(b, e)
		}
		return append(b, ']')
	case map[string]any:
		b = append(b, '{')
		for i, k := range slices.Sorted(maps.Keys(v)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, k)
			b = append(b, ':')
			b = appendKey(b, v[k])
		}
		return append(b, '}')
	}
	panic("validate: not a normalized value") // normalizer returns no other types
}

// rank orders the kinds of normalized values for compareValues.
func rank(v any) int {
	switch v.(type) {
	case nil:
		return 0
	case bool:
		return 1
	case int64, uint64, float64:
		return 2
	case string:
		return 3
	case []any:
		return 4
	}
	return 5
}

// compareValues orders normalized values: null, booleans, numbers (by
// value), strings, lists, records. It orders examples and windows.
func compareValues(a, b any) int {
	if c := cmp.Compare(rank(a), rank(b)); c != 0 {
		return c
	}
	switch a := a.(type) {
	case nil:
		return 0
	case bool:
		switch b := b.(bool); {
		case a == b:
			return 0
		case !a:
			return -1
		}
		return 1
	case string:
		return strings.Compare(a, b.(string))
	case []any:
		bl := b.([]any)
		for i := range min(len(a), len(bl)) {
			if c := compareValues(a[i], bl[i]); c != 0 {
				return c
			}
		}
		return cmp.Compare(len(a), len(bl))
	case map[string]any:
		return bytes.Compare(appendKey(nil, a), appendKey(nil, b))
	}
	// Numbers.
	ia, aInt := a.(int64)
	ib, bInt := b.(int64)
	if aInt && bInt {
		return cmp.Compare(ia, ib)
	}
	ua, aUint := a.(uint64)
	ub, bUint := b.(uint64)
	switch {
	case aUint && bUint:
		return cmp.Compare(ua, ub)
	case aUint && bInt:
		return 1
	case aInt && bUint:
		return -1
	}
	return cmp.Compare(asFloat(a), asFloat(b))
}

// Lookup returns the field of r named by name, which may be a dotted path
// into nested records ("profile.location") unless r has a field of that
// very name. weir cat sorts and picks columns with it too.
func Lookup(r map[string]any, name string) (any, bool) {
	if v, ok := r[name]; ok {
		return v, true
	}
	head, rest, dotted := strings.Cut(name, ".")
	if !dotted {
		return nil, false
	}
	inner, ok := r[head].(map[string]any)
	if !ok {
		return nil, false
	}
	return Lookup(inner, rest)
}

// appendText appends a normalized value as compact JSON with sorted keys;
// floats that are not finite appear as NaN, +Inf and -Inf.
func appendText(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case float64:
		if math.IsInf(v, 1) {
			return append(b, "+Inf"...)
		}
		if v == math.Trunc(v) && math.Abs(v) < 1e21 {
			return strconv.AppendFloat(b, v, 'f', -1, 64)
		}
		return strconv.AppendFloat(b, v, 'g', -1, 64)
	case string:
		return appendString(b, v)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendText(b, e)
		}
		return append(b, ']')
	case map[string]any:
		b = append(b, '{')
		for i, k := range slices.Sorted(maps.Keys(v)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendText(b, v[k])
		}
		return append(b, '}')
	}
	panic("validate: not a normalized value")
}

// appendString appends s as a JSON string, without escaping HTML.
func appendString(b []byte, s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

// text returns a normalized value as appendText writes it.
func text(v any) string { return string(appendText(nil, v)) }
