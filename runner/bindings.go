package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
)

// Bindings: every logical name a pipeline reads or writes is bound to a URI
// at launch, and opened through the connector of its scheme.

// checkBindings reports every logical name read or written but not bound,
// and every binding that names nothing in the pipeline.
func checkBindings(g *graph.Graph, b map[string]string) error {
	var errs []error
	known := map[string]bool{}
	for _, t := range g.Tables {
		known[t.Binding] = true
		if _, ok := b[t.Binding]; !ok {
			errs = append(errs, fmt.Errorf("%w %q: the pipeline looks it up (a table) but it is not bound; use --bind %s=URI", ErrBinding, t.Binding, t.Binding))
		}
	}
	for _, n := range g.Nodes {
		switch n.Kind {
		case graph.KindSource:
			known[n.Source.Binding] = true
			if _, ok := b[n.Source.Binding]; !ok {
				errs = append(errs, fmt.Errorf("%w %q: the pipeline reads it (%s) but it is not bound; use --bind %s=URI", ErrBinding, n.Source.Binding, n, n.Source.Binding))
			}
		case graph.KindSink:
			known[n.Sink.Binding] = true
			if _, ok := b[n.Sink.Binding]; !ok && !n.Sink.Optional {
				errs = append(errs, fmt.Errorf("%w %q: the pipeline writes it (%s) but it is not bound; use --bind %s=URI (discard:// to drop it)", ErrBinding, n.Sink.Binding, n, n.Sink.Binding))
			}
		}
	}
	var names []string
	for name := range b {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !known[name] {
			errs = append(errs, fmt.Errorf("%w %q: the pipeline has no source or sink of that name (it reads %s; writes %s)", ErrBinding, name, orNone(g.Sources()), orNone(g.Sinks())))
		}
	}
	return errors.Join(errs...)
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "nothing"
	}
	return strings.Join(s, ", ")
}

// opened are a run's opened bindings: its sources and sinks by binding,
// and the dead-letter sink (nil when unbound).
type opened struct {
	sources map[string]connector.Source
	sinks   map[string]connector.Sink
	dead    connector.Sink
}

// openBindings opens every source and sink of g, and the dead-letter sink.
// task names the writer of a scaled-out job's task (connector.SinkSpec.Task).
// On error, what did open is returned, to be closed and aborted.
func openBindings(ctx context.Context, g *graph.Graph, o *Options, task string) (*opened, error) {
	b := &opened{sources: map[string]connector.Source{}, sinks: map[string]connector.Sink{}}
	var errs []error
	for _, n := range g.Nodes {
		switch n.Kind {
		case graph.KindSource:
			u, err := connector.ParseURI(o.Bindings[n.Source.Binding])
			if err != nil {
				errs = append(errs, fmt.Errorf("%w %q: %v", ErrBinding, n.Source.Binding, err))
				continue
			}
			s, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: n.Source.Binding, URI: u, Type: n.Source.Type, Columns: n.Source.Columns, Range: o.timeRange(), Logger: o.Logger})
			if err != nil {
				errs = append(errs, bindingErr(err))
				continue
			}
			b.sources[n.Source.Binding] = s
		case graph.KindSink:
			uri, ok := o.Bindings[n.Sink.Binding]
			if !ok {
				continue // optional
			}
			u, err := connector.ParseURI(uri)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w %q: %v", ErrBinding, n.Sink.Binding, err))
				continue
			}
			s, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: n.Sink.Binding, URI: u, Type: n.Sink.Type, Task: task, Logger: o.Logger})
			if err != nil {
				errs = append(errs, bindingErr(err))
				continue
			}
			b.sinks[n.Sink.Binding] = s
		}
	}
	if o.DeadLetter != "" {
		u, err := connector.ParseURI(o.DeadLetter)
		if err == nil {
			b.dead, err = connector.OpenSink(ctx, connector.SinkSpec{Binding: "dead-letter", URI: u, Type: reflect.TypeFor[connector.DeadLetter](), Task: task, Logger: o.Logger})
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%w --dead-letter: %v", ErrBinding, err))
		}
	}
	return b, errors.Join(errs...)
}

// allSinks returns the sinks with the dead-letter sink as "dead-letter".
func (b *opened) allSinks() map[string]connector.Sink {
	all := maps.Clone(b.sinks)
	if b.dead != nil {
		all["dead-letter"] = b.dead
	}
	return all
}

// closeSources closes every source.
func (b *opened) closeSources() {
	for _, s := range b.sources {
		s.Close()
	}
}

// abort aborts every sink: nothing they were given becomes visible.
func (b *opened) abort() {
	for _, s := range b.allSinks() {
		s.Abort()
	}
}

// checkpointable reports sinks that cannot take part in checkpoints, and
// logs those whose output is only at-least-once with them.
func (b *opened) checkpointable(log *slog.Logger) error {
	all := b.allSinks()
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(all)) {
		switch all[name].(type) {
		case connector.CheckpointSink:
		case connector.ImmediateSink:
			log.Warn("with checkpoints, this sink's output is at-least-once: a restart writes again what came after the last checkpoint (a kafka:// sink can take ?delivery=exactly-once&txn-id=ID)", "binding", name)
		default:
			errs = append(errs, fmt.Errorf("%w %q: its sink cannot take part in checkpoints (what it holds until the end would be lost on a restart); bind a directory (a file:// URI ending in /) or kafka://, or leave --checkpoint-dir unset", ErrBinding, name))
		}
	}
	return errors.Join(errs...)
}

// recover lets every two-phase sink commit what checkpoint at pre-committed
// (by its handle; none when the checkpoint's directory says the sinks
// committed it already) and drop what later, incomplete checkpoints did;
// at 0, with no checkpoint to resume from, they drop everything pending.
func (b *opened) recover(ctx context.Context, at int64, handles map[string][]byte, fellBack bool) error {
	all := b.allSinks()
	if fellBack {
		if err := b.publishedNothingAfter(ctx, at); err != nil {
			return err
		}
	}
	for _, name := range slices.Sorted(maps.Keys(all)) {
		if cs, ok := all[name].(connector.CheckpointSink); ok {
			if err := cs.Recover(ctx, at, handles[name]); err != nil {
				return fmt.Errorf("runner: recovering %q at checkpoint %d: %w", name, at, err)
			}
		}
	}
	return nil
}

// publishedNothingAfter checks, before any sink recovers, that no
// two-phase sink published output of a checkpoint after at: a run that
// falls back past a lost checkpoint (checkLedger) would publish it again.
func (b *opened) publishedNothingAfter(ctx context.Context, at int64) error {
	all := b.allSinks()
	for _, name := range slices.Sorted(maps.Keys(all)) {
		cs, ok := all[name].(connector.CheckpointSink)
		if !ok {
			continue
		}
		ps, ok := cs.(connector.PublishedSink)
		if !ok {
			return fmt.Errorf("%w: resuming from %s, older than the newest completed checkpoint, which is lost: sink %q cannot tell whether it published that checkpoint's output: put the checkpoint back from a copy, or start over with a new --checkpoint-dir", ErrCheckpointDamaged, checkpointName(at), name)
		}
		p, err := ps.Published(ctx)
		if err != nil {
			return fmt.Errorf("runner: sink %q: %w", name, err)
		}
		if p > at {
			return fmt.Errorf("%w: resuming from %s, older than the newest completed checkpoint, which is lost: sink %q: %w (%s), and would publish it again: put the lost checkpoint back from a copy, or start over with a new --checkpoint-dir", ErrCheckpointDamaged, checkpointName(at), name, connector.ErrPublishedAhead, checkpointName(p))
		}
	}
	return nil
}

// commit commits every sink, in the order of their names, then the
// dead-letter sink: output becomes visible only now. The first sink that
// fails to commit stops the others, which are aborted; committed lists
// the sinks committed before it.
func (b *opened) commit(ctx context.Context) (committed []string, err error) {
	names := slices.Sorted(maps.Keys(b.sinks))
	commit := func(name string, s connector.Sink) error {
		if err := s.Commit(ctx); err != nil {
			return fmt.Errorf("runner: committing %q: %w", name, err)
		}
		return nil
	}
	for i, name := range names {
		if err := commit(name, b.sinks[name]); err != nil {
			for _, rest := range names[i+1:] {
				b.sinks[rest].Abort()
			}
			if b.dead != nil {
				b.dead.Abort()
			}
			return names[:i], err
		}
	}
	if b.dead != nil {
		if err := commit("dead-letter", b.dead); err != nil {
			return names, err
		}
	}
	return names, nil
}

// bounded reports a source that does not end, which a backfill cannot read.
func (b *opened) bounded(o *Options) error {
	for _, name := range slices.Sorted(maps.Keys(b.sources)) {
		if !b.sources[name].Bounded() {
			return fmt.Errorf("%w %q: %s is unbounded; a backfill needs bounded input (use --mode=stream)", ErrBinding, name, o.Bindings[name])
		}
	}
	return nil
}

// bindingError is a connector's error about a binding, reported as
// `runner: binding "x": ...` and matching both ErrBinding and the
// connector's own sentinel with errors.Is.
type bindingError struct {
	msg string
	err error
}

func (e *bindingError) Error() string   { return e.msg }
func (e *bindingError) Unwrap() []error { return []error{ErrBinding, e.err} }

func bindingErr(err error) error {
	return &bindingError{msg: ErrBinding.Error() + " " + strings.TrimPrefix(err.Error(), "binding "), err: err}
}
