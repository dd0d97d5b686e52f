package runner

import (
	"context"
	"fmt"
	"net/url"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/runner/internal/engine"
	"github.com/weir-dev/weir/state"
)

// runChangelog is a run's state changelog (a state.ChangeLogStore: a
// kafka:// changelog, or any other store registered for its scheme) and the
// base of its lineage: where the changelog of the job's first run (the one
// that started with empty state) begins. Changes before it belong to jobs
// that are gone.
type runChangelog struct {
	log  state.ChangeLogStore
	base state.ChangeLogPosition
}

func (c *runChangelog) Close() { c.log.Close() }

// changelogMeta is what a checkpoint keeps of the changelog.
type changelogMeta struct {
	URI    string                  `json:"uri"`
	Handle []byte                  `json:"handle,omitempty"` // the transaction pre-committed with the checkpoint
	Base   state.ChangeLogPosition `json:"base"`
}

// openChangelog opens the run's changelog, if it has one, and returns the
// function that rebuilds state from it. Before anything reads the
// changelog, the transaction of the checkpoint resumed from is committed
// and whatever a crashed run wrote after it is aborted.
func openChangelog(ctx context.Context, g *graph.Graph, o *Options, t *task, resume *checkpointMetaFile, committed bool) (*runChangelog, func(state.Backend) error, error) {
	if o.Changelog == "" {
		if resume != nil && resume.Changelog != nil {
			return nil, nil, optErr("changelog", " is unset, but checkpoint %d keeps its state in the changelog %s, not in the checkpoint: pass --changelog", resume.ID, resume.Changelog.URI)
		}
		return nil, nil, nil
	}
	var (
		at     int64
		handle []byte
	)
	if resume != nil {
		if resume.Changelog == nil {
			return nil, nil, optErr("changelog", ": checkpoint %d was taken without a changelog (it keeps a copy of the state): resume without --changelog, or start over with a new --checkpoint-dir", resume.ID)
		}
		if prefix(resume.Changelog.URI) != prefix(o.Changelog) {
			return nil, nil, optErr("changelog", " %s: checkpoint %d keeps its state in %s", o.Changelog, resume.ID, resume.Changelog.URI)
		}
		at, handle = resume.ID, resume.Changelog.Handle
		if committed {
			handle = nil // committed already: only abort what came after
		}
	}
	cfg := state.ChangeLogConfig{Operators: engine.StateOperators(g), KeyGroups: g.KeyGroups}
	if t != nil {
		cfg.Tasks, cfg.Task = t.of, t.id
	}
	log, err := state.OpenChangeLog(ctx, o.Changelog, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("runner: --changelog: %w", err)
	}
	c := &runChangelog{log: log}
	if err := log.Recover(ctx, at, handle); err != nil {
		log.Close()
		return nil, nil, fmt.Errorf("runner: changelog at checkpoint %d: %w", at, err)
	}
	if resume != nil {
		c.base = resume.Changelog.Base
	} else if c.base, err = log.End(ctx); err != nil {
		log.Close()
		return nil, nil, fmt.Errorf("runner: --changelog: %w", err)
	}
	restore := func(b state.Backend) error {
		l := state.NewLoader(b)
		st, err := log.Restore(ctx, c.base, l.Apply)
		if cerr := l.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("runner: restoring checkpoint %d from the changelog: %w", at, err)
		}
		mb := float64(st.Bytes) / (1 << 20)
		o.Logger.Info("state restored from changelog", "checkpoint", at, "records", st.Records, "mb", int64(mb),
			"took", st.Took.Round(1e6), "mb_per_s", int64(mb/max(st.Took.Seconds(), 1e-3)))
		return nil
	}
	return c, restore, nil
}

// prefix is the changelog a URI names: its brokers may change, not its
// topic prefix.
func prefix(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	return u.Path
}
