package sdk

import (
	"fmt"

	"github.com/weir-dev/weir/internal/coder"
	"github.com/weir-dev/weir/internal/graph"
)

// State cells and timers of stateful ParDos. Declare them as values, pass
// them to ParDo with State(...), and use them from the DoFn with the Context
// of the element or timer. Each cell holds one value per key and window; the
// runner keeps it in the state backend (Pebble by default) and clears it when
// the window is garbage collected (never, in the global window).

type stateDecl interface {
	declare(spec *graph.DoFnSpec)
}

// State declares the state cells and timers a ParDo uses. The ParDo's input
// must be keyed (a PCollection of KV[K, V]).
func State(cells ...stateDecl) Option {
	return optionFunc{"State", func(o *options) { o.states = append(o.states, cells...) }}
}

// get reads and decodes entry sub of cell name.
func get[T any](c *Context, name string, sub []byte, cd coder.Coder) (T, bool, error) {
	var zero T
	a, err := access(c, name)
	if err != nil {
		return zero, false, err
	}
	b, ok, err := a.Get(name, sub)
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := cd.Decode(b)
	if err != nil {
		return zero, false, fmt.Errorf("sdk: state %q: the stored value does not fit %s (did its type change incompatibly since the state was written? adding fields is fine, changing a field's type is not): %w", name, cd.Type(), err)
	}
	return v.(T), true, nil
}

// set encodes v into entry sub of cell name.
func set(c *Context, name string, sub []byte, cd coder.Coder, v any) error {
	a, err := access(c, name)
	if err != nil {
		return err
	}
	b, err := cd.Append(nil, v)
	if err != nil {
		return err
	}
	return a.Set(name, sub, b)
}

func access(c *Context, name string) (graph.StateAccess, error) {
	if c.x.State == nil {
		return nil, fmt.Errorf("sdk: %s: state %q used outside a stateful ParDo (declare it with State on a keyed input)", c.x.Transform, name)
	}
	return c.x.State, nil
}

// ValueState is a cell holding one value of type T.
type ValueState[T any] struct {
	name string
	c    coder.Coder
}

// NewValueState declares a value cell.
func NewValueState[T any](name string) ValueState[T] {
	return ValueState[T]{name: name, c: coder.Of[T]()}
}

func (s ValueState[T]) declare(spec *graph.DoFnSpec) {
	spec.States = append(spec.States, graph.StateSpec{Name: s.name, Kind: "value"})
}

// Read returns the value and whether it is set.
func (s ValueState[T]) Read(c *Context) (T, bool, error) {
	return get[T](c, s.name, nil, s.c)
}

// Write sets the value.
func (s ValueState[T]) Write(c *Context, v T) error {
	return set(c, s.name, nil, s.c, v)
}

// Clear unsets the value.
func (s ValueState[T]) Clear(c *Context) error {
	a, err := access(c, s.name)
	if err != nil {
		return err
	}
	return a.Delete(s.name, nil)
}

// BagState is a cell holding an unordered multiset of values; adding does not
// read what is there.
type BagState[T any] struct {
	name string
	c    coder.Coder
}

// NewBagState declares a bag cell.
func NewBagState[T any](name string) BagState[T] {
	return BagState[T]{name: name, c: coder.Of[T]()}
}

func (s BagState[T]) declare(spec *graph.DoFnSpec) {
	spec.States = append(spec.States, graph.StateSpec{Name: s.name, Kind: "bag"})
}

// Add adds v to the bag.
func (s BagState[T]) Add(c *Context, v T) error {
	a, err := access(c, s.name)
	if err != nil {
		return err
	}
	seq, err := a.NextSeq(s.name)
	if err != nil {
		return err
	}
	return set(c, s.name, seq, s.c, v)
}

// Read returns the bag's values in the order they were added.
func (s BagState[T]) Read(c *Context) ([]T, error) {
	a, err := access(c, s.name)
	if err != nil {
		return nil, err
	}
	var out []T
	err = a.Scan(s.name, func(_, b []byte) error {
		v, err := s.c.Decode(b)
		if err != nil {
			return fmt.Errorf("sdk: state %q: %w", s.name, err)
		}
		out = append(out, v.(T))
		return nil
	})
	return out, err
}

// Clear empties the bag.
func (s BagState[T]) Clear(c *Context) error {
	a, err := access(c, s.name)
	if err != nil {
		return err
	}
	return a.Clear(s.name)
}

// MapState is a cell holding a map from K to V. Range visits keys in the
// order of their encoding, which for integers and strings is their natural
// order.
type MapState[K, V any] struct {
	name   string
	kc, vc coder.Coder
}

// NewMapState declares a map cell.
func NewMapState[K, V any](name string) MapState[K, V] {
	return MapState[K, V]{name: name, kc: coder.Of[K](), vc: coder.Of[V]()}
}

func (s MapState[K, V]) declare(spec *graph.DoFnSpec) {
	spec.States = append(spec.States, graph.StateSpec{Name: s.name, Kind: "map"})
}

// Get returns the value of k and whether it is present.
func (s MapState[K, V]) Get(c *Context, k K) (V, bool, error) {
	kb, err := s.kc.Append(nil, k)
	if err != nil {
		var zero V
		return zero, false, err
	}
	return get[V](c, s.name, kb, s.vc)
}

// Put sets the value of k.
func (s MapState[K, V]) Put(c *Context, k K, v V) error {
	kb, err := s.kc.Append(nil, k)
	if err != nil {
		return err
	}
	return set(c, s.name, kb, s.vc, v)
}

// Delete removes k.
func (s MapState[K, V]) Delete(c *Context, k K) error {
	a, err := access(c, s.name)
	if err != nil {
		return err
	}
	kb, err := s.kc.Append(nil, k)
	if err != nil {
		return err
	}
	return a.Delete(s.name, kb)
}

// Range calls fn for every entry in key order until fn returns false.
func (s MapState[K, V]) Range(c *Context, fn func(k K, v V) bool) error {
	a, err := access(c, s.name)
	if err != nil {
		return err
	}
	stop := fmt.Errorf("stop")
	err = a.Scan(s.name, func(kb, vb []byte) error {
		k, err := s.kc.Decode(kb)
		if err != nil {
			return fmt.Errorf("sdk: state %q: %w", s.name, err)
		}
		v, err := s.vc.Decode(vb)
		if err != nil {
			return fmt.Errorf("sdk: state %q: %w", s.name, err)
		}
		if !fn(k.(K), v.(V)) {
			return stop
		}
		return nil
	})
	if err == stop {
		return nil
	}
	return err
}

// Clear empties the map.
func (s MapState[K, V]) Clear(c *Context) error {
	a, err := access(c, s.name)
	if err != nil {
		return err
	}
	return a.Clear(s.name)
}

// CombiningState is a cell that folds added values through a CombineFn.
type CombiningState[V, A, O any] struct {
	name string
	fn   CombineFn[V, A, O]
	c    coder.Coder
}

// NewCombiningState declares a combining cell.
func NewCombiningState[V, A, O any](name string, fn CombineFn[V, A, O]) CombiningState[V, A, O] {
	return CombiningState[V, A, O]{name: name, fn: fn, c: coder.Of[A]()}
}

func (s CombiningState[V, A, O]) declare(spec *graph.DoFnSpec) {
	spec.States = append(spec.States, graph.StateSpec{Name: s.name, Kind: "combining"})
}

func (s CombiningState[V, A, O]) acc(c *Context) (A, error) {
	acc, ok, err := get[A](c, s.name, nil, s.c)
	if err == nil && !ok {
		acc = s.fn.CreateAccumulator()
	}
	return acc, err
}

// Add folds v into the cell.
func (s CombiningState[V, A, O]) Add(c *Context, v V) error {
	acc, err := s.acc(c)
	if err != nil {
		return err
	}
	return set(c, s.name, nil, s.c, s.fn.AddInput(acc, v))
}

// Read returns the combined output.
func (s CombiningState[V, A, O]) Read(c *Context) (O, error) {
	acc, err := s.acc(c)
	if err != nil {
		var zero O
		return zero, err
	}
	return s.fn.ExtractOutput(acc), nil
}

// Clear resets the cell.
func (s CombiningState[V, A, O]) Clear(c *Context) error {
	a, err := access(c, s.name)
	if err != nil {
		return err
	}
	return a.Delete(s.name, nil)
}

// TimerDecl is a timer of a stateful ParDo: one per key and window. Setting
// it again moves it; when it fires, the DoFn's OnTimer is called with the
// key, window and the timer's time.
type TimerDecl struct {
	name   string
	domain uint8
}

// EventTimer declares a timer that fires when the input watermark passes
// its time.
func EventTimer(name string) TimerDecl { return TimerDecl{name: name, domain: graph.DomainEvent} }

// ProcessingTimer declares a timer that fires when processing time passes
// its time (in a backfill: when the input has ended).
func ProcessingTimer(name string) TimerDecl {
	return TimerDecl{name: name, domain: graph.DomainProcessing}
}

func (t TimerDecl) declare(spec *graph.DoFnSpec) {
	spec.Timers = append(spec.Timers, graph.TimerSpec{Name: t.name, Domain: t.domain})
}

// Set sets the timer for the current key and window to fire at t.
func (t TimerDecl) Set(c *Context, at Time) error {
	a, err := access(c, t.name)
	if err != nil {
		return err
	}
	return a.SetTimer(t.name, t.domain, at)
}

// Clear cancels the timer for the current key and window.
func (t TimerDecl) Clear(c *Context) error {
	a, err := access(c, t.name)
	if err != nil {
		return err
	}
	return a.ClearTimer(t.name, t.domain)
}
