// Package sdk is what a Weir pipeline author writes against: a typed,
// generic API over Beam's model. A Pipeline holds PCollection[T]s; transforms
// (Read, Map, ParDo, WindowInto, GroupByKey, CombinePerKey, Write, ...) connect
// them; sources and sinks are logical names ("pageviews", "counts") bound to
// URIs only at launch, so one pipeline runs as a backfill over files or as a
// stream over Kafka.
//
// Where Weir differs from Beam's Go SDK, it is for a reason: generics instead
// of reflection on function signatures, so that type errors (a GroupByKey on
// a collection that is not KV) are compile errors rather than launch errors;
// state cells and timers declared as values passed to ParDo instead of
// tagged struct fields; one window per element in flight.
//
// Errors in how a pipeline is put together (an option that does not apply,
// state on unkeyed input, mismatched windowing in a Flatten) are collected
// while it is built and reported, all at once and naming the transform, by
// Pipeline.Validate, which the runner calls before it starts.
//
// Dependency direction: sdk imports windowing, internal/graph and
// internal/coder. It never imports runner, state or io: a pipeline does not
// know how or where it will run.
package sdk

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/weir-dev/weir/internal/coder"
	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/windowing"
)

// Time is an event-time instant in epoch milliseconds (windowing.Time).
type Time = windowing.Time

// Pipeline is a graph of transforms under construction.
type Pipeline struct {
	g *graph.Graph
}

// NewPipeline returns an empty pipeline.
func NewPipeline() *Pipeline {
	g := graph.New()
	g.KeyGroups = 128
	return &Pipeline{g: g}
}

// Graph returns the pipeline's graph, for runners.
func (p *Pipeline) Graph() *graph.Graph { return p.g }

// Validate reports every problem found while the pipeline was built, naming
// the transform of each.
func (p *Pipeline) Validate() error { return p.g.Validate() }

// PCollection is a collection of elements of type T: bounded (from files) or
// unbounded (from a stream), each element with an event time and a window.
type PCollection[T any] struct {
	p   *Pipeline
	col *graph.PCol
}

// Pipeline returns the pipeline the collection belongs to.
func (c PCollection[T]) Pipeline() *Pipeline { return c.p }

// Windowing returns the collection's windowing strategy.
func (c PCollection[T]) Windowing() windowing.Strategy { return c.col.Strategy }

func (c PCollection[T]) valid() bool { return c.p != nil && c.col != nil }

// KV is a key and a value: the element type of keyed collections. GroupByKey,
// CombinePerKey and stateful ParDos take PCollection[KV[K, V]].
type KV[K, V any] struct {
	Key   K `json:"key"`
	Value V `json:"value"`
}

// weirKV tells the graph that KV collections are keyed, and how to split them.
func (KV[K, V]) weirKV() *graph.KVInfo {
	kc := coder.Of[K]()
	return &graph.KVInfo{
		KeyType:   reflect.TypeFor[K](),
		ValueType: reflect.TypeFor[V](),
		KeyCoder:  kc,
		Split: func(x any) (any, any) {
			kv := x.(KV[K, V])
			return kv.Key, kv.Value
		},
		Key: func(x any) any { return x.(KV[K, V]).Key },
		AppendKey: func(dst []byte, x any) ([]byte, error) {
			return coder.AppendKey(kc, dst, x.(KV[K, V]).Key)
		},
	}
}

type kvTyped interface{ weirKV() *graph.KVInfo }

// output makes the typed view of a node's i-th output and marks it keyed when
// its type is a KV.
func output[T any](p *Pipeline, n *graph.Node, i int) PCollection[T] {
	col := n.Outputs[i]
	var zero T
	if k, ok := any(zero).(kvTyped); ok {
		col.KV = k.weirKV()
	}
	return PCollection[T]{p: p, col: col}
}

// Option configures a transform. Options that do not apply to a transform are
// reported by Validate.
type Option interface {
	apply(o *options)
}

type options struct {
	name           string
	eventTime      func(any) (windowing.Time, error)
	eventTimeType  reflect.Type
	wm             windowing.WatermarkStrategy
	wmSet          bool
	columns        []string
	optional       bool
	trigger        *windowing.Trigger
	accumulating   bool
	lateness       *int64
	sides          []sideDecl
	states         []stateDecl
	used           []string
	windowingFirst bool
}

type optionFunc struct {
	what string
	f    func(o *options)
}

func (f optionFunc) apply(o *options) { o.used = append(o.used, f.what); f.f(o) }

// Named names a transform; names appear in errors, logs and metrics, and key
// the transform's state, so a stateful transform must keep its name across
// runs that share state. Without it, a transform is named by its kind.
func Named(name string) Option {
	return optionFunc{"Named", func(o *options) { o.name = name }}
}

func collect(opts []Option) *options {
	o := &options{}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(o)
		}
	}
	return o
}

// only records an error for every option used that is not in allowed.
func (o *options) only(g *graph.Graph, transform string, allowed ...string) {
	for _, u := range o.used {
		ok := u == "Named"
		for _, a := range allowed {
			ok = ok || u == a
		}
		if !ok {
			g.Fail(fmt.Errorf("%w: %s: option %s does not apply here (allowed: %s)", graph.ErrInvalid, transform, u, strings.Join(append([]string{"Named"}, allowed...), ", ")))
		}
	}
}

func (o *options) nameOr(def string) string {
	if o.name != "" {
		return o.name
	}
	return def
}
