// Package coder encodes element values, keys and state values of any Go type
// to bytes and back, for the state backend and the shuffle.
//
// Basic types have hand-written fixed encodings; everything else goes through
// CBOR (github.com/fxamacker/cbor/v2), chosen because it round-trips Go
// values faithfully (integers stay integers, byte slices stay bytes, structs
// keep their fields by name), is compact and fast, and has a deterministic
// "core" mode: keys must encode the same way every time, or the same key would
// land in two key groups. Structs and slices made of integers, strings and
// booleans take a faster path that writes the same bytes (plain.go).
//
// State values in the backend carry a header ahead of their encoding: a
// format byte and a schema version (header.go).
//
// Dependency direction: coder imports only the standard library and CBOR;
// sdk, runner and state users import it.
package coder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// ErrDecode is wrapped by decoding errors.
var ErrDecode = errors.New("coder: cannot decode")

// Coder encodes and decodes values of one Go type. Implementations are safe
// for concurrent use.
type Coder interface {
	// Append appends the encoding of v, which must hold the coder's type.
	Append(dst []byte, v any) ([]byte, error)
	// Decode decodes a value of the coder's type.
	Decode(b []byte) (any, error)
	// Type is the Go type the coder handles.
	Type() reflect.Type
}

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	encMode, err = cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{MaxArrayElements: math.MaxInt32, MaxMapPairs: math.MaxInt32}.DecMode()
	if err != nil {
		panic(err)
	}
}

// For returns the coder for values of type t.
func For(t reflect.Type) Coder {
	switch t.Kind() {
	case reflect.Int64, reflect.Int, reflect.Int32, reflect.Int16, reflect.Int8:
		return intCoder{t}
	case reflect.Uint64, reflect.Uint, reflect.Uint32, reflect.Uint16, reflect.Uint8:
		return uintCoder{t}
	case reflect.String:
		return stringCoder{t}
	case reflect.Float64, reflect.Float32:
		return floatCoder{t}
	case reflect.Bool:
		return boolCoder{t}
	}
	if c, ok := plainCoders.Load(t); ok {
		return c.(Coder)
	}
	var c Coder = cborCoder{t}
	if pc, ok := newPlainCoder(t); ok {
		c = pc
	}
	plainCoders.Store(t, c)
	return c
}

// plainCoders caches For's CBOR coders by type: planning one encodes and
// decodes a probe value.
var plainCoders sync.Map // reflect.Type -> Coder

// Of returns the coder for values of type T.
func Of[T any]() Coder { return For(reflect.TypeFor[T]()) }

// AppendKey appends c's encoding of k, c being the coder of K, without
// boxing k when K is int64, int or string (the common keys): the shuffle
// encodes a key per element.
func AppendKey[K any](c Coder, dst []byte, k K) ([]byte, error) {
	switch k := any(k).(type) {
	case int64:
		return appendInt(dst, k), nil
	case int:
		return appendInt(dst, int64(k)), nil
	case string:
		return append(dst, k...), nil
	}
	return c.Append(dst, k)
}

// appendInt is intCoder's encoding: sign-flipped big endian, so encoded
// keys sort numerically.
func appendInt(dst []byte, x int64) []byte {
	return binary.BigEndian.AppendUint64(dst, uint64(x)^(1<<63))
}

type intCoder struct{ t reflect.Type }

func (c intCoder) Type() reflect.Type { return c.t }
func (c intCoder) Append(dst []byte, v any) ([]byte, error) {
	var x int64
	switch v := v.(type) {
	case int64:
		x = v
	case int:
		x = int64(v)
	default:
		x = reflect.ValueOf(v).Int()
	}
	return appendInt(dst, x), nil
}
func (c intCoder) Decode(b []byte) (any, error) {
	if len(b) != 8 {
		return nil, fmt.Errorf("%w: %s needs 8 bytes, got %d", ErrDecode, c.t, len(b))
	}
	x := int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
	switch c.t.Kind() {
	case reflect.Int64:
		if c.t == reflect.TypeFor[int64]() {
			return x, nil
		}
	case reflect.Int:
		if c.t == reflect.TypeFor[int]() {
			return int(x), nil
		}
	}
	return reflect.ValueOf(x).Convert(c.t).Interface(), nil
}

type uintCoder struct{ t reflect.Type }

func (c uintCoder) Type() reflect.Type { return c.t }
func (c uintCoder) Append(dst []byte, v any) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, reflect.ValueOf(v).Uint()), nil
}
func (c uintCoder) Decode(b []byte) (any, error) {
	if len(b) != 8 {
		return nil, fmt.Errorf("%w: %s needs 8 bytes, got %d", ErrDecode, c.t, len(b))
	}
	return reflect.ValueOf(binary.BigEndian.Uint64(b)).Convert(c.t).Interface(), nil
}

type stringCoder struct{ t reflect.Type }

func (c stringCoder) Type() reflect.Type { return c.t }
func (c stringCoder) Append(dst []byte, v any) ([]byte, error) {
	if s, ok := v.(string); ok {
		return append(dst, s...), nil
	}
	return append(dst, reflect.ValueOf(v).String()...), nil
}
func (c stringCoder) Decode(b []byte) (any, error) {
	if c.t == reflect.TypeFor[string]() {
		return string(b), nil
	}
	return reflect.ValueOf(string(b)).Convert(c.t).Interface(), nil
}

type floatCoder struct{ t reflect.Type }

func (c floatCoder) Type() reflect.Type { return c.t }
func (c floatCoder) Append(dst []byte, v any) ([]byte, error) {
	return binary.BigEndian.AppendUint64(dst, math.Float64bits(reflect.ValueOf(v).Float())), nil
}
func (c floatCoder) Decode(b []byte) (any, error) {
	if len(b) != 8 {
		return nil, fmt.Errorf("%w: %s needs 8 bytes, got %d", ErrDecode, c.t, len(b))
	}
	return reflect.ValueOf(math.Float64frombits(binary.BigEndian.Uint64(b))).Convert(c.t).Interface(), nil
}

type boolCoder struct{ t reflect.Type }

func (c boolCoder) Type() reflect.Type { return c.t }
func (c boolCoder) Append(dst []byte, v any) ([]byte, error) {
	if reflect.ValueOf(v).Bool() {
		return append(dst, 1), nil
	}
	return append(dst, 0), nil
}
func (c boolCoder) Decode(b []byte) (any, error) {
	if len(b) != 1 {
		return nil, fmt.Errorf("%w: %s needs 1 byte, got %d", ErrDecode, c.t, len(b))
	}
	return reflect.ValueOf(b[0] == 1).Convert(c.t).Interface(), nil
}

type cborCoder struct{ t reflect.Type }

func (c cborCoder) Type() reflect.Type { return c.t }
func (c cborCoder) Append(dst []byte, v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return dst, fmt.Errorf("coder: cannot encode %s: %w", c.t, err)
	}
	return append(dst, b...), nil
}
func (c cborCoder) Decode(b []byte) (any, error) {
	p := reflect.New(c.t)
	if err := decMode.Unmarshal(b, p.Interface()); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrDecode, c.t, err)
	}
	return p.Elem().Interface(), nil
}
