package engine

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// keyedOp is a keyed operator at the head of a keyed stage instance.
type keyedOp interface {
	// process handles one element of the current batch.
	process(s *shuffled) error
	// onTimer handles a timer that fired.
	onTimer(t state.Timer) error
	// finishBundle is called after each batch of elements.
	finishBundle() error
	// beforeCheckpoint is called at a checkpoint's barrier, before the
	// state cache writes back: whatever the operator keeps outside the
	// state must be in it then.
	beforeCheckpoint() error
	// pending returns the windows the operator keeps in memory until
	// they fire (a windowOp), or nil.
	pending() *pendingPanes
}

// opID is the state-key id of a transform: a hash of its name, so that it
// stays the same across runs that share state while the name does.
func opID(name string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return h.Sum32()
}

// keyedEnv is what keyed operators share within one instance: the backend,
// the key groups owned, the timers, the current watermark and time.
//
// The operator reads and writes its state through a write-back cache of its
// own (one instance is one goroutine, so the cache needs no locks). The
// cache writes back at each checkpoint barrier, before the instance
// acknowledges it, and at the end of the run, so the shared backend holds
// the instance's state whenever the runner copies it.
type keyedEnv struct {
	in      *instance
	op      uint32
	backend *state.Cache
	lo, hi  state.KeyGroup
	// inputWM is the operator's input watermark.
	inputWM windowing.Time
	// next[domain][kg-lo] caches the earliest timer of each key group, so
	// that a watermark advance only visits groups with due timers.
	next [3][]windowing.Time
	// setDuringFire is the earliest time of the timers set since fire
	// found its current batch of due timers.
	setDuringFire windowing.Time
	due           []state.Timer // fire's batch
	sa            stateAccess
	// fixed says which of the operator's timers are fixed timers (see
	// state.SetFixedTimer): set and cleared with their time, kept without
	// an index.
	fixed func(name string) bool
}

func noFixedTimers(string) bool { return false }

func newKeyedEnv(in *instance, name string) (*keyedEnv, error) {
	cfg := in.x.cfg
	if cfg.Backend == nil {
		return nil, fmt.Errorf("engine: %s needs a state backend", name)
	}
	lo, hi := state.GroupRange(in.idx, in.st.instances, cfg.KeyGroups)
	env := &keyedEnv{in: in, op: opID(name), backend: state.NewCache(cfg.Backend, in.x.plan.cacheBytes), lo: lo, hi: hi, inputWM: windowing.MinTime, fixed: noFixedTimers}
	// The instance alone writes its operator's cells and timers in its key
	// groups: on a fresh store its cache answers misses there itself.
	if err := env.backend.Own(state.GroupRanges(env.op, lo, hi)); err != nil {
		return nil, err
	}
	for _, d := range []state.TimeDomain{state.EventTime, state.ProcessingTime} {
		env.next[d] = make([]windowing.Time, hi-lo)
		for kg := lo; kg < hi; kg++ {
			t, err := state.EarliestTimer(env.backend, env.op, kg, d)
			if err != nil {
				return nil, err
			}
			env.next[d][kg-lo] = t
		}
	}
	env.sa = stateAccess{env: env, seq: uint64(time.Now().UnixNano())}
	return env, nil
}

// The input watermark of each instance at a checkpoint's barrier is kept in
// the backend with the state, so a restored instance starts from it rather
// than from the start of time: otherwise it would decide lateness and fire
// panes against a watermark it had long passed, until every one of its
// senders has spoken again.
const inputWMMeta = "inputwm/"

func (env *keyedEnv) saveInputWatermark() error {
	k := state.MetaKey(env.op, fmt.Sprintf("%s%d", inputWMMeta, env.in.idx))
	if err := env.backend.Set(k, binary.BigEndian.AppendUint64(nil, uint64(env.inputWM))); err != nil {
		return err
	}
	if env.in.idx == 0 {
		return env.dropStaleInputWatermarks()
	}
	return nil
}

// dropStaleInputWatermarks deletes the input watermarks saved by instances
// a run with more of them had: restoredInputWatermark takes the lowest
// saved, so they would hold every later restore at their old value. No
// instance of this run writes them, so the first one may.
func (env *keyedEnv) dropStaleInputWatermarks() error {
	prefix := state.MetaKey(env.op, inputWMMeta)
	it, err := env.backend.NewIter(prefix, state.PrefixEnd(prefix))
	if err != nil {
		return err
	}
	var stale [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		idx, err := strconv.Atoi(string(it.Key()[len(prefix):]))
		if err != nil || idx >= env.in.st.instances {
			stale = append(stale, bytes.Clone(it.Key()))
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, k := range stale {
		if err := env.backend.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// restoredInputWatermark returns the lowest input watermark the instances
// of operator op saved at the checkpoint the state comes from, or MinTime.
// Every sender's watermark after a restore is at least that. It is read
// before any instance runs (plan.restore): an instance saves its own at
// each barrier.
func restoredInputWatermark(b state.Backend, op uint32) (windowing.Time, error) {
	prefix := state.MetaKey(op, inputWMMeta)
	it, err := b.NewIter(prefix, state.PrefixEnd(prefix))
	if err != nil {
		return windowing.MinTime, err
	}
	wm, found := windowing.MaxTime, false
	for ok := it.First(); ok; ok = it.Next() {
		if v := it.Value(); len(v) == 8 {
			wm, found = windowing.MinOf(wm, windowing.Time(binary.BigEndian.Uint64(v))), true
		}
	}
	if err := it.Close(); err != nil || !found {
		return windowing.MinTime, err
	}
	return wm, nil
}

// setTimer sets a timer and keeps the earliest-timer cache.
func (env *keyedEnv) setTimer(t state.Timer) error {
	return env.set(t, state.SetTimer)
}

// setNewTimer is setTimer for a timer the operator knows is not set.
func (env *keyedEnv) setNewTimer(t state.Timer) error {
	return env.set(t, state.SetNewTimer)
}

// setFixedTimer is setTimer for a fixed timer (see state.SetFixedTimer,
// and keyedEnv.fixed); isNew says it is not set.
func (env *keyedEnv) setFixedTimer(t state.Timer, isNew bool) error {
	return env.set(t, func(b state.Backend, t state.Timer) error { return state.SetFixedTimer(b, t, isNew) })
}

// set sets t with set, then lowers the earliest-timer cache of its key
// group, and the earliest time set during a firing, to its time.
func (env *keyedEnv) set(t state.Timer, set func(state.Backend, state.Timer) error) error {
	t.Op = env.op
	if err := set(env.backend, t); err != nil {
		return err
	}
	if i := t.KG - env.lo; t.Time < env.next[t.Domain][i] {
		env.next[t.Domain][i] = t.Time
	}
	if t.Time < env.setDuringFire {
		env.setDuringFire = t.Time
	}
	return nil
}

// deleteTimer clears a timer; a fixed one needs its time.
func (env *keyedEnv) deleteTimer(t state.Timer) error {
	t.Op = env.op
	if env.fixed(t.Name) {
		return state.DeleteFixedTimer(env.backend, t)
	}
	return state.DeleteTimer(env.backend, t)
}

// timerSet reports whether the timer t (as found by a search) is still
// set for its time.
func (env *keyedEnv) timerSet(t state.Timer) (bool, error) {
	if env.fixed(t.Name) {
		return state.FixedTimerSet(env.backend, t)
	}
	at, ok, err := state.TimerTime(env.backend, t)
	return ok && at == t.Time, err
}

// dueBatch is how many due timers one search of a key group finds.
const dueBatch = 256

// fire fires, in time order per key group, every timer of domain d at or
// before upTo, including timers that firing sets. It returns how many fired.
//
// One search finds up to dueBatch due timers. Firing one may delete or move
// the others (each is checked before it fires), or set a timer before them:
// then the rest of the batch is dropped and the search starts again.
func (env *keyedEnv) fire(d state.TimeDomain, upTo windowing.Time, op keyedOp) (int, error) {
	fired := 0
	// Pending windows fire after the state's timers of their key group.
	pend := op.pending()
	if d != state.EventTime || pend == nil || !pend.collect(upTo) {
		pend = nil
	}
	for kg := env.lo; kg < env.hi; kg++ {
		n, err := env.fireState(d, kg, upTo, op)
		fired += n
		if err != nil {
			return fired, err
		}
		if pend != nil {
			n, err = pend.fire(kg)
			fired += n
			if err != nil {
				return fired, err
			}
		}
	}
	clear(env.due) // drop the keys
	return fired, nil
}

// fireState fires the timers of key group kg in the state that are due at
// upTo.
func (env *keyedEnv) fireState(d state.TimeDomain, kg state.KeyGroup, upTo windowing.Time, op keyedOp) (int, error) {
	fired := 0
	i := kg - env.lo
	if env.next[d][i] > upTo {
		return 0, nil
	}
	for {
		// Timers before next[d][i] were fired and deleted (setTimer
		// lowers it for a timer set earlier), so the search starts
		// there.
		batch, err := state.DueTimers(env.backend, env.op, kg, d, env.next[d][i], upTo, env.due[:0], dueBatch)
		env.due = batch
		if err != nil {
			return fired, err
		}
		if len(batch) == 0 {
			break
		}
		env.setDuringFire = windowing.MaxTime
		for j, t := range batch {
			if j > 0 && env.setDuringFire <= t.Time {
				break // a timer set by firing goes first: search again
			}
			if j > 0 {
				ok, err := env.timerSet(t)
				if err != nil {
					return fired, err
				}
				if !ok {
					continue // deleted or moved by an earlier firing
				}
			}
			env.next[d][i] = t.Time
			if err := env.deleteTimer(t); err != nil {
				return fired, err
			}
			if err := op.onTimer(t); err != nil {
				return fired, err
			}
			fired++
		}
	}
	t, ok, err := state.NextTimerFrom(env.backend, env.op, kg, d, env.next[d][i], windowing.MaxTime)
	if err != nil {
		return fired, err
	}
	env.next[d][i] = windowing.MaxTime
	if ok {
		env.next[d][i] = t.Time
	}
	return fired, nil
}

// runKeyed runs a keyed stage instance: it owns the key groups of its range,
// processes batches, and fires timers as its input watermark and processing
// time advance.
func (in *instance) runKeyed() (err error) {
	x, st := in.x, in.st
	head := st.head
	env, err := newKeyedEnv(in, head.Name)
	if err != nil {
		return err
	}
	cached := x.cfg.Metrics.cacheGauge(in)
	defer cached.Store(0)
	var op keyedOp
	switch {
	case head.Kind == graph.KindParDo:
		op, err = newStatefulOp(env, head)
	default:
		op, err = newWindowOp(env, head)
	}
	if err != nil {
		return err
	}
	// Pipeline code runs inside the operator (DoFns, combine functions);
	// call names the transform when it fails or panics.
	call := func(f func() error) { in.callUser(head, f) }
	p := st.ports[0]
	in.now = in.procTime()
	ins := newInputs(p.inboxes[in.idx], []int{p.senders}, &in.now)
	if restored := st.restoredWM; x.coord != nil && restored > windowing.MinTime {
		ins.restore(0, restored)
		env.inputWM = restored
		in.forwardWatermark(restored)
	}
	// advance fires what the merged input watermark releases and forwards
	// it. At the end of time, processing time runs out too, and whatever
	// timers fire then (and the timers they set) fire before the end of
	// time is forwarded, so that their output is not behind it.
	advance := func() {
		wm := ins.watermark(0)
		if wm <= env.inputWM {
			return
		}
		env.inputWM = wm
		call(func() error {
			_, err := env.fire(state.EventTime, wm-1, op)
			return err
		})
		if wm >= windowing.MaxTime {
			in.now = windowing.MaxTime
			for {
				var n1, n2 int
				call(func() (err error) {
					if n1, err = env.fire(state.ProcessingTime, windowing.MaxTime, op); err != nil {
						return err
					}
					n2, err = env.fire(state.EventTime, windowing.MaxTime-1, op)
					return err
				})
				if n1+n2 == 0 {
					break
				}
			}
		}
		call(op.finishBundle)
		in.forwardWatermark(wm)
	}
	coord, who := x.coord, st.who+in.idx
	if coord != nil {
		defer func() { coord.retire(who, nil, err, recover()) }()
	}
	err = ins.run(x.ctx, in.tickInterval(), inputHandlers{
		data: func(_ int, elems []shuffled) error {
			call(func() error {
				for i := range elems {
					if err := op.process(&elems[i]); err != nil {
						return err
					}
				}
				return op.finishBundle()
			})
			x.freeBatch(elems)
			in.finishBundle()
			cached.Store(env.backend.Bytes())
			return nil
		},
		watermark: func(int) error {
			advance()
			return nil
		},
		idle: func(int) error {
			in.markIdle()
			return nil
		},
		// aligned forwards the checkpoint's barrier and pauses until the
		// checkpoint is complete: the backend then holds this instance's
		// state as of the barrier.
		aligned: func(id int64, final bool) error {
			call(op.finishBundle)
			call(op.beforeCheckpoint)
			call(env.saveInputWatermark)
			call(env.backend.WriteBack)
			in.forwardBarrier(id, final)
			coord.ack(who, id, nil, true)
			return nil
		},
		// No tick after a final checkpoint: firing processing-time
		// timers would change the state it holds.
		tick: func() error {
			in.now = in.procTime()
			call(func() error {
				_, err := env.fire(state.ProcessingTime, in.now, op)
				if err != nil {
					return err
				}
				return op.finishBundle()
			})
			in.finishBundle()
			in.flush()
			return nil
		},
	})
	if err != nil {
		return err
	}
	advance() // a stage with no senders starts at the end of time
	call(env.backend.WriteBack)
	in.finish()
	return nil
}

// stateAccess implements graph.StateAccess for the current key and window
// of a keyed operator.
type stateAccess struct {
	env    *keyedEnv
	kg     state.KeyGroup
	key    []byte
	window windowing.Window
	buf    []byte
	seq    uint64
}

func (a *stateAccess) set(kg state.KeyGroup, key []byte, w windowing.Window) {
	a.kg, a.key, a.window = kg, key, w
}

func (a *stateAccess) cellKey(name string, sub []byte) []byte {
	a.buf = state.AppendCell(a.buf[:0], state.Cell{Op: a.env.op, KG: a.kg, Key: a.key, Window: a.window, Name: name})
	return append(a.buf, sub...)
}

func (a *stateAccess) Get(name string, sub []byte) ([]byte, bool, error) {
	return a.env.backend.Get(a.cellKey(name, sub))
}

// view is Get without the copy, for the engine's own cells: the value must
// not be modified (see state.Cache.View).
func (a *stateAccess) view(name string, sub []byte) ([]byte, bool, error) {
	return a.env.backend.View(a.cellKey(name, sub))
}

func (a *stateAccess) Set(name string, sub, value []byte) error {
	return a.env.backend.Set(a.cellKey(name, sub), value)
}

// setNew is Set for a cell the operator knows the backend does not hold
// (see state.Cache.SetNew).
func (a *stateAccess) setNew(name string, sub, value []byte) error {
	return a.env.backend.SetNew(a.cellKey(name, sub), value)
}

// setNewTimer is SetTimer for a timer the operator knows is not set.
func (a *stateAccess) setNewTimer(name string, domain uint8, t windowing.Time) error {
	return a.env.setNewTimer(state.Timer{KG: a.kg, Domain: state.TimeDomain(domain), Time: t, Key: a.key, Window: a.window, Name: name})
}

// setFixedTimer sets a fixed timer of the current key and window at t, its
// time; isNew says it is not set.
func (a *stateAccess) setFixedTimer(name string, domain uint8, t windowing.Time, isNew bool) error {
	return a.env.setFixedTimer(state.Timer{KG: a.kg, Domain: state.TimeDomain(domain), Time: t, Key: a.key, Window: a.window, Name: name}, isNew)
}

// clearFixedTimer clears the fixed timer of the current key and window set
// for t.
func (a *stateAccess) clearFixedTimer(name string, domain uint8, t windowing.Time) error {
	return a.env.deleteTimer(state.Timer{KG: a.kg, Domain: state.TimeDomain(domain), Time: t, Key: a.key, Window: a.window, Name: name})
}

func (a *stateAccess) Delete(name string, sub []byte) error {
	return a.env.backend.Delete(a.cellKey(name, sub))
}

func (a *stateAccess) Clear(name string) error {
	return a.deletePrefix(append([]byte(nil), a.cellKey(name, nil)...))
}

// deletePrefix deletes every key with the prefix one by one. Point deletes
// rather than a range deletion: Pebble re-fragments the range tombstones of
// its memtable for every new iterator, so thousands of small range deletions
// (one per expired window) make every later read slow.
func (a *stateAccess) deletePrefix(prefix []byte) error {
	keys, err := state.KeysIn(a.env.backend, prefix, state.PrefixEnd(prefix))
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := a.env.backend.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func (a *stateAccess) Scan(name string, fn func(sub, value []byte) error) error {
	k := append([]byte(nil), a.cellKey(name, nil)...)
	it, err := a.env.backend.NewIter(k, state.PrefixEnd(k))
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key()[len(k):], it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	return it.Close()
}

// NextSeq returns increasing sub-keys: a counter started from the wall clock
// when the instance opened, so bag entries added after a restart still sort
// after earlier ones.
func (a *stateAccess) NextSeq(string) ([]byte, error) {
	a.seq++
	return binary.BigEndian.AppendUint64(nil, a.seq), nil
}

func (a *stateAccess) SetTimer(name string, domain uint8, t windowing.Time) error {
	return a.env.setTimer(state.Timer{KG: a.kg, Domain: state.TimeDomain(domain), Time: t, Key: a.key, Window: a.window, Name: name})
}

func (a *stateAccess) ClearTimer(name string, domain uint8) error {
	return a.env.deleteTimer(state.Timer{KG: a.kg, Domain: state.TimeDomain(domain), Key: a.key, Window: a.window, Name: name})
}

// clearWindow deletes every cell of the current key and window.
func (a *stateAccess) clearWindow() error {
	return a.deletePrefix(state.AppendWindowPrefix(nil, a.env.op, a.kg, a.key, a.window))
}

// StateOperators returns the transforms of g whose state the backend holds,
// by state id: the keyed ones, and the ParDos with side inputs (their
// buffers, at checkpoints).
func StateOperators(g *graph.Graph) map[uint32]string {
	out := map[uint32]string{}
	for _, n := range g.Nodes {
		if holdsState(n) {
			out[opID(n.Name)] = n.Name
		}
	}
	return out
}

func holdsState(n *graph.Node) bool {
	return n.Keyed() || n.DoFn != nil && len(n.Sides) > 0
}
