package coder

import (
	"bytes"
	"errors"
	"testing"
)

func TestHeader(t *testing.T) {
	for _, c := range []struct {
		version uint64
		header  []byte
	}{
		{1, []byte{FormatV1, 1}},
		{2, []byte{FormatV1, 2}},
		{127, []byte{FormatV1, 0x7f}},
		{128, []byte{FormatV1, 0x80, 0x01}},
		{300, []byte{FormatV1, 0xac, 0x02}},
		{1<<64 - 1, []byte{FormatV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
	} {
		body := []byte("value")
		b := append(AppendHeader(nil, c.version), body...)
		if !bytes.Equal(b[:len(b)-len(body)], c.header) {
			t.Errorf("version %d: header % x, want % x", c.version, b[:len(b)-len(body)], c.header)
		}
		v, rest, err := SplitHeader(b)
		if err != nil || v != c.version || !bytes.Equal(rest, body) {
			t.Errorf("version %d: SplitHeader = %d, %q, %v", c.version, v, rest, err)
		}
		// A header alone: the value's encoding may be empty (an empty string).
		if v, rest, err := SplitHeader(c.header); err != nil || v != c.version || len(rest) != 0 {
			t.Errorf("version %d, empty body: SplitHeader = %d, %q, %v", c.version, v, rest, err)
		}
	}
}

func TestHeaderErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "empty value"},
		{"format only", []byte{FormatV1}, "truncated schema version"},
		{"unknown format", []byte{0x02, 1, 'x'}, "unknown format 0x02"},
		// Values stored before headers: a CBOR struct, a fixed-width int.
		{"headerless struct", []byte{0xa1, 0x63, 'S', 'u', 'm', 0x05}, "unknown format 0xa1"},
		{"headerless int", []byte{0x80, 0, 0, 0, 0, 0, 0, 5}, "unknown format 0x80"},
		{"version 0", []byte{FormatV1, 0, 'x'}, "schema version 0"},
		{"truncated version", []byte{FormatV1, 0x80}, "truncated schema version"},
		{"overlong version", []byte{FormatV1, 0x81, 0x00}, "not minimally encoded"},
		{"version over 64 bits", []byte{FormatV1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, "truncated schema version"},
	} {
		_, _, err := SplitHeader(c.b)
		if !errors.Is(err, ErrHeader) || !bytes.Contains([]byte(err.Error()), []byte(c.want)) {
			t.Errorf("%s: got %v, want an ErrHeader saying %q", c.name, err, c.want)
		}
	}
}

// FuzzSplitHeader: any bytes either split into a header that AppendHeader
// writes identically, or fail with ErrHeader; nothing panics.
func FuzzSplitHeader(f *testing.F) {
	f.Add([]byte{FormatV1, 1, 'x'})
	f.Add([]byte{FormatV1, 0x80, 0x01})
	f.Add([]byte{0xa1, 0x61, 'a', 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, body, err := SplitHeader(b)
		if err != nil {
			if !errors.Is(err, ErrHeader) {
				t.Fatalf("% x: error %v is not an ErrHeader", b, err)
			}
			return
		}
		if again := append(AppendHeader(nil, v), body...); !bytes.Equal(again, b) {
			t.Fatalf("% x: split into version %d and % x, which join as % x", b, v, body, again)
		}
	})
}

func BenchmarkHeader(b *testing.B) {
	buf := make([]byte, 0, 64)
	body := []byte("0123456789abcdef")
	for b.Loop() {
		buf = append(AppendHeader(buf[:0], 3), body...)
		if _, _, err := SplitHeader(buf); err != nil {
			b.Fatal(err)
		}
	}
}
