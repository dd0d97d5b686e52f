package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/weir-dev/weir/io/connector"
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
	al := newAligner(s.port.senders)
	// aligned pre-commits the checkpoint's output, waits for the
	// checkpoint to complete, and commits it.
	aligned := func(id int64) error {
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
	eos := 0
	vals := make([]any, 0, x.cfg.BatchSize)
	var replay []msg
	for {
		var m msg
		if len(replay) > 0 {
			m, replay = replay[0], replay[1:]
		} else {
			select {
			case m = <-s.port.inboxes[0]:
			case <-x.ctx.Done():
				return context.Cause(x.ctx)
			}
		}
		if al.hold(m) {
			continue
		}
		switch m.kind {
		case msgBarrier:
			if al.barrier(m) {
				if err := aligned(al.id); err != nil {
					return err
				}
				replay = append(al.done(), replay...)
			}
		case msgEOS:
			eos++
			if al.end(m.sender) {
				if err := aligned(al.id); err != nil {
					return err
				}
				replay = append(al.done(), replay...)
			}
			if eos == s.port.senders {
				return nil
			}
		case msgData:
			vals = vals[:0]
			for _, e := range m.elems {
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
			x.freeBatch(m.elems)
			if s.dead && s.sink == nil {
				continue // counted by the readers
			}
			written.Add(int64(len(vals)))
		}
	}
}
