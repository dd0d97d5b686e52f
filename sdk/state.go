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
// the window is garbage collected (never, in the global window). Stored
// values carry the cell's schema version (see SchemaVersion), so that state
// outlives changes to its type across restarts from a checkpoint.

type stateDecl interface {
	// declare adds the cell or timer to spec, or says what is wrong with
	// its declaration.
	declare(spec *graph.DoFnSpec) error
}

// State declares the state cells and timers a ParDo uses. The ParDo's input
// must be keyed (a PCollection of KV[K, V]).
func State(cells ...stateDecl) Option {
	return optionFunc{"State", func(o *options) { o.states = append(o.states, cells...) }}
}

// get reads and decodes entry sub of cell name.
func get[T any](c *Context, name string, sub []byte, vc *valueCodec) (T, bool, error) {
	var zero T
	a, err := access(c, name)
	if err != nil {
		return zero, false, err
	}
	b, ok, err := a.Get(name, sub)
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := vc.decode(name, b)
	if err != nil {
		return zero, false, err
	}
	return v.(T), true, nil
}

// maxStateBuf bounds the buffer a Context keeps for encoding state values.
const maxStateBuf = 64 << 10

// set encodes v into entry sub of cell name. The encoding goes to the
// Context's buffer: the state backend does not retain values.
func set(c *Context, name string, sub []byte, vc *valueCodec, v any) error {
	a, err := access(c, name)
	if err != nil {
		return err
	}
	b, err := vc.appendValue(c.buf[:0], v)
	if err != nil {
		return err
	}
	if cap(b) <= maxStateBuf {
		c.buf = b
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
	vc   *valueCodec
}

// NewValueState declares a value cell. Options: SchemaVersion, UpgradeFrom.
func NewValueState[T any](name string, opts ...StateOption) ValueState[T] {
	vc := newValueCodec(coder.Of[T](), opts)
	return ValueState[T]{name: name, vc: &vc}
}

func (s ValueState[T]) declare(spec *graph.DoFnSpec) error {
	spec.States = append(spec.States, graph.StateSpec{Name: s.name, Kind: "value", Version: s.vc.version})
	return s.vc.check(s.name)
}

// Read returns the value and whether it is set.
func (s ValueState[T]) Read(c *Context) (T, bool, error) {
	return get[T](c, s.name, nil, s.vc)
}

// Write sets the value.
func (s ValueState[T]) Write(c *Context, v T) error {
	return set(c, s.name, nil, s.vc, v)
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
	vc   *valueCodec
}

// NewBagState declares a bag cell. Options: SchemaVersion, UpgradeFrom
// (which converts each element).
func NewBagState[T any](name string, opts ...StateOption) BagState[T] {
	vc := newValueCodec(coder.Of[T](), opts)
	return BagState[T]{name: name, vc: &vc}
}

func (s BagState[T]) declare(spec *graph.DoFnSpec) error {
	spec.States = append(spec.States, graph.StateSpec{Name: s.name, Kind: "bag", Version: s.vc.version})
	return s.vc.check(s.name)
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
	return set(c, s.name, seq, s.vc, v)
}

// Read returns the bag's values in the order they were added.
func (s BagState[T]) Read(c *Context) ([]T, error) {
	a, err := access(c, s.name)
	if err != nil {
		return nil, err
	}
	var out []T
	err = a.Scan(s.name, func(_, b []byte) error {
		v, err := s.vc.decode(s.name, b)
		if err != nil {
			return err
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
	name string
	kc   coder.Coder
	vc   *valueCodec
}

// NewMapState declares a map cell. Options: SchemaVersion, UpgradeFrom
// (which converts values; keys are part of the state's key, and their type
// must not change).
func NewMapState[K, V any](name string, opts ...StateOption) MapState[K, V] {
	vc := newValueCodec(coder.Of[V](), opts)
	return MapState[K, V]{name: name, kc: coder.Of[K](), vc: &vc}
}

func (s MapState[K, V]) declare(spec *graph.DoFnSpec) error {
	spec.States = append(spec.States, graph.StateSpec{Name: s.name, Kind: "map", Version: s.vc.version})
	return s.vc.check(s.name)
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
		v, err := s.vc.decode(s.name, vb)
		if err != nil {
			return err
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
	vc   *valueCodec
}

// NewCombiningState declares a combining cell. Options: SchemaVersion,
// UpgradeFrom (which converts the accumulator).
func NewCombiningState[V, A, O any](name string, fn CombineFn[V, A, O], opts ...StateOption) CombiningState[V, A, O] {
	vc := newValueCodec(coder.Of[A](), opts)
	return CombiningState[V, A, O]{name: name, fn: fn, vc: &vc}
}

func (s CombiningState[V, A, O]) declare(spec *graph.DoFnSpec) error {
	spec.States = append(spec.States, graph.StateSpec{Name: s.name, Kind: "combining", Version: s.vc.version})
	return s.vc.check(s.name)
}

func (s CombiningState[V, A, O]) acc(c *Context) (A, error) {
	acc, ok, err := get[A](c, s.name, nil, s.vc)
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
	return set(c, s.name, nil, s.vc, s.fn.AddInput(acc, v))
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

func (t TimerDecl) declare(spec *graph.DoFnSpec) error {
	spec.Timers = append(spec.Timers, graph.TimerSpec{Name: t.name, Domain: t.domain})
	return nil
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
