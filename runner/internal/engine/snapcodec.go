package engine

import (
	"encoding/binary"

	"github.com/weir-dev/weir/internal/coder"
	"github.com/weir-dev/weir/windowing"
)

// The engine's own snapshots (a side-input ParDo's buffers, the copies of
// pending windows) are written with these helpers and read with
// snapReader: times as 8 bytes, blobs and counts with a uvarint length.

func appendTime(b []byte, t windowing.Time) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t))
}

func appendBlob(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// snapReader decodes a snapshot. The first read that runs short sets err
// to short; reads after it return zero values.
type snapReader struct {
	b     []byte
	err   error
	short error
}

func (r *snapReader) fail() {
	if r.err == nil {
		r.err = r.short
	}
	r.b = nil
}

func (r *snapReader) time() windowing.Time {
	if r.err != nil || len(r.b) < 8 {
		r.fail()
		return 0
	}
	t := windowing.Time(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	return t
}

func (r *snapReader) u32() uint32 {
	if r.err != nil || len(r.b) < 4 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint32(r.b)
	r.b = r.b[4:]
	return v
}

func (r *snapReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(len(r.b))+1<<20 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) byte1() byte {
	if r.err != nil || len(r.b) < 1 {
		r.fail()
		return 0
	}
	x := r.b[0]
	r.b = r.b[1:]
	return x
}

// blob returns a blob written by appendBlob; it aliases the snapshot.
func (r *snapReader) blob() []byte {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// value decodes a blob with c.
func (r *snapReader) value(c coder.Coder) any {
	b := r.blob()
	if r.err != nil {
		return nil
	}
	v, err := c.Decode(b)
	if err != nil && r.err == nil {
		r.err = err
	}
	return v
}
