package sdk

import (
	"fmt"
	"reflect"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/windowing"
)

// Read declares an input by logical name. What it reads (files, a topic) is
// bound at launch (--bind name=URI); records are decoded into T. Without
// EventTime, elements take the source's own timestamp (a Kafka record's), or
// the start of time when the source has none.
//
// Options: EventTime, OutOfOrderness, Idleness, Columns, Named.
func Read[T any](p *Pipeline, name string, opts ...Option) PCollection[T] {
	o := collect(opts)
	transform := fmt.Sprintf("Read %q", name)
	o.only(p.g, transform, "EventTime", "OutOfOrderness", "Idleness", "Columns")
	t := reflect.TypeFor[T]()
	if o.eventTime != nil && o.eventTimeType != t {
		p.g.Fail(fmt.Errorf("%w: %s: EventTime takes a %s but the source reads %s", graph.ErrInvalid, transform, o.eventTimeType, t))
	}
	if name == "" {
		p.g.Fail(fmt.Errorf("%w: Read: empty logical name", graph.ErrInvalid))
	}
	if err := o.wm.Validate(); err != nil {
		p.g.Fail(fmt.Errorf("%w: %s: %v", graph.ErrInvalid, transform, err))
	}
	n := p.g.AddNode(graph.KindSource, o.nameOr("Read("+name+")"), nil, t)
	n.Source = &graph.SourceSpec{Binding: name, Type: t, EventTime: o.eventTime, Watermark: o.wm, Columns: o.columns}
	return output[T](p, n, 0)
}

// EventTime sets how a source finds an element's event time. An error (a
// missing or invalid timestamp) sends the record to the dead-letter sink with
// the error as its reason.
func EventTime[T any](fn func(T) (Time, error)) Option {
	return optionFunc{"EventTime", func(o *options) {
		o.eventTimeType = reflect.TypeFor[T]()
		o.eventTime = func(v any) (windowing.Time, error) { return fn(v.(T)) }
	}}
}

// OutOfOrderness sets the source's watermark delay: how far behind the highest
// event time seen an element may arrive without being late. Default 0.
func OutOfOrderness(d time.Duration) Option {
	return optionFunc{"OutOfOrderness", func(o *options) { o.wm.OutOfOrderness = d }}
}

// Idleness sets how long a split of an unbounded source may be silent before
// it stops holding the watermark back. Default 0: never.
func Idleness(d time.Duration) Option {
	return optionFunc{"Idleness", func(o *options) { o.wm.Idleness = d }}
}

// Columns names the fields the pipeline needs, so columnar formats can read
// only those. By default every field of T is read.
func Columns(names ...string) Option {
	return optionFunc{"Columns", func(o *options) { o.columns = names }}
}

// Write declares an output by logical name, bound at launch. Every Write must
// be bound unless it is Optional.
//
// Options: Optional, Named.
func Write[T any](in PCollection[T], name string, opts ...Option) {
	if !in.valid() {
		panic("sdk: Write of a zero PCollection")
	}
	p := in.p
	o := collect(opts)
	transform := fmt.Sprintf("Write %q", name)
	o.only(p.g, transform, "Optional")
	if name == "" {
		p.g.Fail(fmt.Errorf("%w: Write: empty logical name", graph.ErrInvalid))
	}
	t := reflect.TypeFor[T]()
	n := p.g.AddNode(graph.KindSink, o.nameOr("Write("+name+")"), []*graph.PCol{in.col})
	n.Sink = &graph.SinkSpec{Binding: name, Type: t, Optional: o.optional}
}

// Optional lets a Write stay unbound at launch; its records are then counted
// and dropped.
func Optional() Option {
	return optionFunc{"Optional", func(o *options) { o.optional = true }}
}
