package state

import (
	"bytes"
	"cmp"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/weir-dev/weir/windowing"
)

// TestKeyGroupOfStable pins key groups: they decide where state lives, so a
// change of hash or of its reduction must not go unnoticed.
func TestKeyGroupOfStable(t *testing.T) {
	tests := []struct {
		key    string
		groups int
		want   KeyGroup
	}{
		// xxhash64("") = 0xef46db3751d8e999, a published test vector.
		{"", 128, 25},
		{"", 7, 6},
		{"", 1000, 921},
		// xxhash64("a") = 0xd24ec4f1a98c6e5b.
		{"a", 128, 91},
		{"a", 1000, 955},
		// xxhash64("abc") = 0x44bc2cf5ad770999.
		{"abc", 128, 25},
		{"abc", 7, 0},
		{"user-42", 128, 1},
		{"user-42", 7, 5},
		{"\x00\x00\x00\x01", 128, 21},
		{"\x00\x00\x00\x01", 1000, 373},
		{"anything", 1, 0},
	}
	for _, tc := range tests {
		if got := KeyGroupOf([]byte(tc.key), tc.groups); got != tc.want {
			t.Errorf("KeyGroupOf(%q, %d) = %d, want %d", tc.key, tc.groups, got, tc.want)
		}
	}
}

// TestGroupRangeWorkerOf checks that GroupRange splits the key groups into
// contiguous, even ranges and that WorkerOf finds the range of every group.
func TestGroupRangeWorkerOf(t *testing.T) {
	for _, groups := range []int{1, 2, 3, 7, 100, DefaultKeyGroups, 1000, 4096} {
		for n := 1; n <= 128; n++ {
			prevHi := KeyGroup(0)
			minSize, maxSize := groups, 0
			for w := range n {
				lo, hi := GroupRange(w, n, groups)
				if lo != prevHi || hi < lo {
					t.Fatalf("groups %d, n %d: worker %d owns [%d, %d), previous ends at %d", groups, n, w, lo, hi, prevHi)
				}
				prevHi = hi
				minSize, maxSize = min(minSize, int(hi-lo)), max(maxSize, int(hi-lo))
			}
			if int(prevHi) != groups {
				t.Fatalf("groups %d, n %d: ranges end at %d", groups, n, prevHi)
			}
			if maxSize-minSize > 1 {
				t.Fatalf("groups %d, n %d: range sizes from %d to %d", groups, n, minSize, maxSize)
			}
			for kg := range groups {
				w := WorkerOf(KeyGroup(kg), n, groups)
				if w < 0 || w >= n {
					t.Fatalf("groups %d, n %d: WorkerOf(%d) = %d", groups, n, kg, w)
				}
				if lo, hi := GroupRange(w, n, groups); KeyGroup(kg) < lo || KeyGroup(kg) >= hi {
					t.Fatalf("groups %d, n %d: WorkerOf(%d) = %d, which owns [%d, %d)", groups, n, kg, w, lo, hi)
				}
			}
		}
	}
}

func TestPrefixEnd(t *testing.T) {
	tests := []struct {
		prefix, want []byte // want nil: no end
	}{
		{nil, nil},
		{[]byte{}, nil},
		{[]byte("a"), []byte("b")},
		{[]byte("ab"), []byte("ac")},
		{[]byte{0}, []byte{1}},
		{[]byte{'a', 0xff}, []byte("b")},
		{[]byte{'a', 0xff, 0xff}, []byte("b")},
		{[]byte{'a', 0, 0xff}, []byte{'a', 1}},
		{[]byte{0xfe, 0xff}, []byte{0xff}},
		{[]byte{0xff}, nil},
		{[]byte{0xff, 0xff, 0xff}, nil},
	}
	for _, tc := range tests {
		in := bytes.Clone(tc.prefix)
		got := PrefixEnd(in)
		if !bytes.Equal(got, tc.want) || (got == nil) != (tc.want == nil) {
			t.Errorf("PrefixEnd(%x) = %x, want %x", tc.prefix, got, tc.want)
		}
		if !bytes.Equal(in, tc.prefix) {
			t.Errorf("PrefixEnd(%x) modified its argument", tc.prefix)
		}
		// Every extension of the prefix sorts before the end, and the end
		// does not have the prefix.
		if got != nil {
			for _, ext := range [][]byte{nil, {0}, {0xff}, {0xff, 0xff, 0xff}} {
				if k := append(bytes.Clone(tc.prefix), ext...); bytes.Compare(k, got) >= 0 {
					t.Errorf("PrefixEnd(%x) = %x is not after %x", tc.prefix, got, k)
				}
			}
			if bytes.HasPrefix(got, tc.prefix) {
				t.Errorf("PrefixEnd(%x) = %x has the prefix", tc.prefix, got)
			}
		}
	}
}

// TestTimeEncodingOrder checks that encoded times sort as the times do,
// negative ones included, so that timer keys iterate in time order.
func TestTimeEncodingOrder(t *testing.T) {
	times := []windowing.Time{
		math.MinInt64, math.MinInt64 + 1, windowing.MinTime - 1, windowing.MinTime,
		-1 << 40, -1001, -1000, -256, -255, -2, -1, 0, 1, 2, 255, 256, 1000,
		1 << 40, windowing.EndOfGlobalWindow, windowing.MaxTime, windowing.MaxTime + 1,
		math.MaxInt64 - 1, math.MaxInt64,
	}
	if !slices.IsSorted(times) {
		t.Fatalf("test times are not sorted")
	}
	for _, a := range times {
		ea := appendTime(nil, a)
		if got := readTime(ea); got != a {
			t.Errorf("readTime(appendTime(%d)) = %d", a, got)
		}
		for _, b := range times {
			if got, want := bytes.Compare(ea, appendTime(nil, b)), cmp.Compare(a, b); got != want {
				t.Errorf("encodings of %d and %d compare %d, the times %d", a, b, got, want)
			}
		}
	}
	// Windows sort by start, then end.
	ws := []windowing.Window{{Start: -10, End: -5}, {Start: -10, End: 0}, {Start: 0, End: 10}, {Start: 0, End: 11}, {Start: 10, End: 20}}
	for i := 1; i < len(ws); i++ {
		if bytes.Compare(appendWindow(nil, ws[i-1]), appendWindow(nil, ws[i])) >= 0 {
			t.Errorf("window %v does not sort before %v", ws[i-1], ws[i])
		}
	}
}

func TestCellRoundTrip(t *testing.T) {
	tests := []struct {
		c   Cell
		sub []byte
	}{
		{Cell{Op: 0, KG: 0, Key: []byte{}, Window: windowing.GlobalWindow, Name: ""}, nil},
		{Cell{Op: 1, KG: 127, Key: []byte("user-42"), Window: windowing.Window{Start: 0, End: 60000}, Name: "count"}, nil},
		{Cell{Op: math.MaxUint32, KG: math.MaxUint16, Key: []byte{0, 0xff}, Window: windowing.Window{Start: -5, End: -1}, Name: "bag"}, []byte("entry")},
		{Cell{Op: 7, KG: 3, Key: bytes.Repeat([]byte("k"), 1000), Window: windowing.Window{Start: windowing.MinTime, End: 0}, Name: "m"}, []byte{0}},
	}
	for _, tc := range tests {
		enc := append(AppendCell(nil, tc.c), tc.sub...)
		c, sub, err := DecodeCell(enc)
		if err != nil {
			t.Fatalf("DecodeCell(AppendCell(%+v)): %v", tc.c, err)
		}
		if c.Op != tc.c.Op || c.KG != tc.c.KG || !bytes.Equal(c.Key, tc.c.Key) || c.Window != tc.c.Window ||
			c.Name != tc.c.Name || !bytes.Equal(sub, tc.sub) {
			t.Errorf("round trip of %+v sub %q gave %+v sub %q", tc.c, tc.sub, c, sub)
		}
		// The prefixes are prefixes of the cell key.
		if p := AppendWindowPrefix(nil, tc.c.Op, tc.c.KG, tc.c.Key, tc.c.Window); !bytes.HasPrefix(enc, p) {
			t.Errorf("window prefix %x is not a prefix of %x", p, enc)
		}
		if p := AppendOperatorPrefix(nil, tc.c.Op, tc.c.KG); !bytes.HasPrefix(enc, p) {
			t.Errorf("operator prefix %x is not a prefix of %x", p, enc)
		}
	}
}

func TestDecodeCellErrors(t *testing.T) {
	good := AppendCell(nil, Cell{Op: 1, KG: 2, Key: []byte("key"), Window: windowing.Window{Start: 0, End: 10}, Name: "name"})
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"tag only", []byte{tagCell}},
		{"wrong tag", append([]byte{tagTimer}, good[1:]...)},
		{"short header", good[:10]},
		{"truncated key", good[:11+2]},
		{"truncated window", good[:11+3+15]},
		{"truncated name length", good[:11+3+16+1]},
		{"truncated name", good[:len(good)-1]},
		{"huge key length", append(append([]byte{tagCell, 0, 0, 0, 1, 0, 2}, 0xff, 0xff, 0xff, 0xff), good[11:]...)},
	}
	for _, tc := range tests {
		if _, _, err := DecodeCell(tc.b); !errors.Is(err, ErrCorruptKey) {
			t.Errorf("%s: DecodeCell(%x) = %v, want ErrCorruptKey", tc.name, tc.b, err)
		}
	}
}

func TestTimerKeyRoundTrip(t *testing.T) {
	timers := []Timer{
		{Op: 1, KG: 2, Domain: EventTime, Time: -5, Key: []byte("k"), Window: windowing.Window{Start: 0, End: 10}, Name: "t"},
		{Op: math.MaxUint32, KG: math.MaxUint16, Domain: ProcessingTime, Time: windowing.MaxTime, Key: []byte{}, Window: windowing.GlobalWindow, Name: ""},
	}
	for _, tm := range timers {
		got, err := decodeTimerKey(appendTimerKey(nil, tm))
		if err != nil {
			t.Fatal(err)
		}
		if got.Op != tm.Op || got.KG != tm.KG || got.Domain != tm.Domain || got.Time != tm.Time ||
			!bytes.Equal(got.Key, tm.Key) || got.Window != tm.Window || got.Name != tm.Name {
			t.Errorf("round trip of %+v gave %+v", tm, got)
		}
	}
	if _, err := decodeTimerKey([]byte{tagTimer, 1, 2}); !errors.Is(err, ErrCorruptKey) {
		t.Errorf("decodeTimerKey(short) = %v, want ErrCorruptKey", err)
	}
}

// FuzzDecodeCell checks that DecodeCell never panics, that it fails only
// with ErrCorruptKey, and that whatever it decodes encodes back to the same
// bytes (the encoding is a bijection).
func FuzzDecodeCell(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{tagCell})
	f.Add(AppendCell(nil, Cell{Op: 1, KG: 2, Key: []byte("key"), Window: windowing.Window{Start: 0, End: 10}, Name: "name"}))
	f.Add(append(AppendCell(nil, Cell{Op: 9, Key: []byte{}, Window: windowing.GlobalWindow, Name: "bag"}), "sub"...))
	f.Add([]byte{tagCell, 0, 0, 0, 1, 0, 2, 0xff, 0xff, 0xff, 0xff, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, sub, err := DecodeCell(b)
		if err != nil {
			if !errors.Is(err, ErrCorruptKey) {
				t.Fatalf("DecodeCell(%x) = %v, not ErrCorruptKey", b, err)
			}
			return
		}
		if enc := append(AppendCell(nil, c), sub...); !bytes.Equal(enc, b) {
			t.Fatalf("DecodeCell(%x) = %+v sub %x, which encodes to %x", b, c, sub, enc)
		}
	})
}

// FuzzCellRoundTrip checks that AppendCell then DecodeCell gives the cell
// back.
func FuzzCellRoundTrip(f *testing.F) {
	f.Add(uint32(1), uint16(2), []byte("key"), int64(0), int64(10), "name", []byte(nil))
	f.Add(uint32(math.MaxUint32), uint16(math.MaxUint16), []byte{}, int64(math.MinInt64), int64(math.MaxInt64), "", []byte{0xff})
	f.Fuzz(func(t *testing.T, op uint32, kg uint16, key []byte, start, end int64, name string, sub []byte) {
		if len(name) > math.MaxUint16 {
			t.Skip("names are limited to 64 KiB")
		}
		c := Cell{Op: op, KG: KeyGroup(kg), Key: key, Window: windowing.Window{Start: windowing.Time(start), End: windowing.Time(end)}, Name: name}
		got, gotSub, err := DecodeCell(append(AppendCell(nil, c), sub...))
		if err != nil {
			t.Fatalf("DecodeCell(AppendCell(%+v)): %v", c, err)
		}
		if got.Op != c.Op || got.KG != c.KG || !bytes.Equal(got.Key, c.Key) || got.Window != c.Window ||
			got.Name != c.Name || !bytes.Equal(gotSub, sub) {
			t.Fatalf("round trip of %+v sub %x gave %+v sub %x", c, sub, got, gotSub)
		}
	})
}
