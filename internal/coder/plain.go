package coder

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"math"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/fxamacker/cbor/v2"
)

// This file is a fast path for the CBOR coder: values made only of
// integers, strings, booleans, structs and slices of those ("plain" values)
// are encoded and decoded by a plan compiled once per type, instead of by
// the general CBOR library, which spends most of its time on generality
// (a Nexmark join spent a fifth of its CPU decoding such structs).
//
// The fast path writes exactly the bytes the library writes in its core
// deterministic mode, so keys hash to the same key groups and stored state
// reads back the same whichever path wrote it. It decodes only a strict
// subset of what the library accepts: a map key it does not know (another
// spelling, a field since removed), a duplicate key, a value of another
// CBOR type, an integer out of range, invalid UTF-8, indefinite lengths. On
// any of those it hands the whole value to the library, which decodes it
// (field names matched case-insensitively, unknown fields skipped) or
// reports the error, so the fast path changes speed and nothing else.
//
// A type is planned only if each of its fields has a plain type and a tag
// the plan understands (a name, omitempty), and only if, for a probe value,
// both paths agree on the bytes and on the value decoded; anything else
// stays with the library.

// plan is how to encode and decode values of one plain type.
type plan struct {
	t    reflect.Type
	kind reflect.Kind
	size uintptr
	// fields of a struct, in encoding order (by encoded key, bytewise).
	fields []plainField
	// byName finds a struct field by its key; byName[name] indexes fields.
	byName map[string]int
	// elem is the plan of a slice's elements.
	elem *plan
}

type plainField struct {
	index     int
	offset    uintptr
	key       []byte // the CBOR encoding of the field's name
	omitEmpty bool
	p         *plan
}

// maxPlainDepth bounds the nesting of planned types.
const maxPlainDepth = 8

var (
	cborMarshaler     = reflect.TypeFor[cbor.Marshaler]()
	cborUnmarshaler   = reflect.TypeFor[cbor.Unmarshaler]()
	binaryMarshaler   = reflect.TypeFor[encoding.BinaryMarshaler]()
	binaryUnmarshaler = reflect.TypeFor[encoding.BinaryUnmarshaler]()
	textMarshaler     = reflect.TypeFor[encoding.TextMarshaler]()
	textUnmarshaler   = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// customCoded reports whether t or *t encodes itself in some way the
// library honours.
func customCoded(t reflect.Type) bool {
	for _, i := range []reflect.Type{cborMarshaler, cborUnmarshaler, binaryMarshaler, binaryUnmarshaler, textMarshaler, textUnmarshaler} {
		if t.Implements(i) || reflect.PointerTo(t).Implements(i) {
			return true
		}
	}
	return false
}

// planFor compiles the plan of t, or returns nil if t is not plain.
func planFor(t reflect.Type, depth int) *plan {
	if depth > maxPlainDepth || customCoded(t) {
		return nil
	}
	p := &plan{t: t, kind: t.Kind(), size: t.Size()}
	switch p.kind {
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return p
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return nil // byte strings: left to the library
		}
		if p.elem = planFor(t.Elem(), depth+1); p.elem == nil {
			return nil
		}
		return p
	case reflect.Struct:
		if !planFields(p, depth) {
			return nil
		}
		return p
	}
	return nil
}

// planFields fills in the fields of struct plan p, following the library's
// rules for names (the cbor tag, else the json tag, else the field's name)
// and giving up on what the plan does not do.
func planFields(p *plan, depth int) bool {
	p.byName = map[string]int{}
	var names []string
	for i := range p.t.NumField() {
		f := p.t.Field(i)
		if f.Anonymous || f.Name == "_" {
			return false
		}
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("cbor")
		if tag == "" {
			tag = f.Tag.Get("json")
		}
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		omitEmpty := false
		for opts != "" {
			var o string
			o, opts, _ = strings.Cut(opts, ",")
			if o != "omitempty" {
				return false
			}
			omitEmpty = true
		}
		fp := planFor(f.Type, depth+1)
		if fp == nil || omitEmpty && fp.kind == reflect.Struct {
			return false
		}
		if slices.Contains(names, name) || !utf8.ValidString(name) {
			return false
		}
		names = append(names, name)
		p.fields = append(p.fields, plainField{index: i, offset: f.Offset, key: appendString(nil, name), omitEmpty: omitEmpty, p: fp})
	}
	slices.SortFunc(p.fields, func(a, b plainField) int { return bytes.Compare(a.key, b.key) })
	for i, f := range p.fields {
		p.byName[string(f.key[headLen(f.key[0]):])] = i
	}
	return true
}

// headLen is the length of a CBOR head whose first byte is b.
func headLen(b byte) int {
	switch b & 0x1f {
	case 24:
		return 2
	case 25:
		return 3
	case 26:
		return 5
	case 27:
		return 9
	}
	return 1
}

// CBOR major types.
const (
	majorUint   = 0 << 5
	majorNegint = 1 << 5
	majorText   = 3 << 5
	majorArray  = 4 << 5
	majorMap    = 5 << 5
	cborFalse   = 0xf4
	cborTrue    = 0xf5
	cborNull    = 0xf6
)

// appendHead appends a CBOR head of the given major type and argument, in
// its shortest form.
func appendHead(dst []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(dst, major|byte(n))
	case n <= math.MaxUint8:
		return append(dst, major|24, byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, major|25), uint16(n))
	case n <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, major|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(dst, major|27), n)
}

func appendString(dst []byte, s string) []byte {
	return append(appendHead(dst, majorText, uint64(len(s))), s...)
}

// sliceHeader is the layout of a slice.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// eface is the layout of an interface value of an empty interface type.
// The plan reads and builds values of its types in place: none of them is
// pointer-shaped, so an interface holding one always points to it.
type eface struct {
	typ, data unsafe.Pointer
}

// readUint reads an unsigned integer of size bytes at ptr.
func readUint(ptr unsafe.Pointer, size uintptr) uint64 {
	switch size {
	case 1:
		return uint64(*(*uint8)(ptr))
	case 2:
		return uint64(*(*uint16)(ptr))
	case 4:
		return uint64(*(*uint32)(ptr))
	}
	return *(*uint64)(ptr)
}

// readInt reads a signed integer of size bytes at ptr: readUint's bits,
// sign-extended.
func readInt(ptr unsafe.Pointer, size uintptr) int64 {
	shift := 64 - 8*size
	return int64(readUint(ptr, size)<<shift) >> shift
}

// writeUint writes the low size bytes of x at ptr, and reports whether
// they hold all of x.
func writeUint(ptr unsafe.Pointer, size uintptr, x uint64) bool {
	switch size {
	case 1:
		*(*uint8)(ptr) = uint8(x)
	case 2:
		*(*uint16)(ptr) = uint16(x)
	case 4:
		*(*uint32)(ptr) = uint32(x)
	default:
		*(*uint64)(ptr) = x
	}
	return readUint(ptr, size) == x
}

// writeInt writes x as a signed integer of size bytes at ptr, and reports
// whether it fits.
func writeInt(ptr unsafe.Pointer, size uintptr, x int64) bool {
	writeUint(ptr, size, uint64(x))
	return readInt(ptr, size) == x
}

// isEmpty reports whether omitempty leaves out the value at ptr.
func (p *plan) isEmpty(ptr unsafe.Pointer) bool {
	switch p.kind {
	case reflect.Bool:
		return !*(*bool)(ptr)
	case reflect.String:
		return len(*(*string)(ptr)) == 0
	case reflect.Slice:
		return (*sliceHeader)(ptr).len == 0
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return readInt(ptr, p.size) == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return readUint(ptr, p.size) == 0
	}
	return false
}

// encode appends the encoding of the value of p's type at ptr.
func (p *plan) encode(dst []byte, ptr unsafe.Pointer) []byte {
	switch p.kind {
	case reflect.Bool:
		if *(*bool)(ptr) {
			return append(dst, cborTrue)
		}
		return append(dst, cborFalse)
	case reflect.String:
		return appendString(dst, *(*string)(ptr))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := readInt(ptr, p.size)
		if x < 0 {
			return appendHead(dst, majorNegint, uint64(^x))
		}
		return appendHead(dst, majorUint, uint64(x))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return appendHead(dst, majorUint, readUint(ptr, p.size))
	case reflect.Slice:
		h := (*sliceHeader)(ptr)
		if h.data == nil {
			return append(dst, cborNull)
		}
		dst = appendHead(dst, majorArray, uint64(h.len))
		for i := range h.len {
			dst = p.elem.encode(dst, unsafe.Add(h.data, uintptr(i)*p.elem.size))
		}
		return dst
	}
	// A struct.
	n := len(p.fields)
	for _, f := range p.fields {
		if f.omitEmpty && f.p.isEmpty(unsafe.Add(ptr, f.offset)) {
			n--
		}
	}
	dst = appendHead(dst, majorMap, uint64(n))
	for _, f := range p.fields {
		fp := unsafe.Add(ptr, f.offset)
		if f.omitEmpty && f.p.isEmpty(fp) {
			continue
		}
		dst = f.p.encode(append(dst, f.key...), fp)
	}
	return dst
}

// readHead reads a CBOR head of a definite argument: its major type, its
// argument and the bytes after it.
func readHead(b []byte) (major byte, n uint64, rest []byte, ok bool) {
	if len(b) == 0 {
		return 0, 0, nil, false
	}
	major, info := b[0]&0xe0, b[0]&0x1f
	switch {
	case info < 24:
		return major, uint64(info), b[1:], true
	case info == 24 && len(b) >= 2:
		return major, uint64(b[1]), b[2:], true
	case info == 25 && len(b) >= 3:
		return major, uint64(binary.BigEndian.Uint16(b[1:])), b[3:], true
	case info == 26 && len(b) >= 5:
		return major, uint64(binary.BigEndian.Uint32(b[1:])), b[5:], true
	case info == 27 && len(b) >= 9:
		return major, binary.BigEndian.Uint64(b[1:]), b[9:], true
	}
	return 0, 0, nil, false
}

// decode decodes a value of p's type from the start of b into ptr, which
// holds the zero value, and returns the bytes after it; ok is false if the
// value is outside what the plan decodes (what ptr then holds is garbage).
func (p *plan) decode(b []byte, ptr unsafe.Pointer) (rest []byte, ok bool) {
	if len(b) == 0 {
		return nil, false
	}
	switch p.kind {
	case reflect.Bool:
		switch b[0] {
		case cborTrue:
			*(*bool)(ptr) = true
		case cborFalse:
		default:
			return nil, false
		}
		return b[1:], true
	case reflect.Slice:
		if b[0] == cborNull {
			return b[1:], true
		}
	}
	major, n, b, ok := readHead(b)
	if !ok {
		return nil, false
	}
	switch p.kind {
	case reflect.String:
		if major != majorText || n > uint64(len(b)) || !utf8.Valid(b[:n]) {
			return nil, false
		}
		*(*string)(ptr) = string(b[:n])
		return b[n:], true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if n > math.MaxInt64 {
			return nil, false
		}
		x := int64(n)
		switch major {
		case majorUint:
		case majorNegint:
			x = ^x
		default:
			return nil, false
		}
		return b, writeInt(ptr, p.size, x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return b, major == majorUint && writeUint(ptr, p.size, n)
	case reflect.Slice:
		// Each element takes at least a byte.
		if major != majorArray || n > uint64(len(b)) {
			return nil, false
		}
		s := reflect.MakeSlice(p.t, int(n), int(n)).UnsafePointer()
		for i := range uintptr(n) {
			if b, ok = p.elem.decode(b, unsafe.Add(s, i*p.elem.size)); !ok {
				return nil, false
			}
		}
		*(*sliceHeader)(ptr) = sliceHeader{s, int(n), int(n)}
		return b, true
	case reflect.Struct:
		if major != majorMap || n > uint64(len(p.fields)) {
			return nil, false
		}
		var seen uint64 // fields decoded, when there are at most 64
		next := 0       // the field the encoder wrote next, if it wrote them all
		for range n {
			i := -1
			if next < len(p.fields) && bytes.HasPrefix(b, p.fields[next].key) {
				i, b = next, b[len(p.fields[next].key):]
			} else {
				var kn uint64
				major, kn, b, ok = readHead(b)
				if !ok || major != majorText || kn > uint64(len(b)) {
					return nil, false
				}
				var found bool
				if i, found = p.byName[string(b[:kn])]; !found {
					return nil, false
				}
				b = b[kn:]
			}
			if i >= 64 || seen&(1<<i) != 0 {
				return nil, false
			}
			seen |= 1 << i
			next = i + 1
			f := p.fields[i]
			if b, ok = f.p.decode(b, unsafe.Add(ptr, f.offset)); !ok {
				return nil, false
			}
		}
		return b, true
	}
	return nil, false
}

// plainCoder is the CBOR coder of a plain type: the plan when it can, the
// library when it cannot.
type plainCoder struct {
	cborCoder
	p   *plan
	typ unsafe.Pointer // the type word of an interface holding the type
}

func (c plainCoder) Append(dst []byte, v any) ([]byte, error) {
	e := (*eface)(unsafe.Pointer(&v))
	if e.typ != c.typ {
		return c.cborCoder.Append(dst, v)
	}
	return c.p.encode(dst, e.data), nil
}

func (c plainCoder) Decode(b []byte) (any, error) {
	ptr := reflect.New(c.t).UnsafePointer()
	if rest, ok := c.p.decode(b, ptr); ok && len(rest) == 0 {
		// The new value, boxed without a copy.
		var v any
		*(*eface)(unsafe.Pointer(&v)) = eface{c.typ, ptr}
		return v, nil
	}
	return c.cborCoder.Decode(b)
}

// newPlainCoder returns the fast coder of t, or false if t is not plain or
// the plan and the library disagree on t's probe value.
func newPlainCoder(t reflect.Type) (plainCoder, bool) {
	p := planFor(t, 0)
	if p == nil || p.kind != reflect.Struct && p.kind != reflect.Slice {
		return plainCoder{}, false
	}
	zero := reflect.Zero(t).Interface()
	c := plainCoder{cborCoder{t}, p, (*eface)(unsafe.Pointer(&zero)).typ}
	for _, v := range []any{zero, p.probe(0).Interface()} {
		want, err := encMode.Marshal(v)
		if err != nil {
			return plainCoder{}, false
		}
		if got, err := c.Append(nil, v); err != nil || !bytes.Equal(got, want) {
			return plainCoder{}, false
		}
		if _, ok := p.decode(want, reflect.New(t).UnsafePointer()); !ok {
			return plainCoder{}, false
		}
		if got, err := c.Decode(want); err != nil || !reflect.DeepEqual(got, v) {
			return plainCoder{}, false
		}
	}
	return c, true
}

// probe returns a value of p's type with every field the plan encodes
// set, and set differently: small and large, positive and negative
// integers, strings of several lengths, slices of two elements.
func (p *plan) probe(seed int) reflect.Value {
	v := reflect.New(p.t).Elem()
	switch p.kind {
	case reflect.Bool:
		v.SetBool(seed%2 == 0)
	case reflect.String:
		v.SetString(strings.Repeat("ab", seed%20+1))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := int64(seed*37+1) << (seed % 3 * 8)
		if seed%2 == 1 {
			x = -x
		}
		if v.OverflowInt(x) {
			x = int64(seed%100) - 50
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		x := uint64(seed*37+1) << (seed % 3 * 8)
		if v.OverflowUint(x) {
			x = uint64(seed % 200)
		}
		v.SetUint(x)
	case reflect.Slice:
		s := reflect.MakeSlice(p.t, 2, 2)
		s.Index(0).Set(p.elem.probe(seed + 1))
		s.Index(1).Set(p.elem.probe(seed + 2))
		v.Set(s)
	case reflect.Struct:
		for i, f := range p.fields {
			v.Field(f.index).Set(f.p.probe(seed + i + 1))
		}
	}
	return v
}
