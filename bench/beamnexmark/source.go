package beamnexmark

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/core/sdf"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/io/rtrackers/offsetrange"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"

	"github.com/weir-dev/weir/io/nexmark/model"
)

func init() {
	register.DoFn4x1[context.Context, *sdf.LockRTracker, Split, func(beam.EventTime, model.Event), error](&generateFn{})
	register.Emitter2[beam.EventTime, model.Event]()
}

// Split is one of the Of parts of the generated events: the events at
// positions K, K+Of, K+2·Of, ..., as split K of nexmark://?splits=Of.
type Split struct {
	K, Of int64
}

// size is the number of events of the split when there are n in all.
func (sp Split) size(n int64) int64 {
	if sp.K >= n {
		return 0
	}
	return (n-1-sp.K)/sp.Of + 1
}

// generate generates the events of cfg, in splits parts, each part the
// events of the same split of nexmark://: an Impulse of the splits
// (beam.Create), then a splittable DoFn that generates a split's events
// from an offset range, each with its event time, and counts them as job's
// (see counted). Prism splits the ranges while they run (unless told not
// to: Options.NoSplits), which is how the generation spreads over the
// cores.
func generate(s beam.Scope, cfg model.Config, splits int, job int64) beam.PCollection {
	s = s.Scope("nexmark.Events")
	parts := make([]Split, splits)
	for k := range parts {
		parts[k] = Split{K: int64(k), Of: int64(splits)}
	}
	return beam.ParDo(s, &generateFn{Config: cfg, Job: job}, beam.Create(s, anys(parts)...))
}

func anys[T any](vs []T) []any {
	out := make([]any, len(vs))
	for i, v := range vs {
		out[i] = v
	}
	return out
}

// generateFn generates the events of a split, and counts them as job's.
// The restriction is the range of the split's own event indexes: index i is
// position K + i·Of.
type generateFn struct {
	Config model.Config
	Job    int64
}

func (fn *generateFn) CreateInitialRestriction(sp Split) offsetrange.Restriction {
	c := fn.Config
	c.EnsureDefaults()
	return offsetrange.Restriction{Start: 0, End: sp.size(c.Events)}
}

func (fn *generateFn) SplitRestriction(_ Split, r offsetrange.Restriction) []offsetrange.Restriction {
	return []offsetrange.Restriction{r}
}

func (fn *generateFn) RestrictionSize(_ Split, r offsetrange.Restriction) float64 {
	return r.Size()
}

func (fn *generateFn) CreateTracker(r offsetrange.Restriction) *sdf.LockRTracker {
	return sdf.NewLockRTracker(offsetrange.NewTracker(r))
}

// Generators stop, in this process, when a run is cancelled: prism's
// cancellation of a job does not reach a bundle that its SDK worker is
// running, and a generator left running would take the cores from the next
// run. Runs are one at a time, so one flag serves.
// startedGenerators counts the generator bundles a run has started: once
// one has, the run's SDK worker is up.
var (
	abortGenerators   atomic.Bool
	activeGenerators  atomic.Int64
	startedGenerators atomic.Int64
)

func (fn *generateFn) ProcessElement(ctx context.Context, rt *sdf.LockRTracker, sp Split, emit func(beam.EventTime, model.Event)) error {
	startedGenerators.Add(1)
	activeGenerators.Add(1)
	defer activeGenerators.Add(-1)
	g, err := model.NewGenerator(fn.Config)
	if err != nil {
		return fmt.Errorf("beamnexmark: %w", err)
	}
	n := int64(0)
	for i := rt.GetRestriction().(offsetrange.Restriction).Start; rt.TryClaim(i); i++ {
		if i%1024 == 0 && (abortGenerators.Load() || ctx.Err() != nil) {
			return errors.New("beamnexmark: generator cancelled")
		}
		e := g.Event(sp.K + i*sp.Of)
		ts, _ := e.Time() // a generated event always has one
		emit(beam.EventTime(ts), e)
		n++
	}
	count(fn.Job, n, 0, 0)
	return nil
}
