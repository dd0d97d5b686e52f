package graph

import (
	"context"
	"reflect"

	"github.com/weir-dev/weir/internal/coder"
)

// TableSpec is a keyed table (Samza's side inputs): bound at launch like a
// source (a Parquet or JSON Lines snapshot, or a compacted topic), loaded
// into the state backend before the pipeline runs, kept current from the
// topic, and looked up by key from any DoFn.
type TableSpec struct {
	Binding    string
	Type       reflect.Type // of the records, the table's values
	KeyCoder   coder.Coder
	ValueCoder coder.Coder
	// Key returns a record's key.
	Key func(v any) any
	// ParseKey reads a key from a source's own record key (a Kafka
	// message key, as a kafka:// sink's ?key= writes it), for the records
	// that delete their key (tombstones).
	ParseKey func(b []byte) (any, error)
}

// TableReader looks keys up in the loaded tables: the encoded value under
// an encoded key of the table bound as binding.
type TableReader interface {
	Lookup(binding string, key []byte) (value []byte, ok bool, err error)
}

type tablesKey struct{}

// WithTables returns ctx carrying r, for the DoFns run under it.
func WithTables(ctx context.Context, r TableReader) context.Context {
	return context.WithValue(ctx, tablesKey{}, r)
}

// TablesOf returns the table reader ctx carries, or nil.
func TablesOf(ctx context.Context) TableReader {
	r, _ := ctx.Value(tablesKey{}).(TableReader)
	return r
}
