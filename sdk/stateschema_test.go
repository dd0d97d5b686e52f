package sdk

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/weir-dev/weir/internal/coder"
	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/windowing"
)

// memState is a graph.StateAccess over a map, for one key and window.
type memState struct {
	m   map[string][]byte
	seq uint64
}

func newMemState() (*Context, *memState) {
	s := &memState{m: map[string][]byte{}}
	return &Context{x: &graph.ExecCtx{Transform: "T", State: s}}, s
}

func cellKey(name string, sub []byte) string { return name + "\x00" + string(sub) }

func (s *memState) Get(name string, sub []byte) ([]byte, bool, error) {
	b, ok := s.m[cellKey(name, sub)]
	return slices.Clone(b), ok, nil
}
func (s *memState) Set(name string, sub, v []byte) error {
	s.m[cellKey(name, sub)] = slices.Clone(v)
	return nil
}
func (s *memState) Delete(name string, sub []byte) error {
	delete(s.m, cellKey(name, sub))
	return nil
}
func (s *memState) Clear(name string) error {
	for k := range s.m {
		if strings.HasPrefix(k, cellKey(name, nil)) {
			delete(s.m, k)
		}
	}
	return nil
}
func (s *memState) Scan(name string, fn func(sub, value []byte) error) error {
	var keys []string
	for k := range s.m {
		if strings.HasPrefix(k, cellKey(name, nil)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := fn([]byte(k[len(name)+1:]), s.m[k]); err != nil {
			return err
		}
	}
	return nil
}
func (s *memState) NextSeq(string) ([]byte, error) {
	s.seq++
	return []byte(fmt.Sprintf("%016d", s.seq)), nil
}
func (s *memState) SetTimer(string, uint8, windowing.Time) error { return nil }
func (s *memState) ClearTimer(string, uint8) error               { return nil }

type pointV1 struct{ X int64 }
type pointV2 struct{ X, Y int64 }
type pointV3 struct{ X string }

func TestStateHeader(t *testing.T) {
	c, s := newMemState()
	if err := NewValueState[pointV1]("p", SchemaVersion(300)).Write(c, pointV1{X: 1}); err != nil {
		t.Fatal(err)
	}
	if err := NewValueState[int64]("n").Write(c, 7); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		cell    string
		version uint64
		body    []byte
	}{
		{"p", 300, nil},
		{"n", 1, []byte{0x80, 0, 0, 0, 0, 0, 0, 7}},
	} {
		b := s.m[cellKey(k.cell, nil)]
		v, body, err := coder.SplitHeader(b)
		if err != nil || v != k.version || (k.body != nil && string(body) != string(k.body)) {
			t.Errorf("state %q stored % x: version %d, body % x, %v", k.cell, b, v, body, err)
		}
		if overhead := len(b) - len(body); overhead > 3 {
			t.Errorf("state %q: a header of %d bytes", k.cell, overhead)
		}
	}
}

// TestStateVersions writes a value with one declaration of a cell and reads
// it with another, as a job does across a restart with changed code.
func TestStateVersions(t *testing.T) {
	for _, c := range []struct {
		name  string
		write func(*Context) error
		read  func(*Context) (any, error)
		want  string // the value read, or what the error says
		err   error
	}{
		{"same version",
			func(c *Context) error { return NewValueState[pointV2]("p", SchemaVersion(2)).Write(c, pointV2{1, 2}) },
			readValue[pointV2](SchemaVersion(2)), "{1 2}", nil},
		{"older version, a field added",
			func(c *Context) error { return NewValueState[pointV1]("p").Write(c, pointV1{1}) },
			readValue[pointV2](SchemaVersion(2)), "{1 0}", nil},
		{"older version, upgraded",
			func(c *Context) error { return NewValueState[pointV1]("p").Write(c, pointV1{1}) },
			readValue[pointV3](SchemaVersion(3), UpgradeFrom(1, func(p pointV1) pointV3 { return pointV3{fmt.Sprint("was ", p.X)} })),
			"{was 1}", nil},
		{"older version, upgrade for another version",
			func(c *Context) error { return NewValueState[pointV2]("p", SchemaVersion(2)).Write(c, pointV2{1, 2}) },
			readValue[pointV3](SchemaVersion(3), UpgradeFrom(1, func(p pointV1) pointV3 { return pointV3{} })),
			`state "p" (stored with schema version 2, declared 3) does not decode as sdk.pointV3; a type change other than added fields needs UpgradeFrom(2, ...)`,
			ErrStateSchema},
		{"older version, upgrade from a type that does not fit",
			func(c *Context) error { return NewValueState[pointV3]("p").Write(c, pointV3{"x"}) },
			readValue[pointV2](SchemaVersion(2), UpgradeFrom(1, func(p pointV1) pointV2 { return pointV2{} })),
			`state "p" (stored with schema version 1, declared 2) does not decode as sdk.pointV1 for UpgradeFrom(1, ...)`,
			ErrStateSchema},
		{"newer version",
			func(c *Context) error { return NewValueState[pointV2]("p", SchemaVersion(2)).Write(c, pointV2{1, 2}) },
			readValue[pointV1](),
			`sdk: state written by a newer version of the job: state "p" is stored with schema version 2, this job declares 1`,
			ErrStateNewer},
		{"incompatible, same version",
			func(c *Context) error { return NewValueState[pointV1]("p").Write(c, pointV1{1}) },
			readValue[pointV3](),
			`state "p" (stored with schema version 1, declared 1) does not decode as sdk.pointV3; a type change other than added fields needs a new SchemaVersion and UpgradeFrom(1, ...)`,
			ErrStateSchema},
		{"stored before headers: a struct",
			func(c *Context) error {
				b, _ := coder.Of[pointV1]().Append(nil, pointV1{1})
				return c.x.State.Set("p", nil, b)
			},
			readValue[pointV1](), `state "p": coder: bad state value header: unknown format 0xa1`, ErrStateSchema},
		{"stored before headers: an int",
			func(c *Context) error {
				b, _ := coder.Of[int64]().Append(nil, int64(5))
				return c.x.State.Set("p", nil, b)
			},
			readValue[int64](), `state "p": coder: bad state value header: unknown format 0x80`, ErrStateSchema},
		{"stored before headers: a uint that starts like a header",
			func(c *Context) error {
				b, _ := coder.Of[uint64]().Append(nil, uint64(1)<<56)
				return c.x.State.Set("p", nil, b)
			},
			readValue[uint64](), `state "p": coder: bad state value header: schema version 0`, ErrStateSchema},
		{"stored before headers: an empty string",
			func(c *Context) error { return c.x.State.Set("p", nil, nil) },
			readValue[string](), `state "p": coder: bad state value header: empty value`, ErrStateSchema},
		{"a header of an unknown format",
			func(c *Context) error { return c.x.State.Set("p", nil, []byte{0x02, 1, 0xa0}) },
			readValue[pointV1](), `unknown format 0x02`, ErrStateSchema},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, _ := newMemState()
			if err := c.write(ctx); err != nil {
				t.Fatal(err)
			}
			v, err := c.read(ctx)
			switch {
			case c.err == nil && (err != nil || fmt.Sprint(v) != c.want):
				t.Errorf("got %v, %v; want %s", v, err, c.want)
			case c.err != nil && (!errors.Is(err, c.err) || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v, %v; want an error wrapping %v that says %q", v, err, c.err, c.want)
			}
		})
	}
}

func readValue[T any](opts ...StateOption) func(*Context) (any, error) {
	return func(c *Context) (any, error) {
		v, _, err := NewValueState[T]("p", opts...).Read(c)
		return v, err
	}
}

// Upgrades apply to a bag's elements, a map's values and a combining cell's
// accumulator.
func TestStateUpgradeEveryKind(t *testing.T) {
	c, _ := newMemState()
	up := UpgradeFrom(1, func(p pointV1) pointV3 { return pointV3{fmt.Sprint(p.X)} })
	bag1, bag3 := NewBagState[pointV1]("bag"), NewBagState[pointV3]("bag", SchemaVersion(3), up)
	map1, map3 := NewMapState[string, pointV1]("map"), NewMapState[string, pointV3]("map", SchemaVersion(3), up)
	comb1 := NewCombiningState[int64, pointV1, int64]("sum", sumPoints{})
	comb3 := NewCombiningState[int64, pointV3, string]("sum", concatPoints{}, SchemaVersion(3), up)
	for _, err := range []error{
		bag1.Add(c, pointV1{1}), bag1.Add(c, pointV1{2}),
		map1.Put(c, "a", pointV1{3}), map1.Put(c, "b", pointV1{4}),
		comb1.Add(c, 5), comb1.Add(c, 6),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := bag3.Add(c, pointV3{"new"}); err != nil {
		t.Fatal(err)
	}
	if err := map3.Put(c, "c", pointV3{"new"}); err != nil {
		t.Fatal(err)
	}
	if err := comb3.Add(c, 7); err != nil {
		t.Fatal(err)
	}
	bag, err := bag3.Read(c)
	if fmt.Sprint(bag) != "[{1} {2} {new}]" || err != nil {
		t.Errorf("bag: %v, %v", bag, err)
	}
	var m []string
	err = map3.Range(c, func(k string, v pointV3) bool { m = append(m, k+"="+v.X); return true })
	if fmt.Sprint(m) != "[a=3 b=4 c=new]" || err != nil {
		t.Errorf("map: %v, %v", m, err)
	}
	if v, ok, err := map3.Get(c, "a"); v.X != "3" || !ok || err != nil {
		t.Errorf("map get: %v, %v, %v", v, ok, err)
	}
	if sum, err := comb3.Read(c); sum != "11+7" || err != nil {
		t.Errorf("combining: %q, %v", sum, err)
	}
	// And reading the newer state with the old declarations fails.
	if _, err := bag1.Read(c); !errors.Is(err, ErrStateNewer) {
		t.Errorf("bag read by the old declaration: %v", err)
	}
	if err := map1.Range(c, func(string, pointV1) bool { return true }); !errors.Is(err, ErrStateNewer) {
		t.Errorf("map read by the old declaration: %v", err)
	}
	if _, err := comb1.Read(c); !errors.Is(err, ErrStateNewer) {
		t.Errorf("combining read by the old declaration: %v", err)
	}
}

type sumPoints struct{}

func (sumPoints) CreateAccumulator() pointV1             { return pointV1{} }
func (sumPoints) AddInput(a pointV1, v int64) pointV1    { return pointV1{a.X + v} }
func (sumPoints) MergeAccumulators(a, b pointV1) pointV1 { return pointV1{a.X + b.X} }
func (sumPoints) ExtractOutput(a pointV1) int64          { return a.X }

type concatPoints struct{}

func (concatPoints) CreateAccumulator() pointV3             { return pointV3{} }
func (concatPoints) AddInput(a pointV3, v int64) pointV3    { return pointV3{fmt.Sprint(a.X, "+", v)} }
func (concatPoints) MergeAccumulators(a, b pointV3) pointV3 { return pointV3{a.X + "+" + b.X} }
func (concatPoints) ExtractOutput(a pointV3) string         { return a.X }

// BenchmarkValueState reads and writes a value cell: the cost of a state
// access outside the backend.
func BenchmarkValueState(b *testing.B) {
	b.Run("int64", func(b *testing.B) {
		c, _ := newMemState()
		s := NewValueState[int64]("n")
		for b.Loop() {
			n, _, err := s.Read(c)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Write(c, n+1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("struct", func(b *testing.B) {
		c, _ := newMemState()
		s := NewValueState[pointV2]("p")
		for b.Loop() {
			p, _, err := s.Read(c)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.Write(c, pointV2{p.X + 1, p.Y + 2}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzStateRead: whatever bytes a state cell finds stored, reading them
// returns a value or an error, and never panics.
func FuzzStateRead(f *testing.F) {
	c, _ := newMemState()
	_ = NewValueState[pointV2]("p", SchemaVersion(2)).Write(c, pointV2{1, 2})
	f.Add(c.x.State.(*memState).m[cellKey("p", nil)])
	f.Add([]byte{coder.FormatV1, 1, 0xa1, 0x61, 'X', 0x01})
	f.Add([]byte{coder.FormatV1, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, s := newMemState()
		s.m[cellKey("p", nil)] = b
		s.m[cellKey("n", nil)] = b
		_, _, _ = NewValueState[pointV2]("p", SchemaVersion(2), UpgradeFrom(1, func(p pointV3) pointV2 { return pointV2{} })).Read(c)
		_, _, _ = NewValueState[int64]("n", SchemaVersion(2)).Read(c)
	})
}
