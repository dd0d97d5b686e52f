package state_test

import (
	"encoding/binary"
	"testing"

	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// BenchmarkBackend measures the hot paths of keyed state on both backends,
// with realistic cell keys: Set of new cells, Get of existing ones, and a
// scan of one element key's entries (as reading a bag does).
func BenchmarkBackend(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) state.Backend
	}{
		{"pebble", func(b *testing.B) state.Backend {
			p, err := state.OpenPebble(b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			return p
		}},
		{"mem", func(b *testing.B) state.Backend { return state.NewMem() }},
	}
	const (
		op         = 1
		keys       = 1000 // element keys
		perKey     = 100  // bag entries per element key
		valueBytes = 64
	)
	w := windowing.Window{Start: 0, End: 60_000}
	// Keys are built without fmt, so that the benchmark measures the
	// backend.
	var elem []byte
	cell := func(i int) state.Cell {
		elem = binary.BigEndian.AppendUint64(append(elem[:0], "user-"...), uint64(i))
		return state.Cell{Op: op, KG: state.KeyGroupOf(elem, state.DefaultKeyGroups), Key: elem, Window: w, Name: "bag"}
	}
	entry := func(dst []byte, i, j int) []byte {
		return binary.BigEndian.AppendUint32(state.AppendCell(dst, cell(i)), uint32(j))
	}
	value := make([]byte, valueBytes)
	load := func(b *testing.B, be state.Backend) {
		var k []byte
		for i := range keys {
			for j := range perKey {
				k = entry(k[:0], i, j)
				if err := be.Set(k, value); err != nil {
					b.Fatal(err)
				}
			}
		}
	}

	for _, bk := range backends {
		b.Run(bk.name, func(b *testing.B) {
			b.Run("Set", func(b *testing.B) {
				be := bk.open(b)
				defer be.Close()
				k := make([]byte, 0, 64)
				b.ReportAllocs()
				b.ResetTimer()
				for n := range b.N {
					k = entry(k[:0], n/perKey%100_000, n%perKey)
					if err := be.Set(k, value); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("Get", func(b *testing.B) {
				be := bk.open(b)
				defer be.Close()
				load(b, be)
				k := make([]byte, 0, 64)
				b.ReportAllocs()
				b.ResetTimer()
				for n := range b.N {
					k = entry(k[:0], n*7919%keys, n%perKey)
					if _, ok, err := be.Get(k); err != nil || !ok {
						b.Fatalf("Get(%x) = %v, %v", k, ok, err)
					}
				}
			})
			b.Run("IterPrefix", func(b *testing.B) {
				be := bk.open(b)
				defer be.Close()
				load(b, be)
				b.ReportAllocs()
				b.ResetTimer()
				var prefix []byte
				for n := range b.N {
					prefix = state.AppendCell(prefix[:0], cell(n*7919%keys))
					it, err := be.NewIter(prefix, state.PrefixEnd(prefix))
					if err != nil {
						b.Fatal(err)
					}
					count := 0
					for ok := it.First(); ok; ok = it.Next() {
						count += len(it.Value())
					}
					if err := it.Close(); err != nil {
						b.Fatal(err)
					}
					if count != perKey*valueBytes {
						b.Fatalf("scanned %d bytes, want %d", count, perKey*valueBytes)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perKey), "ns/entry")
			})
		})
	}
}
