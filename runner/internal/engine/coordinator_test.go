package engine

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// A participant that fails retires saying so, and the checkpoint in
// flight never completes: the participant never got to its barrier, so
// the state and positions would not match (a keyed worker that failed on
// the element before a stop's barrier would have let the final checkpoint
// resume the next run past that element). One that ends cleanly lets the
// checkpoint complete.
func TestFailedParticipantStopsTheCheckpoint(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want int
	}{{"clean", nil, 1}, {"failed", errors.New("decoding state"), 0}} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			stop := make(chan struct{})
			completed := 0
			cfg := &Config{CheckpointInterval: time.Hour, Stop: stop, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				OnCheckpoint: func(int64, bool, SplitStates, map[string][]byte) error { completed++; return nil }}
			x := &executor{cfg: cfg, ctx: ctx, cancel: cancel}
			co := newCoordinator(x)
			reader, keyed := co.join(true), co.join(false)
			done := make(chan error, 1)
			go func() { done <- co.run() }()
			close(stop) // a final checkpoint
			req := <-co.requests[reader]
			co.ack(reader, req.id, nil, false)
			co.retire(keyed, nil, c.err, nil)
			if c.err == nil {
				co.retire(reader, nil, nil, nil)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the coordinator did not end")
			}
			if completed != c.want {
				t.Errorf("%d checkpoints completed, want %d", completed, c.want)
			}
		})
	}
}
