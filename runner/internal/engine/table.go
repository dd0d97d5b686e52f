package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/state"
)

// Tables (graph.TableSpec) live in the backend under the metadata of an
// operator id of their own, one copy per process: any instance of any stage
// may look any key up; DoFns read them through the run's context. Run loads
// each table before any stage starts, in bulk (state.Loader: sorted
// tables ingested), from its sources in turn (a snapshot, then the topic
// that continues it), and then, in a stream, follows the last of them until
// the run ends, each record replacing its key's value (a tombstone deletes
// it). Tables bypass a changelog: every start loads them again.

// Table is a table to load before the run, and maybe to follow during it.
type Table struct {
	Spec *graph.TableSpec
	// Loads are bounded sources, loaded in turn, each over what the ones
	// before loaded. The caller opened them, and closes them after Run.
	Loads []connector.Source
	// Follow, when set, opens the source that continues the last load
	// (given, read to its end), to follow until the run ends. Run closes
	// what it returns.
	Follow func(ctx context.Context, loaded connector.Source) (connector.Source, error)
}

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

// followers are the goroutines that follow tables; stop ends them and
// waits.
type followers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func (f *followers) stop() {
	if f == nil {
		return
	}
	f.cancel()
	f.wg.Wait()
}

// loadTables loads every table of cfg into the backend, and starts
// following those that say so: a follower that fails fails the run.
func (x *executor) loadTables() (*followers, error) {
	if len(x.cfg.Tables) == 0 {
		return nil, nil
	}
	raw := state.Unlogged(x.cfg.Backend)
	var follow []func(ctx context.Context) error
	for _, t := range x.cfg.Tables {
		prefix := TablePrefix(t.Spec.Binding)
		if err := raw.DeleteRange(prefix, state.PrefixEnd(prefix)); err != nil {
			return nil, err
		}
		for i, src := range t.Loads {
			if err := x.loadTable(t.Spec, src, i > 0, raw); err != nil {
				return nil, err
			}
		}
		if t.Follow == nil || len(t.Loads) == 0 {
			continue
		}
		src, err := t.Follow(x.ctx, t.Loads[len(t.Loads)-1])
		if err != nil {
			return nil, fmt.Errorf("engine: table %q: following: %w", t.Spec.Binding, err)
		}
		spec := t.Spec
		follow = append(follow, func(ctx context.Context) error {
			defer src.Close()
			_, err := readTable(ctx, src, spec, func(k, v []byte) error {
				if v == nil {
					return raw.Delete(k)
				}
				return raw.Set(k, v)
			})
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("engine: following table %q: %w", spec.Binding, err)
			}
			return nil
		})
	}
	ctx, cancel := context.WithCancel(x.ctx)
	f := &followers{cancel: cancel}
	for _, fn := range follow {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := fn(ctx); err != nil {
				x.fail(err)
			}
		}()
	}
	return f, nil
}

// loadTable loads what src holds into table t, in bulk; onto says the table
// may hold keys already (an earlier source's).
func (x *executor) loadTable(t *graph.TableSpec, src connector.Source, onto bool, raw state.Backend) error {
	begin := time.Now()
	if !src.Bounded() {
		return fmt.Errorf("engine: table %q: a table loads a snapshot or a topic up to its end, and its source has no end", t.Binding)
	}
	l := state.NewLoader(raw)
	if onto {
		l = state.NewLoaderOnto(raw)
	}
	st, err := readTable(x.ctx, src, t, l.Apply)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("engine: loading table %q: %w", t.Binding, err)
	}
	took := time.Since(begin)
	x.cfg.Logger.Info("table loaded", "table", t.Binding, "records", st.records, "unreadable", st.bad, "mb", st.bytes>>20, "took", took.Round(time.Millisecond),
		"mb_per_s", int64(float64(st.bytes)/(1<<20)/max(took.Seconds(), 1e-3)))
	return nil
}

// tableStats count what readTable applied: records, unreadable records,
// and the bytes of the keys and values set.
type tableStats struct{ records, bad, bytes int64 }

// readTable reads src's splits, round robin (a followed topic's readers
// return at once when they have nothing), and applies each record under
// its key: a tombstone deletes the key (a nil value), an unreadable record
// is counted.
func readTable(ctx context.Context, src connector.Source, t *graph.TableSpec, apply func(key, value []byte) error) (tableStats, error) {
	var st tableStats
	splits, err := src.Splits(ctx)
	if err != nil {
		return st, err
	}
	readers := make([]connector.Reader, len(splits))
	defer func() {
		for _, rd := range readers {
			if rd != nil {
				rd.Close()
			}
		}
	}()
	for i, sp := range splits {
		if readers[i], err = sp.Open(ctx); err != nil {
			return st, err
		}
	}
	buf := make([]connector.Record, 512)
	open := len(readers)
	var kb, vb []byte
	for open > 0 {
		for i, rd := range readers {
			if rd == nil {
				continue
			}
			k, rerr := rd.Read(ctx, buf)
			for _, rec := range buf[:k] {
				if rec.Tombstone && rec.Key != nil {
					key, perr := t.ParseKey(rec.Key)
					if perr == nil {
						kb, perr = t.KeyCoder.Append(kb[:0], key)
					}
					if perr != nil {
						return st, fmt.Errorf("%s: a tombstone's %w", rec.Pos, perr)
					}
					if err := apply(TableKey(t.Binding, kb), nil); err != nil {
						return st, err
					}
					st.records++
					continue
				}
				if rec.Err != nil {
					st.bad++
					continue
				}
				if kb, err = t.KeyCoder.Append(kb[:0], t.Key(rec.Value)); err == nil {
					vb, err = t.ValueCoder.Append(vb[:0], rec.Value)
				}
				if err != nil {
					return st, fmt.Errorf("%s: %w", rec.Pos, err)
				}
				if err := apply(TableKey(t.Binding, kb), append([]byte(nil), vb...)); err != nil {
					return st, err
				}
				st.records++
				st.bytes += int64(len(kb) + len(vb))
			}
			clear(buf[:k])
			switch {
			case errors.Is(rerr, io.EOF):
				rd.Close()
				readers[i] = nil
				open--
			case rerr != nil:
				return st, rerr
			}
		}
	}
	return st, nil
}
