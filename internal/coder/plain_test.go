package coder

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

type cents int64

type plainPerson struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Extra string `json:"extra,omitempty"`
	Price cents  `cbor:"p"`
	Small int8
	Tiny  uint8 `json:"tiny,omitempty"`
	U     uint64
	U16   uint16
	I32   int32
	OK    bool `json:"ok"`
	Skip  int  `json:"-"`
	quiet int
	Tags  []string `json:"tags,omitempty"`
	Long  string   `json:"a_field_name_longer_than_twenty_three_bytes"`
}

type plainTagged struct {
	Tag int
	A   plainPerson
	B   struct {
		Seller int64 `json:"seller"`
		Bids   []int64
	}
	Many []plainPerson
}

type plainKV[K, V any] struct {
	Key   K
	Value V
}

// planned are types the fast path must take.
var planned = []reflect.Type{
	reflect.TypeFor[plainPerson](),
	reflect.TypeFor[plainTagged](),
	reflect.TypeFor[plainKV[int64, plainTagged]](),
	reflect.TypeFor[plainKV[string, []int64]](),
	reflect.TypeFor[[]int64](),
	reflect.TypeFor[[]plainPerson](),
	reflect.TypeFor[struct{}](),
}

// extremes are integers at the edges of CBOR's head sizes.
var extremes = []int64{0, 1, 23, 24, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, math.MaxInt64, -1, -24, -25, -256, -257, -65536, -65537, -1 << 32, -1<<32 - 1, math.MinInt64}

// randomValue returns a random value of plain type t.
func randomValue(t reflect.Type, r *rand.Rand, depth int) reflect.Value {
	v := reflect.New(t).Elem()
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.String:
		var b strings.Builder
		for range r.IntN([]int{3, 30, 300}[r.IntN(3)]) {
			b.WriteRune([]rune{'a', 'Z', 'é', '界', '😀'}[r.IntN(5)])
		}
		v.SetString(b.String())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x := extremes[r.IntN(len(extremes))]
		if r.IntN(2) == 0 {
			x = r.Int64() >> r.IntN(64)
		}
		for v.OverflowInt(x) {
			x /= 3
		}
		v.SetInt(x)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		x := r.Uint64() >> r.IntN(65)
		for v.OverflowUint(x) {
			x /= 3
		}
		v.SetUint(x)
	case reflect.Slice:
		switch n := r.IntN(5); {
		case n == 0 || depth > 3:
			// nil
		default:
			s := reflect.MakeSlice(t, n-1, n-1)
			for i := range n - 1 {
				s.Index(i).Set(randomValue(t.Elem(), r, depth+1))
			}
			v.Set(s)
		}
	case reflect.Struct:
		for i := range t.NumField() {
			if t.Field(i).IsExported() && r.IntN(4) > 0 {
				v.Field(i).Set(randomValue(t.Field(i).Type, r, depth+1))
			}
		}
		if f := v.FieldByName("Skip"); f.IsValid() {
			f.SetInt(0) // not encoded, so not decoded either
		}
	}
	return v
}

func TestPlainCoderWritesTheLibrarysBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, typ := range planned {
		t.Run(typ.String(), func(t *testing.T) {
			c, ok := For(typ).(plainCoder)
			if !ok {
				t.Fatalf("For(%s) is %T, want the plain coder", typ, For(typ))
			}
			for range 2000 {
				v := randomValue(typ, r, 0).Interface()
				want, err := encMode.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				got, err := c.Append([]byte("x"), v)
				if err != nil || !bytes.Equal(got[1:], want) || got[0] != 'x' {
					t.Fatalf("Append(%.300v) = %x, %v; the library writes %x", v, got, err, want)
				}
				// The library's reading is the reference: it loses the
				// difference between a nil and an empty slice left out by
				// omitempty, as the plan must.
				lib := reflect.New(typ)
				if err := decMode.Unmarshal(want, lib.Interface()); err != nil {
					t.Fatal(err)
				}
				if rest, ok := c.p.decode(want, reflect.New(typ).UnsafePointer()); !ok || len(rest) != 0 {
					t.Fatalf("the plan leaves %x, the library's own encoding, to the library", want)
				}
				back, err := c.Decode(want)
				if err != nil || !reflect.DeepEqual(back, lib.Elem().Interface()) {
					t.Fatalf("Decode(%x) = %.300v, %v; the library reads %.300v", want, back, err, lib.Elem().Interface())
				}
			}
		})
	}
}

type withFloat struct{ X float64 }
type withPointer struct{ P *int }
type withMap struct{ M map[string]int }
type embedded struct{ plainPerson }
type withTime struct{ T time.Time }
type withStructOmitEmpty struct {
	A plainPerson `json:"a,omitempty"`
}
type withKeyAsInt struct {
	A int `cbor:"1,keyasint"`
}
type withBytes struct{ B []byte }
type withArray struct {
	_ struct{} `cbor:",toarray"`
	A int
}
type withClash struct {
	A int `cbor:"x"`
	B int `cbor:"x"`
}

func TestUnplainTypesStayWithTheLibrary(t *testing.T) {
	for _, v := range []any{withFloat{1.5}, withPointer{new(int)}, withMap{map[string]int{"a": 1}}, embedded{plainPerson{ID: 3}},
		withTime{time.Unix(5, 0).UTC()}, withStructOmitEmpty{}, withKeyAsInt{7}, withBytes{[]byte("hi")}, withArray{A: 4}, withClash{}, []byte("raw"), map[string]int{"k": 2}} {
		typ := reflect.TypeOf(v)
		c := For(typ)
		if _, ok := c.(plainCoder); ok {
			t.Errorf("For(%s) took the fast path", typ)
		}
		b, err := c.Append(nil, v)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if _, err := c.Decode(b); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
	}
}

// TestPlainDecodeFallsBack gives the plain coder CBOR that the library reads
// but the plan does not; both must decode it alike, value or error.
func TestPlainDecodeFallsBack(t *testing.T) {
	typ := reflect.TypeFor[plainPerson]()
	c := For(typ).(plainCoder)
	enc := func(v any) []byte {
		b, err := encMode.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string][]byte{
		"another case":       enc(map[string]any{"ID": 5, "NAME": "x"}),
		"an unknown field":   enc(map[string]any{"id": 5, "gone": "x"}),
		"a duplicate key":    append(append([]byte{0xa2}, enc("id")[0:]...), append(enc(1), append(enc("id"), enc(2)...)...)...),
		"indefinite map":     append(append([]byte{0xbf}, append(enc("id"), enc(9)...)...), 0xff),
		"a float":            enc(map[string]any{"id": 1.5}),
		"a null string":      append(append([]byte{0xa1}, enc("name")...), cborNull),
		"int8 overflow":      enc(map[string]any{"Small": 300}),
		"uint from negative": enc(map[string]any{"U": -1}),
		"invalid utf-8":      append(append([]byte{0xa1}, enc("name")...), 0x62, 0xff, 0xfe),
		"trailing bytes":     append(enc(map[string]any{"id": 1}), 0x01),
		"truncated":          enc(map[string]any{"id": 1, "name": "abc"})[:8],
		"not a map":          enc([]int{1, 2}),
		"empty":              nil,
		"too many pairs":     enc(map[string]any{"id": 1, "name": "n", "extra": "e", "p": 1, "Small": 1, "tiny": 1, "U": 1, "U16": 1, "I32": 1, "ok": true, "tags": []string{}, "a_field_name_longer_than_twenty_three_bytes": "", "x": 1}),
		"non-shortest head":  append(append([]byte{0xa1}, enc("id")...), 0x19, 0x00, 0x05),
		"an empty slice":     append(append([]byte{0xa1}, enc("tags")...), 0x80),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			got, gotErr := c.Decode(b)
			lib := reflect.New(typ)
			libErr := decMode.Unmarshal(b, lib.Interface())
			if (gotErr != nil) != (libErr != nil) {
				t.Fatalf("plain coder: %+v, %v; library: %+v, %v", got, gotErr, lib.Elem().Interface(), libErr)
			}
			if libErr == nil && !reflect.DeepEqual(got, lib.Elem().Interface()) {
				t.Fatalf("plain coder: %+v; library: %+v", got, lib.Elem().Interface())
			}
		})
	}
}

func BenchmarkStructCoder(b *testing.B) {
	v := plainTagged{Tag: 1, A: plainPerson{ID: 1000123, Name: "Walter Smith", Extra: strings.Repeat("x", 100), OK: true}}
	for _, bc := range []struct {
		name string
		c    Coder
	}{{"plain", For(reflect.TypeOf(v))}, {"library", cborCoder{reflect.TypeOf(v)}}} {
		b.Run(bc.name+"/append", func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				buf, _ = bc.c.Append(buf[:0], v)
			}
		})
		enc, _ := bc.c.Append(nil, v)
		b.Run(bc.name+"/decode", func(b *testing.B) {
			for b.Loop() {
				if _, err := bc.c.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
