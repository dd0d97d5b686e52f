// Package graph is the pipeline graph that the sdk builds and the runner
// executes: nodes (transforms) connected by PCollections, with the
// type-erased functions that run them.
//
// The sdk's generic, typed API wraps every user function into the small
// type-erased contracts below once, when the pipeline is built, so that the
// runner is not generic and could run graphs built by other front ends (a
// Beam pipeline through an adapter, later).
//
// Dependency direction: graph imports windowing and internal/coder. The sdk
// and the runner import graph; graph imports neither.
package graph

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/weir-dev/weir/internal/coder"
	"github.com/weir-dev/weir/windowing"
)

// ErrInvalid is wrapped by every pipeline validation error.
var ErrInvalid = errors.New("invalid pipeline")

// Elem is one element in flight: a value with its event time, its window and
// the pane it was produced in. An element is in exactly one window: an
// element assigned to several (sliding) windows travels as several Elems, as
// Beam's runners do after window assignment.
type Elem struct {
	Value  any
	Time   windowing.Time
	Window windowing.Window
	Pane   windowing.Pane
}

// Emit passes an element downstream.
type Emit func(Elem)

// Kind is the kind of a node.
type Kind uint8

// Node kinds.
const (
	KindSource Kind = iota + 1
	KindSink
	KindParDo      // element-wise; stateful when DoFn.Stateful, then keyed
	KindWindowInto // assigns windows; has a second output for late data
	KindFlatten
	KindGroupByKey    // keyed: KV[K,V] -> KV[K,[]V]
	KindCombinePerKey // keyed: KV[K,V] -> KV[K,O]
)

func (k Kind) String() string {
	switch k {
	case KindSource:
		return "Read"
	case KindSink:
		return "Write"
	case KindParDo:
		return "ParDo"
	case KindWindowInto:
		return "WindowInto"
	case KindFlatten:
		return "Flatten"
	case KindGroupByKey:
		return "GroupByKey"
	case KindCombinePerKey:
		return "CombinePerKey"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Graph is a pipeline: nodes in the order they were added (a topological
// order, since a node's inputs exist before it).
type Graph struct {
	Nodes []*Node
	PCols []*PCol
	// KeyGroups is the number of key groups of keyed state.
	KeyGroups int
	// Tables are the keyed tables the pipeline looks up (see TableSpec).
	Tables []*TableSpec

	names map[string]int
	errs  []error
}

// New returns an empty graph.
func New() *Graph { return &Graph{names: map[string]int{}} }

// Fail records a construction error; Validate returns every recorded error.
func (g *Graph) Fail(err error) { g.errs = append(g.errs, err) }

// UniqueName returns name, or name with a numeric suffix if it is taken.
func (g *Graph) UniqueName(name string) string {
	n := g.names[name]
	g.names[name] = n + 1
	if n == 0 {
		return name
	}
	return fmt.Sprintf("%s#%d", name, n+1)
}

// KVInfo describes a keyed collection, whose elements are KV[K,V].
type KVInfo struct {
	KeyType, ValueType reflect.Type
	KeyCoder           coder.Coder
	// Split returns the key and the value of an element.
	Split func(kv any) (key, value any)
	// Key returns the key of an element (without boxing its value).
	Key func(kv any) any
	// AppendKey appends the encoding of an element's key (KeyCoder's),
	// without boxing the key: the shuffle's per-element path.
	AppendKey func(dst []byte, kv any) ([]byte, error)
}

// PCol is a collection: the output of one node, the input of others.
type PCol struct {
	ID        int
	Type      reflect.Type
	Producer  *Node
	Consumers []*Node
	Strategy  windowing.Strategy
	// KV is set when the elements are KV[K,V].
	KV *KVInfo
}

func (p *PCol) String() string {
	if p.Producer == nil {
		return fmt.Sprintf("PCollection#%d", p.ID)
	}
	return fmt.Sprintf("%s.out", p.Producer.Name)
}

// Node is one transform.
type Node struct {
	ID   int
	Name string
	Kind Kind

	Inputs  []*PCol
	Outputs []*PCol
	// Sides are side inputs (ParDo only).
	Sides []*SideInput

	Source  *SourceSpec
	Sink    *SinkSpec
	DoFn    *DoFnSpec
	Window  *WindowSpec
	Combine *CombineSpec
	GBK     *GBKSpec
}

// Keyed reports whether the node runs on keyed, sharded state.
func (n *Node) Keyed() bool {
	switch n.Kind {
	case KindGroupByKey, KindCombinePerKey:
		return true
	case KindParDo:
		return n.DoFn.Stateful
	}
	return false
}

func (n *Node) String() string { return fmt.Sprintf("%s %q", n.Kind, n.Name) }

// AddNode adds a node with the given inputs and output types, and returns it.
func (g *Graph) AddNode(kind Kind, name string, inputs []*PCol, outs ...reflect.Type) *Node {
	n := &Node{ID: len(g.Nodes), Name: g.UniqueName(name), Kind: kind, Inputs: inputs}
	g.Nodes = append(g.Nodes, n)
	for _, in := range inputs {
		in.Consumers = append(in.Consumers, n)
	}
	for _, t := range outs {
		p := &PCol{ID: len(g.PCols), Type: t, Producer: n}
		if len(inputs) > 0 {
			p.Strategy = inputs[0].Strategy
		} else {
			p.Strategy = windowing.DefaultStrategy()
		}
		g.PCols = append(g.PCols, p)
		n.Outputs = append(n.Outputs, p)
	}
	return n
}

// SourceSpec is a Read: a logical name bound at launch.
type SourceSpec struct {
	Binding string
	Type    reflect.Type
	// EventTime extracts an element's event time; nil means the source's
	// own timestamp, or MinTime when it has none.
	EventTime func(v any) (windowing.Time, error)
	Watermark windowing.WatermarkStrategy
	Columns   []string
}

// SinkSpec is a Write: a logical name bound at launch.
type SinkSpec struct {
	Binding string
	Type    reflect.Type
	// Optional sinks may be left unbound; their records are counted and
	// discarded.
	Optional bool
}

// WindowSpec is a WindowInto.
type WindowSpec struct {
	Strategy windowing.Strategy
}

// GBKSpec is a GroupByKey.
type GBKSpec struct {
	ValueCoder coder.Coder
	// Make builds the output element KV[K,[]V] from a key and the values.
	Make func(key any, values []any) any
}

// CombineSpec is a CombinePerKey; the accumulator functions are Beam's
// CombineFn.
type CombineSpec struct {
	Create func() any
	Add    func(acc, v any) any
	// AddKV adds the value of element kv (a KV) to acc, without boxing
	// the value.
	AddKV    func(acc, kv any) any
	Merge    func(a, b any) any
	Extract  func(acc any) any
	AccCoder coder.Coder
	// Make builds the output element KV[K,O] from a key and an output.
	Make func(key, out any) any
	// NewCell, when set, returns a new accumulator (Create's) held
	// unboxed: adding to a boxed accumulator boxes the new one, an
	// allocation per input for most accumulator types.
	NewCell func() CombineCell
}

// CombineCell is one accumulator of a CombineSpec, held unboxed. Add, AddKV
// and Merge are the spec's, in place.
type CombineCell interface {
	Add(v any)
	AddKV(kv any)
	Merge(acc any)
	// Acc returns the accumulator, boxed.
	Acc() any
}

// Cell returns a new accumulator of c in a CombineCell: c's own (NewCell)
// or one that holds it boxed.
func (c *CombineSpec) Cell() CombineCell {
	if c.NewCell != nil {
		return c.NewCell()
	}
	return &boxedCell{c: c, acc: c.Create()}
}

type boxedCell struct {
	c   *CombineSpec
	acc any
}

func (b *boxedCell) Add(v any)     { b.acc = b.c.Add(b.acc, v) }
func (b *boxedCell) AddKV(kv any)  { b.acc = b.c.AddKV(b.acc, kv) }
func (b *boxedCell) Merge(acc any) { b.acc = b.c.Merge(b.acc, acc) }
func (b *boxedCell) Acc() any      { return b.acc }

// SideKind is how a side input is read.
type SideKind uint8

// Side input kinds.
const (
	SideSingleton SideKind = iota + 1
	SideList
	SideMap
)

// SideInput is a collection read whole, per window, by a ParDo.
type SideInput struct {
	PCol *PCol
	Kind SideKind
	// Materialize builds the view value (a T, a []T, a map[K]V) from the
	// window's elements.
	Materialize func(values []any) (any, error)
}

// DoFnSpec is a ParDo.
type DoFnSpec struct {
	// New returns a fresh instance; each worker gets its own.
	New func() DoFn
	// Stateful DoFns run keyed, with state and timers.
	Stateful bool
	// WindowAgnostic says the DoFn never looks at an element's window or
	// pane, and keeps its timestamp (Map, FlatMap, Filter): the runner may
	// run it before the WindowInto it follows, once per element instead of
	// once per window the element is assigned to.
	WindowAgnostic bool
	States         []StateSpec
	Timers         []TimerSpec
	// Unboxed, when set, builds this ParDo's input for a runner that
	// passes it its elements unboxed (see UnboxedLink): a func(I, Elem),
	// for I the input's element type, that ignores the Elem's Value. Only
	// a DoFn with no setup, no bundle hooks, no errors and no state may
	// set it (Map, FlatMap, Filter, KeyBy, Values): the runner calls the
	// function directly, outside any DoFn instance.
	Unboxed func(UnboxedLink) any
}

// An element can go from one transform of a fused chain to the next
// without being boxed into an Elem's Value (an allocation for most struct
// types) when the producer can emit it unboxed (UnboxedOut) and the
// consumer takes it so (DoFnSpec.Unboxed). The runner links the two when
// the producer's output has that one consumer.

// UnboxedLink is what a consumer's unboxed input is built from.
type UnboxedLink struct {
	// Node is the consumer.
	Node *Node
	// Active is the runner's record of the transform whose code is
	// running: the input sets it to Node while the consumer runs and
	// puts back what it was, so that a panic is blamed on the right
	// transform.
	Active **Node
	// Out is the consumer's output, boxed; or, when Unboxed is set, nil.
	Out Emit
	// Unboxed is the consumer's output passed on unboxed, a func(O,
	// Elem) for O its output's element type, or nil.
	Unboxed any
}

// UnboxedOut is implemented by a DoFn that can emit output i unboxed:
// SetUnboxedOut gives it the next transform's func(O, Elem) (see
// DoFnSpec.Unboxed) and reports whether it took it; when it did, the
// DoFn never calls the Emit the runner passes for that output.
type UnboxedOut interface {
	SetUnboxedOut(i int, f any) bool
}

// StateSpec declares a state cell of a stateful DoFn.
type StateSpec struct {
	Name string
	Kind string // "value", "bag", "map", "combining"
	// Version is the schema version the cell writes its values with.
	Version uint64
}

// TimerSpec declares a timer of a stateful DoFn.
type TimerSpec struct {
	Name   string
	Domain uint8 // state.TimeDomain
}

// DoFn is the type-erased contract of a ParDo's function.
type DoFn interface {
	// Setup is called once per instance before any element.
	Setup(x *ExecCtx) error
	// Process handles one element; x describes it.
	Process(x *ExecCtx, e Elem, out []Emit) error
	// OnTimer handles a timer firing; x describes it (x.Timer is set).
	OnTimer(x *ExecCtx, out []Emit) error
	// FinishBundle is called after each batch of elements.
	FinishBundle(x *ExecCtx, out []Emit) error
	// Teardown is called once when the instance is done.
	Teardown() error
}

// ExecCtx is what the runner tells a DoFn about the element or timer being
// processed. One ExecCtx per DoFn instance is reused for every call.
type ExecCtx struct {
	Ctx       context.Context
	Transform string
	Time      windowing.Time
	Window    windowing.Window
	Pane      windowing.Pane
	// InputWatermark is the watermark of the DoFn's input.
	InputWatermark windowing.Time
	// Now is the processing time.
	Now windowing.Time
	// Key is the element's key, for stateful DoFns.
	Key any
	// State accesses the state of Key and Window; nil unless stateful.
	State StateAccess
	// Timer is the firing timer, during OnTimer.
	Timer *FiredTimer
	// Side returns the view of side input s for Window.
	Side func(s *SideInput) (any, error)
}

// FiredTimer describes a timer that fired.
type FiredTimer struct {
	Name   string
	Domain uint8
	Time   windowing.Time
}

// StateAccess reads and writes the state cells and timers of the current key
// and window. Cells are addressed by name; multi-entry cells (bags, maps) by
// name and an entry sub-key. Arguments are not retained: the caller may reuse
// them when a call returns.
type StateAccess interface {
	Get(name string, sub []byte) ([]byte, bool, error)
	Set(name string, sub, value []byte) error
	Delete(name string, sub []byte) error
	// Clear deletes every entry of the named cell.
	Clear(name string) error
	// Scan calls fn for every entry of the named cell, in sub-key order.
	Scan(name string, fn func(sub, value []byte) error) error
	// NextSeq returns a new unique sub-key for the named bag.
	NextSeq(name string) ([]byte, error)
	SetTimer(name string, domain uint8, t windowing.Time) error
	ClearTimer(name string, domain uint8) error
}

// Validate reports every problem with the graph: construction errors first,
// then structural checks. Errors name the transform.
func (g *Graph) Validate() error {
	errs := append([]error(nil), g.errs...)
	if len(g.Nodes) == 0 {
		errs = append(errs, fmt.Errorf("%w: the pipeline has no transforms", ErrInvalid))
	}
	bindings := map[string]string{}
	for _, n := range g.Nodes {
		if n.Keyed() {
			if len(n.Inputs) != 1 || n.Inputs[0].KV == nil {
				what := "GroupByKey"
				if n.Kind == KindParDo {
					what = "state and timers"
				} else if n.Kind == KindCombinePerKey {
					what = "CombinePerKey"
				}
				errs = append(errs, fmt.Errorf("%w: %s: %s needs a keyed input (a PCollection of KV[K, V]); its input %s is not keyed", ErrInvalid, n, what, describeInputs(n)))
			}
		}
		if n.Kind == KindParDo && !n.DoFn.Stateful && (len(n.DoFn.States) > 0 || len(n.DoFn.Timers) > 0) {
			errs = append(errs, fmt.Errorf("%w: %s declares state or timers but its input %s is not keyed (state is per key: key the input with KeyBy)", ErrInvalid, n, describeInputs(n)))
		}
		var b string
		switch n.Kind {
		case KindSource:
			b = "read " + n.Source.Binding
			if prev, dup := bindings[b]; dup {
				errs = append(errs, fmt.Errorf("%w: %s and %s both read %q", ErrInvalid, prev, n, n.Source.Binding))
			}
		case KindSink:
			b = "write " + n.Sink.Binding
			if prev, dup := bindings[b]; dup {
				errs = append(errs, fmt.Errorf("%w: %s and %s both write %q", ErrInvalid, prev, n, n.Sink.Binding))
			}
		}
		if b != "" {
			bindings[b] = n.String()
		}
		for _, s := range n.Sides {
			if s.PCol.Strategy.Merging() {
				errs = append(errs, fmt.Errorf("%w: %s: a side input cannot be in merging (session) windows", ErrInvalid, n))
			}
		}
	}
	return errors.Join(errs...)
}

func describeInputs(n *Node) string {
	var s []string
	for _, in := range n.Inputs {
		s = append(s, fmt.Sprintf("%s (%s)", in, in.Type))
	}
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}

// Sources returns the logical names the pipeline reads, sorted.
func (g *Graph) Sources() []string {
	var s []string
	for _, n := range g.Nodes {
		if n.Kind == KindSource {
			s = append(s, n.Source.Binding)
		}
	}
	sort.Strings(s)
	return s
}

// Sinks returns the logical names the pipeline writes, sorted.
func (g *Graph) Sinks() []string {
	var s []string
	for _, n := range g.Nodes {
		if n.Kind == KindSink {
			s = append(s, n.Sink.Binding)
		}
	}
	sort.Strings(s)
	return s
}

// Timer domains, with the values of state.EventTime and state.ProcessingTime.
const (
	DomainEvent      uint8 = 1
	DomainProcessing uint8 = 2
)
