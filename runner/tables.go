package runner

import (
	"context"
	"fmt"
	"net/url"
	"slices"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/runner/internal/engine"
)

// Tables (sdk.NewTable) are bound like sources: to a snapshot's files, or a
// topic, or a snapshot and then the topic that continues it
// (--table-topic). The runner opens them; the engine loads them before the
// pipeline runs and, in a stream, follows the topic (engine/table.go).

// openTables opens the sources of every table of g: each binding, loaded
// to its end now (a topic up to its end offsets at launch), and the
// --table-topic that continues it, if any; in stream mode, the last of
// them that does not end by itself is followed from where its load ends.
// close closes what was opened, whatever the error.
func openTables(ctx context.Context, g *graph.Graph, o *Options) (tables []engine.Table, close func(), err error) {
	var opened []connector.Source
	close = func() {
		for _, s := range opened {
			s.Close()
		}
	}
	for name := range o.TableTopics {
		if !slices.ContainsFunc(g.Tables, func(t *graph.TableSpec) bool { return t.Binding == name }) {
			return nil, close, fmt.Errorf("%w: --table-topic %s: the pipeline has no table of that name", ErrBinding, name)
		}
	}
	for _, t := range g.Tables {
		uris := []string{o.Bindings[t.Binding]}
		if topic, ok := o.TableTopics[t.Binding]; ok {
			u, err := connector.ParseURI(topic)
			if err == nil {
				_, err = connector.ContinuerOf(u)
			}
			if err != nil {
				return nil, close, fmt.Errorf("%w: --table-topic %s=%s: a table continues from a topic that can be followed: %v", ErrBinding, t.Binding, topic, err)
			}
			uris = append(uris, topic)
		}
		et := engine.Table{Spec: t}
		for i, uri := range uris {
			u, err := connector.ParseURI(uri)
			if err != nil {
				return nil, close, fmt.Errorf("%w %q: %v", ErrBinding, t.Binding, err)
			}
			// A topic is loaded to where it ends now, then followed from
			// there.
			from, live := u, false
			cont, _ := connector.ContinuerOf(u)
			if cont != nil {
				u, live = cont.UntilNow(u)
			}
			src, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: t.Binding, URI: u, Type: t.Type})
			if err != nil {
				return nil, close, bindingErr(fmt.Errorf("binding %q: %w", t.Binding, err))
			}
			opened = append(opened, src)
			if !src.Bounded() {
				return nil, close, fmt.Errorf("%w %q: a table loads a snapshot or a topic up to its end: %s has no end to load to", ErrBinding, t.Binding, uri)
			}
			et.Loads = append(et.Loads, src)
			if live && o.Mode != Backfill && i == len(uris)-1 {
				et.Follow = follower(t, cont, from)
			}
		}
		tables = append(tables, et)
	}
	return tables, close, nil
}

// follower opens the source that follows a table's topic from where its
// load ended.
func follower(t *graph.TableSpec, cont connector.Continuer, from *url.URL) func(context.Context, connector.Source) (connector.Source, error) {
	return func(ctx context.Context, loaded connector.Source) (connector.Source, error) {
		h, ok := cont.HandoverOf(loaded)
		if !ok {
			return nil, fmt.Errorf("%s does not say where its load ended", from.Redacted())
		}
		fu, _, err := cont.After(from, h)
		if err != nil {
			return nil, err
		}
		return connector.OpenSource(ctx, connector.SourceSpec{Binding: t.Binding, URI: fu, Type: t.Type})
	}
}
