package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/runner/internal/engine"
	"github.com/weir-dev/weir/state"
)

// Tables (sdk.NewTable) are loaded into the state backend before the
// pipeline runs, in bulk (state.Loader: sorted tables ingested), from their
// binding: a snapshot's files, or a topic up to its end offsets at launch;
// or a snapshot and then the topic that continues it (--table-topic).
// In stream mode a topic is then followed, each record replacing its key's
// value, until the run ends. Tables bypass the changelog: every start
// loads them again from their source.

// tableLoad is the running part of the tables: the topics followed.
type tableLoad struct {
	errs chan error
	n    int
}

// loadTables loads every table of g into b, and starts following the topics
// (in stream mode) until ctx ends. Wait on the result before closing b.
func loadTables(ctx context.Context, g *graph.Graph, o *Options, b state.Backend, log *slog.Logger, fail context.CancelCauseFunc) (*tableLoad, error) {
	tl := &tableLoad{errs: make(chan error, len(g.Tables))}
	raw := state.Unlogged(b)
	for _, t := range g.Tables {
		prefix := engine.TablePrefix(t.Binding)
		if err := raw.DeleteRange(prefix, state.PrefixEnd(prefix)); err != nil {
			return tl, err
		}
		// The binding, then the --table-topic if any: a snapshot, then
		// the topic that continues it.
		uris := []string{o.Bindings[t.Binding]}
		if topic, ok := o.TableTopics[t.Binding]; ok {
			u, err := connector.ParseURI(topic)
			if err == nil {
				_, err = connector.ContinuerOf(u)
			}
			if err != nil {
				return tl, fmt.Errorf("%w: --table-topic %s=%s: a table continues from a topic that can be followed: %v", ErrBinding, t.Binding, topic, err)
			}
			uris = append(uris, topic)
		}
		for i, uri := range uris {
			follow, err := loadTable(ctx, t, uri, i > 0, raw, log)
			if err != nil {
				return tl, err
			}
			if follow == nil || o.Mode == Backfill || i < len(uris)-1 {
				if follow != nil {
					follow.Close()
				}
				continue
			}
			tl.n++
			go func(t *graph.TableSpec, src connector.Source) {
				defer src.Close()
				_, _, _, err := readTable(ctx, src, t, func(k, v []byte) error {
					if v == nil {
						return raw.Delete(k)
					}
					return raw.Set(k, v)
				})
				if ctx.Err() != nil {
					err = nil
				}
				if err != nil {
					err = fmt.Errorf("runner: following table %q: %w", t.Binding, err)
					fail(err)
				}
				tl.errs <- err
			}(t, follow)
		}
	}
	for name := range o.TableTopics {
		if !slices.ContainsFunc(g.Tables, func(t *graph.TableSpec) bool { return t.Binding == name }) {
			return tl, fmt.Errorf("%w: --table-topic %s: the pipeline has no table of that name", ErrBinding, name)
		}
	}
	return tl, nil
}

// loadTable loads what uri holds into table t: a snapshot to its end, or a
// topic to its end offsets now, for which it returns the source that
// follows the topic from there (to close if unused). onto says the table
// may hold keys already (a snapshot was loaded first).
func loadTable(ctx context.Context, t *graph.TableSpec, uri string, onto bool, raw state.Backend, log *slog.Logger) (connector.Source, error) {
	begin := time.Now()
	u, err := connector.ParseURI(uri)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrBinding, t.Binding, err)
	}
	// A topic is loaded to its end now, then followed from there.
	from := u
	cont, _ := connector.ContinuerOf(u)
	live := false
	if cont != nil {
		u, live = cont.UntilNow(u)
	}
	src, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: t.Binding, URI: u, Type: t.Type})
	if err != nil {
		return nil, bindingErr(fmt.Errorf("binding %q: %w", t.Binding, err))
	}
	defer src.Close()
	if !src.Bounded() {
		return nil, fmt.Errorf("%w %q: a table loads a snapshot or a topic (kafka://): %s has no end to load to", ErrBinding, t.Binding, uri)
	}
	l := state.NewLoader(raw)
	if onto {
		l = state.NewLoaderOnto(raw)
	}
	n, bad, size, err := readTable(ctx, src, t, l.Apply)
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("runner: loading table %q from %s: %w", t.Binding, uri, err)
	}
	took := time.Since(begin)
	log.Info("table loaded", "table", t.Binding, "from", uri, "records", n, "unreadable", bad, "mb", size>>20, "took", took.Round(time.Millisecond),
		"mb_per_s", int64(float64(size)/(1<<20)/max(took.Seconds(), 1e-3)))
	if !live {
		return nil, nil
	}
	// Follow the topic from where the load ended.
	h, ok := cont.HandoverOf(src)
	if !ok {
		return nil, fmt.Errorf("runner: table %q: %s does not say where its load ended, so it cannot be followed", t.Binding, uri)
	}
	fu, _, err := cont.After(from, h)
	if err != nil {
		return nil, fmt.Errorf("runner: table %q: following %s: %w", t.Binding, uri, err)
	}
	follow, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: t.Binding, URI: fu, Type: t.Type})
	if err != nil {
		return nil, bindingErr(fmt.Errorf("binding %q: %w", t.Binding, err))
	}
	return follow, nil
}

// wait returns once every followed topic has stopped (ctx ended), with the
// first error.
func (tl *tableLoad) wait() error {
	var errs []error
	for ; tl.n > 0; tl.n-- {
		errs = append(errs, <-tl.errs)
	}
	return errors.Join(errs...)
}

// readTable reads src's splits, in turn for a bounded source and round
// robin for a followed topic, and applies each record under its key.
func readTable(ctx context.Context, src connector.Source, t *graph.TableSpec, apply func(key, value []byte) error) (n, bad, size int64, err error) {
	splits, err := src.Splits(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	readers := make([]connector.Reader, len(splits))
	for i, sp := range splits {
		if readers[i], err = sp.Open(ctx); err != nil {
			return n, bad, size, err
		}
		defer readers[i].Close()
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
						return n, bad, size, fmt.Errorf("%s: a tombstone's %w", rec.Pos, perr)
					}
					if err := apply(engine.TableKey(t.Binding, kb), nil); err != nil {
						return n, bad, size, err
					}
					n++
					continue
				}
				if rec.Err != nil {
					bad++
					continue
				}
				if kb, err = t.KeyCoder.Append(kb[:0], t.Key(rec.Value)); err == nil {
					vb, err = t.ValueCoder.Append(vb[:0], rec.Value)
				}
				if err != nil {
					return n, bad, size, fmt.Errorf("%s: %w", rec.Pos, err)
				}
				if err := apply(engine.TableKey(t.Binding, kb), append([]byte(nil), vb...)); err != nil {
					return n, bad, size, err
				}
				n++
				size += int64(len(kb) + len(vb))
			}
			clear(buf[:k])
			switch {
			case errors.Is(rerr, io.EOF):
				readers[i] = nil
				open--
			case rerr != nil:
				return n, bad, size, rerr
			}
		}
	}
	return n, bad, size, nil
}
