package runner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
)

// A job scaled out over a Kafka consumer group (Options.Group) runs as
// tasks, Samza's way: task p reads partition p of every source topic, and
// has its own state, its own checkpoints (CheckpointDir/task-p, which every
// process of the job shares), its own changelog partition and its own
// sink transactions and files (connector.SinkSpec.Task). A process runs the
// tasks the group assigns it, each as a run of its own (a part with its
// task), side by side.
//
// When the group rebalances, every process stops all its tasks, each with
// a final checkpoint, before the group hands out the tasks again (the
// eager protocol); a task that moves resumes on its new process from that
// checkpoint: its state from the checkpoint's copy or the changelog (or
// reused, when the process ran the task before and its state directory is
// still at that checkpoint), its output transactions committed or aborted
// by the same transactional id, which fences the task's previous owner.
// A process that dies without leaving is dropped when its session times
// out, and its tasks resume elsewhere from their latest checkpoints.
//
// Results are right only when every key a keyed transform groups by is in
// one partition: the input topics are partitioned by the key the pipeline
// groups by (a producer keyed by it does that), as Samza and Kafka Streams
// require of co-partitioned inputs.

// task is task id of a job of `of` tasks; its checkpoints' positions go
// to the group.
type task struct {
	id, of int32
	group  committer
}

// name names the task in directories, files and transactional ids; "" for
// a job that is not scaled out.
func (t *task) name() string {
	if t == nil {
		return ""
	}
	return fmt.Sprintf("task-%d", t.id)
}

// taskDir is directory name under dir, which is a path or a URI.
func taskDir(dir, name string) string {
	if strings.Contains(dir, "://") {
		if u, err := url.Parse(dir); err == nil {
			u.Path = path.Join(u.Path, name)
			return u.String()
		}
	}
	return filepath.Join(dir, name)
}

// forTask returns the options of a run of task t: its sources read its
// partition, and its state and checkpoints are in directories of its own.
func (o Options) forTask(t *task, sources []string, memory int64) (Options, error) {
	o.Bindings = maps.Clone(o.Bindings)
	for _, name := range sources {
		u, err := url.Parse(o.Bindings[name])
		if err != nil {
			return o, fmt.Errorf("%w %q: %v", ErrBinding, name, err)
		}
		q := u.Query()
		q.Set("partitions", strconv.Itoa(int(t.id)))
		u.RawQuery = q.Encode()
		o.Bindings[name] = u.String()
	}
	if o.StateDir != "" {
		o.StateDir = filepath.Join(o.StateDir, t.name())
	}
	o.CheckpointDir = taskDir(o.CheckpointDir, t.name())
	o.Memory = memory
	o.Logger = o.Logger.With("task", t.id)
	return o, nil
}

// taskRun is a running task.
type taskRun struct {
	stop, drain chan struct{}
	cancel      context.CancelFunc
	done        chan struct{}
	stopped     bool // stop closed
	drained     bool // drain closed
	lost        bool // cancelled: another process may own the task now
}

// groupEvent is a task's end: an error, or nil when it ran to its end
// (task -1: the group's).
type groupEvent struct {
	task int32
	err  error
}

func (ev groupEvent) error() error {
	if ev.task < 0 {
		return fmt.Errorf("runner: --group: %w", ev.err)
	}
	return fmt.Errorf("runner: task %d: %w", ev.task, ev.err)
}

// post queues ev for runGroup's loop; it never blocks.
func (gr *groupRun) post(ev groupEvent) {
	gr.evMu.Lock()
	gr.events = append(gr.events, ev)
	gr.evMu.Unlock()
	select {
	case gr.notify <- struct{}{}:
	default:
	}
}

// take returns the queued events and empties the queue.
func (gr *groupRun) take() []groupEvent {
	gr.evMu.Lock()
	defer gr.evMu.Unlock()
	evs := gr.events
	gr.events = nil
	return evs
}

// groupRun is a process of a scaled-out job. mu guards everything below it;
// the group's callbacks and the task goroutines take it.
type groupRun struct {
	ctx     context.Context
	g       *graph.Graph
	opts    Options
	sources []string // the source bindings
	budget  memoryBudget
	member  connector.Membership // set before ready is closed
	ready   chan struct{}        // the group's callbacks wait for it
	// notify says events has something; evMu guards events.
	notify chan struct{}
	evMu   sync.Mutex
	events []groupEvent

	mu       sync.Mutex
	of       int32 // the number of tasks, once assigned
	running  map[int32]*taskRun
	closing  bool // start no task
	ran      int  // task runs started
	res      Result
	finished map[int32]bool
}

func runGroup(ctx context.Context, g *graph.Graph, opts Options) (*Result, error) {
	if len(opts.TableTopics) > 0 {
		// Each task would load and follow its own copy; allowed, but say so.
		opts.Logger.Warn("every task of the group loads its own copy of the tables", "tables", strings.Join(slices.Sorted(maps.Keys(opts.TableTopics)), ","))
	}
	gr := &groupRun{
		ctx: ctx, g: g, opts: opts, sources: g.Sources(), budget: memoryBudget(opts.Memory),
		notify:   make(chan struct{}, 1),
		ready:    make(chan struct{}),
		running:  map[int32]*taskRun{},
		finished: map[int32]bool{},
		res:      Result{Mode: opts.Mode, Read: map[string]int64{}, Written: map[string]int64{}, Late: map[string]int64{}},
	}
	uris := make([]string, len(gr.sources))
	for i, name := range gr.sources {
		uris[i] = opts.Bindings[name]
	}
	start := time.Now()
	member, err := connector.JoinGroup(ctx, connector.GroupConfig{
		Sources: uris, Group: opts.Group, SessionTimeout: opts.GroupSessionTimeout, RebalanceTimeout: opts.GroupRebalanceTimeout,
		Assigned: gr.assigned, Revoked: gr.revoked, Lost: gr.lost,
	})
	if err != nil {
		return nil, fmt.Errorf("%w --group %s: %v", ErrBinding, opts.Group, err)
	}
	gr.member = member
	close(gr.ready)
	opts.Logger.Info("joined consumer group", "group", opts.Group, "sources", strings.Join(gr.sources, ","))
	result := func(err error) (*Result, error) {
		gr.close()
		member.Close() // stops what still runs (Revoked), and leaves
		gr.mu.Lock()
		defer gr.mu.Unlock()
		res := gr.res
		res.Elapsed = time.Since(start)
		return &res, err
	}
	// A process whose tasks have all ended learns that the others' have
	// from their directories: a rebalance may never come to tell it.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if gr.idle() && gr.allFinished() {
				opts.Logger.Info("every task of the group ran to its end")
				return result(nil)
			}
		case <-ctx.Done():
			gr.close()
			gr.cancelAll()
			return result(ctx.Err())
		case <-opts.Stop:
			gr.mu.Lock()
			gr.closing = true
			gr.res.Stopped = true
			gr.mu.Unlock()
			gr.revoked()
			return result(nil)
		case <-opts.Drain:
			gr.mu.Lock()
			gr.closing = true
			gr.res.Drained = true
			gr.mu.Unlock()
			if err := gr.drainAll(); err != nil {
				return result(err)
			}
			return result(nil)
		case <-gr.notify:
			var errs []error
			for _, ev := range gr.take() {
				if ev.err != nil {
					errs = append(errs, ev.error())
				}
			}
			if len(errs) > 0 {
				gr.close()
				gr.cancelAll()
				return result(errors.Join(errs...))
			}
			if gr.allFinished() {
				opts.Logger.Info("every task of the group ran to its end")
				return result(nil)
			}
		}
	}
}

// assigned starts the tasks the group gave this process.
func (gr *groupRun) assigned(tasks []int32, of int32, err error) {
	<-gr.ready
	if err != nil {
		gr.post(groupEvent{task: -1, err: err})
		return
	}
	gr.mu.Lock()
	defer gr.mu.Unlock()
	gr.of = of
	if gr.closing {
		return
	}
	gr.opts.Logger.Info("tasks assigned", "tasks", fmt.Sprint(tasks), "of", of)
	memory := int64(0)
	if gr.budget > 0 && len(tasks) > 0 {
		memory = max(int64(gr.budget)/int64(len(tasks)), minMemory)
	}
	idle := true
	for _, id := range tasks {
		if gr.running[id] != nil {
			continue
		}
		if gr.taskFinishedLocked(id) {
			continue
		}
		if err := gr.startLocked(&task{id: id, of: of, group: gr.member}, memory); err != nil {
			gr.post(groupEvent{task: id, err: err})
			return
		}
		idle = false
	}
	if idle {
		// Nothing to run here: maybe the whole job has ended.
		gr.post(groupEvent{task: -1})
	}
}

func (gr *groupRun) startLocked(t *task, memory int64) error {
	opts, err := gr.opts.forTask(t, gr.sources, memory)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(gr.ctx)
	tr := &taskRun{stop: make(chan struct{}), drain: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	opts.Stop, opts.Drain = tr.stop, tr.drain
	gr.running[t.id] = tr
	gr.ran++
	go func() {
		defer close(tr.done)
		defer cancel()
		res, err := runOnce(ctx, gr.g, opts, part{task: t})
		gr.mu.Lock()
		delete(gr.running, t.id)
		gr.addLocked(res)
		lost := tr.lost
		if err == nil && res != nil && !res.Stopped {
			gr.finished[t.id] = true
		}
		gr.mu.Unlock()
		switch {
		case lost:
			opts.Logger.Warn("task stopped: the process left the group", "err", err)
		case err != nil:
			gr.post(groupEvent{task: t.id, err: err})
		case !res.Stopped:
			gr.post(groupEvent{task: t.id})
		}
	}()
	return nil
}

// addLocked adds a task run's counts to the process's.
func (gr *groupRun) addLocked(r *Result) {
	if r == nil {
		return
	}
	gr.res.add(r)
	gr.res.PartlyCommitted = append(gr.res.PartlyCommitted, r.PartlyCommitted...)
}

// close starts no task from now on.
func (gr *groupRun) close() {
	gr.mu.Lock()
	gr.closing = true
	gr.mu.Unlock()
}

// revoked stops every task with a final checkpoint and waits for them: the
// group hands them out again when it returns.
func (gr *groupRun) revoked() {
	gr.wait(func(tr *taskRun) {
		// A draining task runs to its end: it fires and commits
		// everything, and is then finished, so nothing is handed over.
		if !tr.stopped && !tr.drained {
			tr.stopped = true
			close(tr.stop)
		}
	})
}

// lost cancels every task: another process may own them already, so
// nothing more may be committed.
func (gr *groupRun) lost() {
	gr.opts.Logger.Warn("this process lost its place in the group (its session expired, or the group failed it): cancelling its tasks")
	gr.cancelAll()
}

func (gr *groupRun) cancelAll() {
	gr.wait(func(tr *taskRun) {
		tr.lost = true
		tr.cancel()
	})
}

// drainAll drains every task and waits for them.
func (gr *groupRun) drainAll() error {
	gr.wait(func(tr *taskRun) {
		if !tr.drained {
			tr.drained = true
			close(tr.drain)
		}
	})
	var errs []error
	for _, ev := range gr.take() {
		if ev.err != nil {
			errs = append(errs, ev.error())
		}
	}
	return errors.Join(errs...)
}

// wait applies f to every running task and waits for them all to end.
func (gr *groupRun) wait(f func(*taskRun)) {
	gr.mu.Lock()
	var dones []chan struct{}
	for _, tr := range gr.running {
		f(tr)
		dones = append(dones, tr.done)
	}
	gr.mu.Unlock()
	for _, d := range dones {
		<-d
	}
}

// taskFinishedLocked reports whether task id ran to its end, here or in
// another process.
func (gr *groupRun) taskFinishedLocked(id int32) bool {
	if gr.finished[id] {
		return true
	}
	cs, err := openCheckpointStore(taskDir(gr.opts.CheckpointDir, (&task{id: id}).name()))
	if err != nil || !cs.finished() {
		return false
	}
	gr.finished[id] = true
	return true
}

// idle reports whether the process runs no task.
func (gr *groupRun) idle() bool {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	return len(gr.running) == 0
}

// allFinished reports whether every task of the job ran to its end.
func (gr *groupRun) allFinished() bool {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	if gr.of == 0 {
		return false
	}
	for id := range gr.of {
		if !gr.taskFinishedLocked(id) {
			return false
		}
	}
	return true
}
