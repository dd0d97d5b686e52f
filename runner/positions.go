package runner

import (
	"context"
	"log/slog"
	"sync"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/runner/internal/engine"
)

// positionCommitter tells the sources that report where the job reads
// (connector.PositionCommitter: a Kafka source's consumer group) the
// positions of each completed checkpoint. It runs in a goroutine of its
// own, off the checkpoint's path: a slow or unreachable broker delays the
// report, never the job. Only the newest checkpoint's positions wait to
// be sent.
type positionCommitter struct {
	sources map[string]committer
	log     *slog.Logger
	ctx     context.Context

	mu      sync.Mutex
	pending engine.SplitStates // newest positions not sent yet; guarded by mu
	wake    chan struct{}
	done    chan struct{}
}

// committer takes a completed checkpoint's positions by split id: a
// connector.PositionCommitter, or a scaled-out job's group membership.
type committer interface {
	CommitPositions(ctx context.Context, positions map[string][]byte) error
}

// startPositionCommitter starts a committer for the sources that take
// positions, or returns nil if none does. A task of a scaled-out job
// reports every source's positions to its group instead (group).
func startPositionCommitter(ctx context.Context, sources map[string]connector.Source, group committer, log *slog.Logger) *positionCommitter {
	pc := &positionCommitter{sources: map[string]committer{}, log: log, ctx: ctx,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	for b, s := range sources {
		if group != nil {
			pc.sources[b] = group
		} else if c, ok := s.(connector.PositionCommitter); ok {
			pc.sources[b] = c
		}
	}
	if len(pc.sources) == 0 {
		return nil
	}
	go pc.run()
	return pc
}

// committed hands over the split states of a completed checkpoint.
func (pc *positionCommitter) committed(splits engine.SplitStates) {
	if pc == nil {
		return
	}
	pc.mu.Lock()
	pc.pending = splits
	pc.mu.Unlock()
	select {
	case pc.wake <- struct{}{}:
	default:
	}
}

// close sends what is pending and waits for the goroutine.
func (pc *positionCommitter) close() {
	if pc == nil {
		return
	}
	close(pc.wake)
	<-pc.done
}

func (pc *positionCommitter) run() {
	defer close(pc.done)
	for range pc.wake {
		pc.mu.Lock()
		splits := pc.pending
		pc.pending = nil
		pc.mu.Unlock()
		for b, src := range pc.sources {
			pos := map[string][]byte{}
			for id, st := range splits[b] {
				if len(st.Pos) > 0 {
					pos[id] = st.Pos
				}
			}
			if len(pos) == 0 {
				continue
			}
			if err := src.CommitPositions(pc.ctx, pos); err != nil {
				pc.log.Warn("reporting the checkpoint's positions to the source's system failed; the job goes on", "binding", b, "err", err)
			}
		}
	}
}
