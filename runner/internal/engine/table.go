package engine

import (
	"github.com/weir-dev/weir/state"
)

// Tables (graph.TableSpec) live in the backend under the metadata of an
// operator id of their own, one copy per process: any instance of any stage
// may look any key up. The runner loads them (TableKey) before Run and
// keeps them current; DoFns read them through the run's context.

// TableKey is the backend key of key in the table bound as binding.
func TableKey(binding string, key []byte) []byte {
	return state.MetaKey(opID("table "+binding), "t"+string(key))
}

// TablePrefix is the prefix of every key of the table bound as binding.
func TablePrefix(binding string) []byte {
	return state.MetaKey(opID("table "+binding), "t")
}

type tableReader struct{ b state.Backend }

func (r tableReader) Lookup(binding string, key []byte) ([]byte, bool, error) {
	return r.b.Get(TableKey(binding, key))
}
