package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/windowing"
)

// sinkWriter writes one binding's values to its sink from one goroutine.
type sinkWriter struct {
	who     int // checkpoint participant number
	binding string
	sink    connector.Sink
	port    *port
	dead    bool
}

func (s *sinkWriter) run(x *executor) (err error) {
	if x.coord != nil {
		defer func() { x.coord.retire(s.who, nil, err, recover()) }()
	}
	if s.port.senders == 0 {
		return nil
	}
	written := x.cfg.Metrics.Written(s.binding)
	cs, _ := s.sink.(connector.CheckpointSink)
	// aligned pre-commits the checkpoint's output, waits for the
	// checkpoint to complete, and commits it.
	aligned := func(id int64, _ bool) error {
		var handle []byte
		if cs != nil {
			var err error
			if handle, err = cs.PreCommit(x.ctx, id); err != nil {
				return fmt.Errorf("engine: pre-committing %q for checkpoint %d: %w", s.binding, id, err)
			}
		}
		x.coord.ackSink(s.who, id, s.binding, handle)
		if cs != nil {
			if err := cs.CommitCheckpoint(x.ctx, id); err != nil {
				return fmt.Errorf("engine: committing %q for checkpoint %d: %w", s.binding, id, err)
			}
		}
		x.sinkCommitted(id)
		return nil
	}
	vals := make([]any, 0, x.cfg.BatchSize)
	var now windowing.Time // a sink writer has no use for processing time
	ins := newInputs(s.port.inboxes[0], []int{s.port.senders}, &now)
	return ins.run(x.ctx, 0, inputHandlers{
		data: func(_ int, elems []shuffled) error {
			vals = vals[:0]
			for _, e := range elems {
				vals = append(vals, e.e.Value)
			}
			if s.sink != nil {
				if err := s.sink.Write(x.ctx, vals); err != nil {
					if errors.Is(err, context.Canceled) {
						return err
					}
					return fmt.Errorf("engine: writing %q: %w", s.binding, err)
				}
			}
			x.freeBatch(elems)
			if s.dead && s.sink == nil {
				return nil // counted by the readers
			}
			written.Add(int64(len(vals)))
			return nil
		},
		aligned: aligned,
	})
}
