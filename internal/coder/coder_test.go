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
