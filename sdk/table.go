package sdk

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"

	"github.com/weir-dev/weir/internal/coder"
	"github.com/weir-dev/weir/internal/graph"
)

// Table is a keyed table a pipeline looks up (Samza's side inputs, a
// stream-table join's table): bound at launch by name like a source, to a
// snapshot (file://, hdfs://: Parquet or JSON Lines) or a compacted topic
// (kafka://), it is loaded into the state backend in bulk before the
// pipeline runs and, from a topic, kept current while it runs. Any DoFn
// looks keys up locally with Get. A record whose key comes again replaces
// the earlier one; lookups see the latest value read (processing time,
// not event time: use a stateful join for event-time versions).
type Table[K comparable, V any] struct {
	binding string
	kc, vc  coder.Coder
}

// NewTable declares the table bound as name, whose records are V, keyed by
// key.
func NewTable[K comparable, V any](p *Pipeline, name string, key func(V) K) Table[K, V] {
	t := Table[K, V]{binding: name, kc: coder.Of[K](), vc: coder.Of[V]()}
	if name == "" {
		p.g.Fail(fmt.Errorf("%w: NewTable: empty logical name", graph.ErrInvalid))
	}
	for _, other := range p.g.Tables {
		if other.Binding == name {
			p.g.Fail(fmt.Errorf("%w: NewTable %q: declared twice", graph.ErrInvalid, name))
		}
	}
	p.g.Tables = append(p.g.Tables, &graph.TableSpec{
		Binding: name, Type: reflect.TypeFor[V](), KeyCoder: t.kc, ValueCoder: t.vc,
		Key:      func(v any) any { return key(v.(V)) },
		ParseKey: parseKey[K],
	})
	return t
}

// parseKey reads a K from a message key written the way a kafka:// sink
// writes one: strings as they are, integers in decimal, the rest as JSON.
func parseKey[K comparable](b []byte) (any, error) {
	var k K
	v := reflect.ValueOf(&k).Elem()
	switch v.Kind() {
	case reflect.String:
		v.SetString(string(b))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("key %q is not an integer", b)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(string(b), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("key %q is not an unsigned integer", b)
		}
		v.SetUint(n)
	default:
		if err := json.Unmarshal(b, &k); err != nil {
			return nil, fmt.Errorf("key %q: %v", b, err)
		}
	}
	return k, nil
}

// Get returns the value of key k, and whether the table has one.
func (t Table[K, V]) Get(c *Context, k K) (V, bool, error) {
	var zero V
	r := graph.TablesOf(c.Context())
	if r == nil {
		return zero, false, fmt.Errorf("sdk: table %q: no tables in this run", t.binding)
	}
	kb, err := t.kc.Append(nil, k)
	if err != nil {
		return zero, false, fmt.Errorf("sdk: table %q: encoding key %v: %w", t.binding, k, err)
	}
	b, ok, err := r.Lookup(t.binding, kb)
	if err != nil || !ok {
		return zero, false, err
	}
	v, err := t.vc.Decode(b)
	if err != nil {
		return zero, false, fmt.Errorf("sdk: table %q: value of key %v: %w", t.binding, k, err)
	}
	return v.(V), true, nil
}
