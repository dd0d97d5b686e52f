// Package discard is the discard:// connector: a sink that counts the values
// written to it and drops them, for benchmarks and for pipelines run for
// their side effects or metrics. It has no sources.
//
// Dependency direction: discard imports only io/connector, and registers
// itself under "discard" in init.
package discard

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/weir-dev/weir/io/connector"
)

// Scheme is the URI scheme of this connector.
const Scheme = "discard"

func init() { connector.Register(Scheme, discardConnector{}) }

type discardConnector struct{}

func (discardConnector) OpenSource(_ context.Context, spec connector.SourceSpec) (connector.Source, error) {
	return nil, fmt.Errorf("discard: %s: discard:// can only be written to: %w", spec.URI.Redacted(), connector.ErrUnsupported)
}

func (discardConnector) OpenSink(ctx context.Context, spec connector.SinkSpec) (connector.Sink, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &Sink{}, nil
}

// Sink is the sink discard:// opens. It is safe for concurrent use.
type Sink struct {
	n atomic.Int64
}

// Write counts values and drops them.
func (s *Sink) Write(ctx context.Context, values []any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.n.Add(int64(len(values)))
	return nil
}

// Commit does nothing.
func (s *Sink) Commit(ctx context.Context) error { return nil }

// Abort does nothing.
func (s *Sink) Abort() error { return nil }

// Count returns the number of values written so far.
func (s *Sink) Count() int64 { return s.n.Load() }

// PreCommit, CommitCheckpoint and Recover make the sink a
// connector.CheckpointSink with nothing to commit: a run with checkpoints
// neither refuses it nor warns that its output is at-least-once.
func (s *Sink) PreCommit(context.Context, int64) ([]byte, error) { return nil, nil }

// CommitCheckpoint does nothing.
func (s *Sink) CommitCheckpoint(context.Context, int64) error { return nil }

// Recover does nothing.
func (s *Sink) Recover(context.Context, int64, []byte) error { return nil }
