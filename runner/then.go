package runner

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/fsys"
	"github.com/weir-dev/weir/windowing"
)

// Backfill, then stream. The job runs twice on one checkpoint directory:
//
//  1. History: a stream run on Bindings that stops when every source has
//     been read to its end (engine StopAtEnd): a final checkpoint, the
//     windows past the history's watermark still open, the state kept.
//  2. Live: a stream run resumed from that checkpoint, with the sources
//     named in Then bound to their topics, starting where the history ends.
//
// Each checkpoint says its phase, so a restart resumes the right one. At
// the seam nothing is missed or read twice: with a handover file the live
// topic starts at the offsets that follow the copied history; with an
// event time T the history keeps what is before T and the live part what
// is at or after it, the topic starting at the first offset whose record
// timestamp is T (exact when record timestamps are the event times).

// handover is an event time, or a handover file's content.
type handover struct {
	at   time.Time
	file connector.Handover
}

func parseHandover(s string) (handover, error) {
	if t, err := parseTimeFlag(s); err == nil {
		return handover{at: t}, nil
	}
	u, err := connector.ParseURI(s)
	if err != nil {
		return handover{}, err
	}
	f, p, err := fsys.Resolve(u)
	if err != nil {
		return handover{}, optErr("handover", " %s: neither a time nor a handover file: %v", s, err)
	}
	b, err := fsys.ReadFile(f, p)
	if err != nil {
		return handover{}, optErr("handover", " %s: %v", s, err)
	}
	return handover{file: b}, nil
}

// liveBindings returns the bindings of the live part: each source named in
// Then, set by its connector (a connector.Continuer) to start where the
// history ends.
func liveBindings(o *Options, h handover) (map[string]string, error) {
	out := maps.Clone(o.Bindings)
	matched := false
	for _, name := range slices.Sorted(maps.Keys(o.Then)) {
		uri := o.Then[name]
		if _, ok := o.Bindings[name]; !ok {
			return nil, fmt.Errorf("%w: --then %s: no history binding of that name", ErrBinding, name)
		}
		u, err := connector.ParseURI(uri)
		var c connector.Continuer
		if err == nil {
			c, err = connector.ContinuerOf(u)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: --then %s=%s: the live part of a backfill-then-stream job reads a source that continues the history: %v", ErrBinding, name, uri, err)
		}
		if h.file == nil {
			out[name] = c.At(u, windowing.FromTime(h.at)).String()
			continue
		}
		v, about, err := c.After(u, h.file)
		if err != nil {
			return nil, optErr("handover", " %s, for --then %s: %v", o.Handover, name, err)
		}
		matched = matched || about
		out[name] = v.String()
	}
	if h.file != nil && !matched {
		return nil, optErr("handover", " %s: no --then binding reads the stream it hands over", o.Handover)
	}
	return out, nil
}

func runBackfillThenStream(ctx context.Context, g *graph.Graph, opts Options) (*Result, error) {
	h, err := parseHandover(opts.Handover)
	if err != nil {
		return nil, err
	}
	live, err := liveBindings(&opts, h)
	if err != nil {
		return nil, err
	}
	store, err := openCheckpointStore(opts.CheckpointDir)
	if err != nil {
		return nil, err
	}
	last, _, err := store.latest()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	total := &Result{Mode: BackfillThenStream}
	if last == nil || last.Phase != "live" {
		hist := opts
		hist.Mode, hist.Then, hist.Handover = Stream, nil, ""
		if !h.at.IsZero() && (hist.To.IsZero() || h.at.Before(hist.To)) {
			hist.To = h.at
		}
		log.Info("backfill: reading the history", "handover", opts.Handover)
		res, err := runOnce(ctx, g, hist, part{phase: "history", stopAtEnd: true})
		if res != nil {
			total.add(res)
		}
		if err != nil {
			return total, err
		}
		if closed(opts.Stop) || closed(opts.Drain) {
			// Stopped or drained during the history: a restart resumes
			// it (a drain has fired everything and finished the job).
			total.Stopped, total.Drained = res.Stopped, res.Drained
			return total, nil
		}
	}
	lv := opts
	lv.Mode, lv.Then, lv.Handover, lv.Bindings = Stream, nil, "", live
	if !h.at.IsZero() && (lv.From.IsZero() || lv.From.Before(h.at)) {
		lv.From = h.at
	}
	log.Info("stream: continuing live", "bindings", fmt.Sprint(opts.Then))
	res, err := runOnce(ctx, g, lv, part{phase: "live"})
	if res != nil {
		total.add(res)
		total.Stopped, total.Drained, total.PartlyCommitted = res.Stopped, res.Drained, res.PartlyCommitted
	}
	return total, err
}

func closed(ch <-chan struct{}) bool {
	if ch == nil {
		return false
	}
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
