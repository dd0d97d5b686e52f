package runner

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/weir-dev/weir/runner/internal/engine"
)

// A stop ends the process within a bounded time. Main stops a run on the
// first SIGINT or SIGTERM (drains it on SIGUSR1) and aborts it on the
// second; a run stuck in a call that never returns (an HDFS namenode that
// hangs, a disk that froze) would otherwise keep the process up for good.
// So Main gives up on the run --stop-timeout after the first signal, and
// abortGrace after the second: it says in one line what it abandoned (the
// checkpoint being written, the output not committed) and exits 1, leaving
// the stuck call to die with the process. What it abandons is what a kill
// -9 at that moment would leave: the next run resumes from the last
// completed checkpoint, which the unfinished one never replaced.

// abortGrace is how long an abort (the second signal) waits for the run to
// end before Main gives up on it.
const abortGrace = 5 * time.Second

// stopSignals turns signals into a run's stop, drain and abort, and
// reports on giveUp when the run has had its time to end. It returns once
// done is closed or it has given up; the caller waits for that.
type stopSignals struct {
	log         *slog.Logger
	stopTimeout time.Duration // after the first stop or drain; 0: none
	abortGrace  time.Duration
	stop, drain chan<- struct{}
	abort       func()
	// giveUp receives why Main gives up on the run: "stop" or "abort",
	// with how long it waited.
	giveUp chan<- string
}

// watch handles sigs until done is closed.
func (s *stopSignals) watch(sigs <-chan os.Signal, done <-chan struct{}) {
	stopping, draining := false, false
	var deadline <-chan time.Time // when Main gives up on the run
	var why string
	arm := func(d time.Duration, reason string) {
		if d > 0 {
			deadline, why = time.After(d), fmt.Sprintf("the run did not end within %s of the %s", d, reason)
		}
	}
	for {
		select {
		case <-done:
			return
		case <-deadline:
			s.giveUp <- why
			return
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGUSR1 && !draining && !stopping:
				draining = true
				s.log.Info("drain requested: stop reading, fire every window, flush sinks")
				close(s.drain)
				arm(s.stopTimeout, "drain")
			case sig != syscall.SIGUSR1 && !stopping:
				stopping = true
				s.log.Info("stop requested; send it again to abort")
				close(s.stop)
				if deadline == nil {
					arm(s.stopTimeout, "stop")
				}
			case sig != syscall.SIGUSR1:
				s.log.Warn("aborting", "gives_up_in", s.abortGrace)
				s.abort()
				arm(s.abortGrace, "abort")
			}
		}
	}
}

// activity is what a run is doing, as far as a stop needs to know to say
// what it abandons: the checkpoints written and being written, and
// whether the sinks are committing. Main keeps one for the process and
// hands it to the runs in their context. Its methods are safe for
// concurrent use and do nothing on a nil activity.
type activity struct {
	// failed receives, once, why the run failed in a way it may not end
	// from by itself (its state's disk is full: a write waits for room
	// that is not coming); Main then gives it abortGrace to end.
	failed   chan error
	failOnce sync.Once

	mu struct {
		sync.Mutex
		// stores are the checkpoint stores' progress, by name, in the
		// order the runs opened them.
		stores     []*storeActivity
		committing bool
	}
}

// storeActivity is the progress of the checkpoints of one store.
type storeActivity struct {
	name    string
	done    int64 // the newest completed checkpoint (0: none)
	writing int64 // the checkpoint being written (0: none)
	marking int64 // the checkpoint whose sinks' commit is being recorded (0: none)
}

type activityKey struct{}

func withActivity(ctx context.Context, a *activity) context.Context {
	return context.WithValue(ctx, activityKey{}, a)
}

// activityOf returns the activity of ctx, or nil.
func activityOf(ctx context.Context) *activity {
	a, _ := ctx.Value(activityKey{}).(*activity)
	return a
}

// trackCheckpoints records in ctx's activity the checkpoints cfg's engine
// writes into store, starting after cfg.FirstCheckpointID (the checkpoint
// resumed from). Call it once cfg's checkpoint callbacks are set.
func trackCheckpoints(ctx context.Context, cfg *engine.Config, store fmt.Stringer) {
	a := activityOf(ctx)
	if a == nil || cfg.OnCheckpoint == nil {
		return
	}
	st := &storeActivity{name: store.String(), done: cfg.FirstCheckpointID}
	a.mu.Lock()
	a.mu.stores = append(a.mu.stores, st)
	a.mu.Unlock()
	write := cfg.OnCheckpoint
	cfg.OnCheckpoint = func(id int64, final bool, splits engine.SplitStates, sinks map[string][]byte) error {
		a.mu.Lock()
		st.writing = id
		a.mu.Unlock()
		err := write(id, final, splits, sinks)
		a.mu.Lock()
		if st.writing = 0; err == nil {
			st.done = id
		}
		a.mu.Unlock()
		return err
	}
	if mark := cfg.OnCommitted; mark != nil {
		cfg.OnCommitted = func(id int64) {
			a.mu.Lock()
			st.marking = id
			a.mu.Unlock()
			mark(id)
			a.mu.Lock()
			st.marking = 0
			a.mu.Unlock()
		}
	}
}

func newActivity() *activity { return &activity{failed: make(chan error, 1)} }

// fail reports the run's failure to Main (see failed).
func (a *activity) fail(err error) {
	if a == nil {
		return
	}
	a.failOnce.Do(func() { a.failed <- err })
}

// committing records that the sinks are committing the run's output.
func (a *activity) committing() {
	if a == nil {
		return
	}
	a.mu.Lock()
	a.mu.committing = true
	a.mu.Unlock()
}

// abandoned says, in one line, what giving up on the run now abandons.
func (a *activity) abandoned() string {
	if a == nil {
		return "abandoned the run"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	var parts []string
	if a.mu.committing {
		p := "abandoned the sinks' commit under way: part of the output may be committed"
		if len(a.mu.stores) == 0 {
			p += ", as a kill -9 there would leave it"
		}
		parts = append(parts, p)
	}
	for _, st := range a.mu.stores {
		var p string
		if st.marking != 0 {
			p = fmt.Sprintf("abandoned recording in %s that checkpoint %d's output is committed (the next run recovers the sinks from that checkpoint); ", st.name, st.marking)
		}
		if st.writing != 0 {
			p += fmt.Sprintf("abandoned checkpoint %d being written in %s (incomplete: never resumed from); ", st.writing, st.name)
		}
		switch {
		case st.done == 0:
			p += fmt.Sprintf("no checkpoint in %s completed: the next run starts from the beginning", st.name)
		case a.mu.committing:
			p += fmt.Sprintf("the next run recovers the sinks from checkpoint %d in %s", st.done, st.name)
		default:
			p += fmt.Sprintf("output after checkpoint %d in %s is not committed: the next run resumes from it", st.done, st.name)
		}
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return "abandoned the run: its output is not committed"
	}
	return strings.Join(parts, "; ")
}
