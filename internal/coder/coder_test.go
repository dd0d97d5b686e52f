package coder

import (
	"bytes"
	"reflect"
	"testing"
)

type point struct {
	X, Y int64
	Tags map[string]int
	Name string
}

func TestRoundTrip(t *testing.T) {
	type myInt int32
	for _, v := range []any{
		int64(-5), int(7), myInt(-3), uint16(9), "hé", 2.5, float32(1.5), true,
		point{X: 1, Y: -2, Tags: map[string]int{"b": 2, "a": 1}, Name: "p"},
		[]string{"x", "y"}, map[string]int64{"k": 1}, [2]byte{1, 2},
	} {
		c := For(reflect.TypeOf(v))
		b, err := c.Append(nil, v)
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		got, err := c.Decode(b)
		if err != nil {
			t.Fatalf("%T: %v", v, err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("%T: got %#v, want %#v", v, got, v)
		}
	}
}

// Keys must encode the same way every time (or one key would land in two key
// groups), and integers must sort numerically (map state ranges in key order).
func TestDeterministicAndOrdered(t *testing.T) {
	c := Of[point]()
	p := point{Tags: map[string]int{"z": 1, "a": 2, "m": 3, "b": 4, "q": 5}}
	first, _ := c.Append(nil, p)
	for i := 0; i < 50; i++ {
		again, _ := c.Append(nil, p)
		if !bytes.Equal(first, again) {
			t.Fatal("a map-holding key encoded two ways")
		}
	}
	ints := Of[int64]()
	prev, _ := ints.Append(nil, int64(-1<<62))
	for _, v := range []int64{-1000, -1, 0, 1, 1000, 1 << 62} {
		b, _ := ints.Append(nil, v)
		if bytes.Compare(prev, b) >= 0 {
			t.Errorf("encoding of %d does not sort after its predecessor", v)
		}
		prev = b
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := Of[int64]().Decode([]byte{1, 2}); err == nil {
		t.Error("short int decoded")
	}
	if _, err := Of[point]().Decode([]byte{0xff, 0x00}); err == nil {
		t.Error("garbage decoded as a struct")
	}
}

// TestAppendKeyMatchesAppend: the shuffle's boxing-free key encoding is the
// coder's, or keys would land in other key groups than their state.
func TestAppendKeyMatchesAppend(t *testing.T) {
	type userID string
	type pair struct{ A, B int64 }
	check := func(name string, got, want []byte, err1, err2 error) {
		t.Helper()
		if err1 != nil || err2 != nil || string(got) != string(want) {
			t.Errorf("%s: AppendKey %x (%v), Append %x (%v)", name, got, err1, want, err2)
		}
	}
	for _, k := range []int64{0, -1, 1, 1 << 40, -1 << 62} {
		got, err1 := AppendKey(Of[int64](), []byte("p"), k)
		want, err2 := Of[int64]().Append([]byte("p"), k)
		check("int64", got, want, err1, err2)
		got, err1 = AppendKey(Of[int](), nil, int(k))
		want, err2 = Of[int]().Append(nil, int(k))
		check("int", got, want, err1, err2)
	}
	got, err1 := AppendKey(Of[string](), nil, "viewer-7")
	want, err2 := Of[string]().Append(nil, "viewer-7")
	check("string", got, want, err1, err2)
	got, err1 = AppendKey(Of[userID](), nil, userID("u1"))
	want, err2 = Of[userID]().Append(nil, userID("u1"))
	check("named string", got, want, err1, err2)
	got, err1 = AppendKey(Of[pair](), nil, pair{1, 2})
	want, err2 = Of[pair]().Append(nil, pair{1, 2})
	check("struct", got, want, err1, err2)
}
