package sdk

import (
	"cmp"
	"fmt"
	"reflect"

	"github.com/weir-dev/weir/internal/coder"
	"github.com/weir-dev/weir/internal/graph"
)

// GroupByKey groups the values of each key and window into one element per
// pane. Values within a pane come in no particular order.
//
// Options: Named.
func GroupByKey[K, V any](in PCollection[KV[K, V]], opts ...Option) PCollection[KV[K, []V]] {
	if !in.valid() {
		panic("sdk: GroupByKey on a zero PCollection")
	}
	p := in.p
	o := collect(opts)
	name := o.nameOr("GroupByKey")
	o.only(p.g, fmt.Sprintf("GroupByKey %q", name))
	n := p.g.AddNode(graph.KindGroupByKey, name, []*graph.PCol{in.col}, reflect.TypeFor[KV[K, []V]]())
	n.GBK = &graph.GBKSpec{
		ValueCoder: coder.Of[V](),
		Make: func(key any, values []any) any {
			vs := make([]V, len(values))
			for i, v := range values {
				vs[i] = v.(V)
			}
			return KV[K, []V]{Key: key.(K), Value: vs}
		},
	}
	return output[KV[K, []V]](p, n, 0)
}

// CombineFn is Beam's CombineFn: a commutative, associative aggregation
// through an accumulator. Weir combines values before the shuffle (combiner
// lifting), so only accumulators cross between workers; A must therefore be
// encodable (a basic type, or a struct of exported fields).
type CombineFn[V, A, O any] interface {
	CreateAccumulator() A
	AddInput(acc A, v V) A
	MergeAccumulators(a, b A) A
	ExtractOutput(acc A) O
}

// CombinePerKey combines the values of each key and window into one output
// per pane.
//
// Options: Named.
func CombinePerKey[K, V, A, O any](in PCollection[KV[K, V]], fn CombineFn[V, A, O], opts ...Option) PCollection[KV[K, O]] {
	if !in.valid() {
		panic("sdk: CombinePerKey on a zero PCollection")
	}
	p := in.p
	o := collect(opts)
	name := o.nameOr("CombinePerKey(" + typeName(fn) + ")")
	o.only(p.g, fmt.Sprintf("CombinePerKey %q", name))
	n := p.g.AddNode(graph.KindCombinePerKey, name, []*graph.PCol{in.col}, reflect.TypeFor[KV[K, O]]())
	n.Combine = &graph.CombineSpec{
		Create:   func() any { return fn.CreateAccumulator() },
		Add:      func(acc, v any) any { return fn.AddInput(acc.(A), v.(V)) },
		AddKV:    func(acc, kv any) any { return fn.AddInput(acc.(A), kv.(KV[K, V]).Value) },
		Merge:    func(a, b any) any { return fn.MergeAccumulators(a.(A), b.(A)) },
		Extract:  func(acc any) any { return fn.ExtractOutput(acc.(A)) },
		AccCoder: coder.Of[A](),
		Make:     func(key, out any) any { return KV[K, O]{Key: key.(K), Value: out.(O)} },
		NewCell:  func() graph.CombineCell { return &combineCell[K, V, A, O]{fn: fn, acc: fn.CreateAccumulator()} },
	}
	return output[KV[K, O]](p, n, 0)
}

// combineCell is an accumulator of fn held unboxed (graph.CombineCell).
type combineCell[K, V, A, O any] struct {
	fn  CombineFn[V, A, O]
	acc A
}

func (c *combineCell[K, V, A, O]) Add(v any)     { c.acc = c.fn.AddInput(c.acc, v.(V)) }
func (c *combineCell[K, V, A, O]) AddKV(kv any)  { c.acc = c.fn.AddInput(c.acc, kv.(KV[K, V]).Value) }
func (c *combineCell[K, V, A, O]) Merge(acc any) { c.acc = c.fn.MergeAccumulators(c.acc, acc.(A)) }
func (c *combineCell[K, V, A, O]) Acc() any      { return c.acc }

// Number is the constraint of Sum and Mean.
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 |
		~float32 | ~float64
}

type countFn[V any] struct{}

func (countFn[V]) CreateAccumulator() int64           { return 0 }
func (countFn[V]) AddInput(a int64, _ V) int64        { return a + 1 }
func (countFn[V]) MergeAccumulators(a, b int64) int64 { return a + b }
func (countFn[V]) ExtractOutput(a int64) int64        { return a }

// Count counts the elements of each key and window.
func Count[K, V any](in PCollection[KV[K, V]], opts ...Option) PCollection[KV[K, int64]] {
	return CombinePerKey[K, V, int64, int64](in, countFn[V]{}, append([]Option{Named("Count")}, opts...)...)
}

type sumFn[V Number] struct{}

func (sumFn[V]) CreateAccumulator() V       { return 0 }
func (sumFn[V]) AddInput(a V, v V) V        { return a + v }
func (sumFn[V]) MergeAccumulators(a, b V) V { return a + b }
func (sumFn[V]) ExtractOutput(a V) V        { return a }

// Sum adds up the values of each key and window.
func Sum[K any, V Number](in PCollection[KV[K, V]], opts ...Option) PCollection[KV[K, V]] {
	return CombinePerKey[K, V, V, V](in, sumFn[V]{}, append([]Option{Named("Sum")}, opts...)...)
}

// MinMaxAcc is the accumulator of Min and Max.
type MinMaxAcc[V any] struct {
	Set   bool
	Value V
}

type extremeFn[V cmp.Ordered] struct{ max bool }

func (extremeFn[V]) CreateAccumulator() MinMaxAcc[V] { return MinMaxAcc[V]{} }
func (f extremeFn[V]) AddInput(a MinMaxAcc[V], v V) MinMaxAcc[V] {
	return f.MergeAccumulators(a, MinMaxAcc[V]{Set: true, Value: v})
}
func (f extremeFn[V]) MergeAccumulators(a, b MinMaxAcc[V]) MinMaxAcc[V] {
	switch {
	case !a.Set:
		return b
	case !b.Set:
		return a
	case f.max == (b.Value > a.Value):
		return b
	}
	return a
}
func (extremeFn[V]) ExtractOutput(a MinMaxAcc[V]) V { return a.Value }

// Min is the smallest value of each key and window.
func Min[K any, V cmp.Ordered](in PCollection[KV[K, V]], opts ...Option) PCollection[KV[K, V]] {
	return CombinePerKey[K, V, MinMaxAcc[V], V](in, extremeFn[V]{}, append([]Option{Named("Min")}, opts...)...)
}

// Max is the largest value of each key and window.
func Max[K any, V cmp.Ordered](in PCollection[KV[K, V]], opts ...Option) PCollection[KV[K, V]] {
	return CombinePerKey[K, V, MinMaxAcc[V], V](in, extremeFn[V]{max: true}, append([]Option{Named("Max")}, opts...)...)
}

// MeanAcc is the accumulator of Mean.
type MeanAcc struct {
	Sum   float64
	Count int64
}

type meanFn[V Number] struct{}

func (meanFn[V]) CreateAccumulator() MeanAcc { return MeanAcc{} }
func (meanFn[V]) AddInput(a MeanAcc, v V) MeanAcc {
	return MeanAcc{Sum: a.Sum + float64(v), Count: a.Count + 1}
}
func (meanFn[V]) MergeAccumulators(a, b MeanAcc) MeanAcc {
	return MeanAcc{Sum: a.Sum + b.Sum, Count: a.Count + b.Count}
}
func (meanFn[V]) ExtractOutput(a MeanAcc) float64 {
	if a.Count == 0 {
		return 0
	}
	return a.Sum / float64(a.Count)
}

// Mean is the arithmetic mean of the values of each key and window.
func Mean[K any, V Number](in PCollection[KV[K, V]], opts ...Option) PCollection[KV[K, float64]] {
	return CombinePerKey[K, V, MeanAcc, float64](in, meanFn[V]{}, append([]Option{Named("Mean")}, opts...)...)
}

// CoGroup2 is the result of CoGroupByKey2 for one key, window and pane: the
// values of each input.
type CoGroup2[A, B any] struct {
	A []A
	B []B
}

// Tagged2 is a value of one of two inputs, as CoGroupByKey2 shuffles them.
type Tagged2[A, B any] struct {
	Tag uint8
	A   A
	B   B
}

// CoGroupByKey2 groups two keyed collections by key and window together (a
// relational join's first step). Both must be windowed alike.
//
// Options: Named.
func CoGroupByKey2[K, A, B any](a PCollection[KV[K, A]], b PCollection[KV[K, B]], opts ...Option) PCollection[KV[K, CoGroup2[A, B]]] {
	o := collect(opts)
	name := o.nameOr("CoGroupByKey")
	ta := Map(a, func(kv KV[K, A]) KV[K, Tagged2[A, B]] {
		return KV[K, Tagged2[A, B]]{Key: kv.Key, Value: Tagged2[A, B]{Tag: 0, A: kv.Value}}
	}, Named(name+"/TagA"))
	tb := Map(b, func(kv KV[K, B]) KV[K, Tagged2[A, B]] {
		return KV[K, Tagged2[A, B]]{Key: kv.Key, Value: Tagged2[A, B]{Tag: 1, B: kv.Value}}
	}, Named(name+"/TagB"))
	g := GroupByKey(Flatten(ta, tb), Named(name+"/GroupByKey"))
	return Map(g, func(kv KV[K, []Tagged2[A, B]]) KV[K, CoGroup2[A, B]] {
		var r CoGroup2[A, B]
		for _, t := range kv.Value {
			if t.Tag == 0 {
				r.A = append(r.A, t.A)
			} else {
				r.B = append(r.B, t.B)
			}
		}
		return KV[K, CoGroup2[A, B]]{Key: kv.Key, Value: r}
	}, Named(name+"/Split"))
}
