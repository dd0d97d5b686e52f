package sdk

import (
	"fmt"

	"github.com/weir-dev/weir/internal/graph"
)

// Side inputs: a collection read whole, per window, by a ParDo. The ParDo's
// main input waits until the side input is complete for the window it needs
// (its watermark has passed the end of that window), as in Beam. The side
// window of a main element is the side collection's window containing the end
// of the main element's window; a globally windowed side input serves every
// main window once its input has ended.

type sideDecl interface {
	side() *graph.SideInput
	pipeline() *Pipeline
}

type view struct {
	s *graph.SideInput
	p *Pipeline
}

func (v view) side() *graph.SideInput { return v.s }
func (v view) pipeline() *Pipeline    { return v.p }

func (v view) get(c *Context) (any, error) {
	if c.x.Side == nil {
		return nil, fmt.Errorf("sdk: %s: side input not declared with SideInputs", c.x.Transform)
	}
	return c.x.Side(v.s)
}

// SingletonView is a collection read as one value per window.
type SingletonView[T any] struct{ view }

// Get returns the window's single value; it is an error for the window to
// hold more than one. An empty window gives the default value given to
// AsSingleton (or T's zero value).
func (v SingletonView[T]) Get(c *Context) (T, error) {
	x, err := v.get(c)
	if err != nil {
		var zero T
		return zero, err
	}
	return x.(T), nil
}

// AsSingleton reads a collection as a single value per window.
func AsSingleton[T any](pc PCollection[T], def ...T) SingletonView[T] {
	var d T
	if len(def) > 0 {
		d = def[0]
	}
	where := pc.col.String()
	return SingletonView[T]{view{p: pc.p, s: &graph.SideInput{PCol: pc.col, Kind: graph.SideSingleton,
		Materialize: func(vs []any) (any, error) {
			switch len(vs) {
			case 0:
				return d, nil
			case 1:
				return vs[0].(T), nil
			}
			return nil, fmt.Errorf("sdk: side input %s read as a singleton has %d values in one window", where, len(vs))
		}}}}
}

// ListView is a collection read as a slice per window.
type ListView[T any] struct{ view }

// Get returns the window's values, in no particular order. The slice is
// shared: do not modify it.
func (v ListView[T]) Get(c *Context) ([]T, error) {
	x, err := v.get(c)
	if err != nil {
		return nil, err
	}
	return x.([]T), nil
}

// AsList reads a collection as a slice per window.
func AsList[T any](pc PCollection[T]) ListView[T] {
	return ListView[T]{view{p: pc.p, s: &graph.SideInput{PCol: pc.col, Kind: graph.SideList,
		Materialize: func(vs []any) (any, error) {
			out := make([]T, len(vs))
			for i, v := range vs {
				out[i] = v.(T)
			}
			return out, nil
		}}}}
}

// MapView is a keyed collection read as a map per window.
type MapView[K comparable, V any] struct{ view }

// Get returns the window's map. It is shared: do not modify it.
func (v MapView[K, V]) Get(c *Context) (map[K]V, error) {
	x, err := v.get(c)
	if err != nil {
		return nil, err
	}
	return x.(map[K]V), nil
}

// Lookup returns the value of key k in the window's map.
func (v MapView[K, V]) Lookup(c *Context, k K) (V, bool, error) {
	m, err := v.Get(c)
	if err != nil {
		var zero V
		return zero, false, err
	}
	x, ok := m[k]
	return x, ok, nil
}

// AsMap reads a keyed collection as a map per window; a key that appears
// twice in one window is an error.
func AsMap[K comparable, V any](pc PCollection[KV[K, V]]) MapView[K, V] {
	where := pc.col.String()
	return MapView[K, V]{view{p: pc.p, s: &graph.SideInput{PCol: pc.col, Kind: graph.SideMap,
		Materialize: func(vs []any) (any, error) {
			m := make(map[K]V, len(vs))
			for _, v := range vs {
				kv := v.(KV[K, V])
				if _, dup := m[kv.Key]; dup {
					return nil, fmt.Errorf("sdk: side input %s read as a map has key %v twice in one window", where, kv.Key)
				}
				m[kv.Key] = kv.Value
			}
			return m, nil
		}}}}
}

// SideInputs declares the side inputs a ParDo reads.
func SideInputs(views ...sideDecl) Option {
	return optionFunc{"SideInputs", func(o *options) { o.sides = append(o.sides, views...) }}
}
