package engine

import (
	"errors"
	"fmt"
	"io"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/windowing"
)

func (st *stage) runInstance(x *executor, i int) error {
	in := newInstance(x, st, i)
	defer in.teardown()
	switch st.kind {
	case stageSource:
		return in.runSource()
	case stageKeyed:
		return in.runKeyed()
	case stageSide:
		return in.runSide()
	}
	return fmt.Errorf("engine: unknown stage kind %d", st.kind)
}

// readerSplit is one split of a reader instance.
type readerSplit struct {
	split  connector.Split
	rd     connector.Reader
	wm     windowing.SplitWatermark
	done   bool
	opened bool
	// resumeAt is the position to open at, from a checkpoint.
	resumeAt []byte
}

// runSource reads this instance's splits (every instances-th split): in
// turn for bounded sources, interleaved for unbounded ones. Its output
// watermark is the merge of its splits' watermarks; a split not yet opened
// holds it at the start of time (at its first event time, if it knows it:
// connector.TimeBoundedSplit), a finished one no longer holds it.
func (in *instance) runSource() (err error) {
	x, st := in.x, in.st
	spec := st.head.Source
	cfg := x.cfg
	metrics := cfg.Metrics
	readCount := metrics.Read(spec.Binding)
	readerID := fmt.Sprintf("%s[%d]", st.name, in.idx)
	defer metrics.setReaderWatermark(readerID, windowing.MaxTime)

	var splits []*readerSplit
	resume := cfg.Resume[spec.Binding]
	for k := in.idx; k < len(st.splits); k += st.instances {
		rs := &readerSplit{split: st.splits[k], wm: windowing.NewSplitWatermark(spec.Watermark)}
		if r, ok := resume[rs.split.ID()]; ok {
			rs.wm.Restore(r.MaxSeen, r.Seen)
			rs.resumeAt, rs.done = r.Pos, r.Done
		}
		splits = append(splits, rs)
	}
	coord, who := x.coord, st.who+in.idx
	// states returns what a checkpoint keeps of this reader's splits.
	states := func() SplitStates {
		m := map[string]SplitState{}
		for _, s := range splits {
			ss := SplitState{Pos: s.resumeAt, Done: s.done}
			ss.MaxSeen, ss.Seen = s.wm.State()
			if s.rd != nil {
				p, ok := s.rd.(connector.Positioned)
				if !ok {
					in.fail(fmt.Errorf("engine: binding %q: the reader of %s does not report its position, so it cannot be checkpointed", spec.Binding, s.split.ID()))
				}
				ss.Pos = p.Position()
			}
			m[s.split.ID()] = ss
		}
		return SplitStates{spec.Binding: m}
	}
	if coord != nil {
		defer func() { coord.retire(who, states(), err, recover()) }()
	}
	defer func() {
		for _, s := range splits {
			if s.rd != nil {
				if cerr := s.rd.Close(); cerr != nil && err == nil {
					err = fmt.Errorf("engine: closing %s: %w", s.split.ID(), cerr)
				}
			}
		}
	}()
	bounded := st.source.Bounded()
	idleness := spec.Watermark.Idleness
	if bounded || cfg.Bounded {
		idleness = 0
	}
	in.now = in.procTime()
	merger := windowing.NewMerger(len(splits), idleness, in.now)
	emit := in.emitterFor(st.head.Outputs[0])
	dead := in.writer(x.plan.dead.port)
	buf := make([]connector.Record, cfg.BatchSize)
	open := func(s *readerSplit) {
		var rd connector.Reader
		var err error
		if s.resumeAt != nil {
			rd, err = s.split.(connector.ResumableSplit).OpenAt(x.ctx, s.resumeAt)
		} else {
			rd, err = s.split.Open(x.ctx)
		}
		if err != nil {
			in.fail(fmt.Errorf("engine: binding %q: opening %s: %w", spec.Binding, s.split.ID(), err))
		}
		s.rd, s.opened = rd, true
	}
	// ended is the watermark of a split read to its end: the end of time,
	// or with StopAtEnd where its records left it. Splits that are slices
	// of time (connector.TimeBoundedSplit: date folders, row groups) do not
	// hold each other back once read: each finished one stands at the
	// highest watermark any of them reached (sliceWM), so the history ends
	// at its last slice's watermark, not its first's.
	var sliceWM windowing.Time = windowing.MinTime
	isSlice := func(s *readerSplit) bool {
		_, ok := s.split.(connector.TimeBoundedSplit)
		return ok
	}
	ended := func(s *readerSplit) windowing.Time {
		switch {
		case !cfg.StopAtEnd:
			return windowing.MaxTime
		case isSlice(s):
			sliceWM = max(sliceWM, s.wm.Current())
			for j, o := range splits {
				if o.done && isSlice(o) {
					merger.Advance(j, sliceWM, in.now)
				}
			}
			return sliceWM
		}
		return s.wm.Current()
	}
	atEnd := false
	for i, s := range splits {
		switch {
		case s.done:
			merger.Advance(i, ended(s), in.now)
		case resume != nil:
			if _, seen := s.wm.State(); seen {
				merger.Advance(i, s.wm.Current(), in.now)
			}
		}
		// A split whose event times are known holds the watermark only
		// at its first one (less the out-of-orderness allowed: a date
		// folder's records may be that far behind the previous one's)
		// until it is read: a backfill that reads its splits in time order
		// fires its windows as it goes.
		if tb, ok := s.split.(connector.TimeBoundedSplit); ok && bounded && !s.done {
			if lo, _ := tb.EventTimeBounds(); lo > windowing.MinTime {
				merger.Advance(i, lo-1-windowing.FromDuration(spec.Watermark.OutOfOrderness), in.now)
			}
		}
		if !s.done && !bounded {
			open(s)
		}
	}
	if wm := merger.Current(); wm > in.outWM {
		// Resumed splits carry their watermark: downstream must have it
		// before any record, or data that was late before the restart
		// would not be late after it.
		in.forwardWatermark(wm)
	}
	var requests chan ckptRequest
	stopReq := cfg.Stop
	if coord != nil {
		requests = coord.requests[who]
		// With checkpoints, a stop comes as a final checkpoint request.
		stopReq = nil
	}
	next := 0
	stopped, drained := false, false
	for {
		select {
		case <-stopReq:
			stopped = true
		case <-cfg.Drain:
			drained = true
		case req := <-requests:
			in.finishBundle()
			in.flush()
			in.forwardBarrier(req.id, req.final)
			coord.ack(who, req.id, states(), false)
			stopped = req.final
		case <-x.ctx.Done():
			return nil
		default:
		}
		if stopped || drained {
			break
		}
		// Pick the split to read: the first unfinished one when
		// bounded, the next in turn when not.
		var s *readerSplit
		var si int
		for k := 0; k < len(splits); k++ {
			j := (next + k) % len(splits)
			if !splits[j].done {
				s, si = splits[j], j
				break
			}
		}
		if s == nil && cfg.StopAtEnd {
			// Everything read: wait for the final checkpoint that the
			// last reader at its end sets off.
			if !atEnd {
				atEnd = true
				in.flush()
				x.readerAtEnd()
			}
			select {
			case req := <-requests:
				in.finishBundle()
				in.flush()
				in.forwardBarrier(req.id, req.final)
				coord.ack(who, req.id, states(), false)
				stopped = req.final
			case <-x.ctx.Done():
				return nil
			}
			continue
		}
		if s == nil {
			break
		}
		if !bounded {
			next = si + 1
		}
		if !s.opened {
			open(s)
		}
		n, rerr := s.rd.Read(x.ctx, buf)
		in.now = in.procTime()
		if n > 0 {
			// Counted once per batch: two readers adding to one shared
			// counter per record contend for its cache line.
			readCount.Add(int64(n))
			maxT := windowing.MinTime
			// One guard for the batch: pipeline code that fails or
			// panics in it is named by the transform it marked active.
			in.callUser(in.st.head, func() error {
				for _, rec := range buf[:n] {
					if t, ok := in.readRecord(spec, rec, &s.wm, emit, dead); ok && t > maxT {
						maxT = t
					}
				}
				return nil
			})
			metrics.observeEventTime(maxT)
			clear(buf[:n])
			merger.Advance(si, s.wm.Current(), in.now)
		}
		switch {
		case errors.Is(rerr, io.EOF):
			s.done = true
			if err := s.rd.Close(); err != nil {
				return fmt.Errorf("engine: closing %s: %w", s.split.ID(), err)
			}
			s.rd, s.resumeAt = nil, nil
			merger.Advance(si, ended(s), in.now)
		case rerr != nil:
			if x.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("engine: binding %q: reading %s: %w", spec.Binding, s.split.ID(), rerr)
		}
		merger.Tick(in.now)
		if n > 0 {
			in.finishBundle()
		}
		if wm := merger.Current(); wm > in.outWM {
			in.forwardWatermark(wm)
			metrics.setReaderWatermark(readerID, wm)
		} else if merger.AllIdle() {
			in.markIdle()
		} else if n == 0 {
			in.flush()
		}
	}
	if stopped && !drained {
		in.finish()
		return nil
	}
	in.forwardWatermark(windowing.MaxTime)
	metrics.setReaderWatermark(readerID, windowing.MaxTime)
	in.finish()
	return nil
}

// procTime is the processing time of this run: the clock, or the start of
// time in a bounded run.
func (in *instance) procTime() windowing.Time {
	if in.x.cfg.Bounded {
		return windowing.MinTime
	}
	return in.x.cfg.Clock()
}

// readRecord emits one record read from a source and returns its event
// time, or false when the record was dead-lettered or dropped.
func (in *instance) readRecord(spec *graph.SourceSpec, rec connector.Record, wm *windowing.SplitWatermark, emit graph.Emit, dead *portWriter) (windowing.Time, bool) {
	if rec.Err != nil {
		in.deadLetter(spec, rec, rec.Err.Error(), dead)
		return 0, false
	}
	t := windowing.MinTime
	switch {
	case spec.EventTime != nil:
		var err error
		t, err = spec.EventTime(rec.Value) // in the batch's guard, the source active
		if err != nil {
			in.deadLetter(spec, rec, "event time: "+err.Error(), dead)
			return 0, false
		}
	case rec.HasTimestamp:
		t = rec.Timestamp
	}
	if t < windowing.MinTime || t > windowing.EndOfGlobalWindow {
		in.deadLetter(spec, rec, fmt.Sprintf("event time %d is out of range", int64(t)), dead)
		return 0, false
	}
	// A record outside the run's range is dropped before its time counts
	// for the watermark: history read past a handover time must not make
	// the live records that follow it late.
	if r := in.x.cfg.Range; r != nil && !r.Contains(t) {
		in.x.cfg.Metrics.OutOfRange.Add(1)
		return 0, false
	}
	wm.Observe(t)
	emit(graph.Elem{Value: rec.Value, Time: t, Window: windowing.GlobalWindow, Pane: windowing.NoFiring})
	return t, true
}

func (in *instance) deadLetter(spec *graph.SourceSpec, rec connector.Record, reason string, dead *portWriter) {
	n := in.x.cfg.Metrics.DeadLettered.Add(1)
	if in.x.cfg.DeadLetter == nil && (n <= 10 || n%10000 == 0) {
		in.x.cfg.Logger.Warn("record dead-lettered (bind --dead-letter to keep them)", "binding", spec.Binding, "position", rec.Pos, "reason", reason, "count", n)
	}
	dead.emit(graph.Elem{Value: connector.NewDeadLetter(spec.Binding, rec, reason)})
}
