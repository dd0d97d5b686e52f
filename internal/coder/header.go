package coder

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Every user state value in the backend starts with a header that says how
// it was written:
//
//	format byte | schema version (uvarint) | the value's encoding
//
// The format byte names the layout of the rest, so that the encoding itself
// can change later; FormatV1 is the only one so far. The schema version is
// the one the state cell declared when it wrote the value (1 and up), so that
// a reader can tell an older value (readable by field name, or through an
// upgrade function) from a newer one it must not guess at. For versions
// below 128 the header is two bytes.

// FormatV1 is the format byte of a header followed by a schema version and
// the value's encoding by its Coder.
const FormatV1 byte = 0x01

// ErrHeader is wrapped by the errors of SplitHeader: a value with no header,
// a header of an unknown format, or a malformed schema version.
var ErrHeader = errors.New("coder: bad state value header")

// AppendHeader appends the header of a value of the given schema version.
func AppendHeader(dst []byte, version uint64) []byte {
	return binary.AppendUvarint(append(dst, FormatV1), version)
}

// SplitHeader returns the schema version a value was written with and the
// value's encoding after the header. Versions start at 1; the uvarint must
// be minimal, so a value has exactly one header.
func SplitHeader(b []byte) (version uint64, body []byte, err error) {
	if len(b) >= 2 && b[0] == FormatV1 && b[1] != 0 && b[1] < 0x80 {
		return uint64(b[1]), b[2:], nil // the common case: a version below 128
	}
	switch {
	case len(b) == 0:
		return 0, nil, fmt.Errorf("%w: empty value", ErrHeader)
	case b[0] != FormatV1:
		return 0, nil, fmt.Errorf("%w: unknown format 0x%02x (written by another version of Weir, or before state values had a header)", ErrHeader, b[0])
	}
	v, n := binary.Uvarint(b[1:])
	var minimal [binary.MaxVarintLen64]byte
	switch {
	case n <= 0:
		return 0, nil, fmt.Errorf("%w: truncated schema version", ErrHeader)
	case v == 0:
		return 0, nil, fmt.Errorf("%w: schema version 0", ErrHeader)
	case n != binary.PutUvarint(minimal[:], v):
		return 0, nil, fmt.Errorf("%w: schema version %d not minimally encoded", ErrHeader, v)
	}
	return v, b[1+n:], nil
}
