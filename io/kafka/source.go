package kafka

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/io/codec"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/windowing"
)

var errUnknownTopic = kerr.UnknownTopicOrPartition

// PollInterval is how long a partition reader waits for records before it
// returns empty-handed, so the runner can see idleness and stop requests.
const PollInterval = 50 * time.Millisecond

type source struct {
	o      *options
	spec   connector.SourceSpec
	decode func([]byte) (any, error)
	splits []connector.Split
	// ids are the topic's and its cluster's when the source opened, which
	// every position stores and OpenAt checks.
	ids splitPos
	// health watches the brokers through every client of the source.
	health *brokerHealth

	// adm commits offsets to the group (group=); made at the first
	// commit, closed by Close.
	mu  sync.Mutex
	adm *kadm.Client
}

func (kafkaConnector) OpenSource(ctx context.Context, spec connector.SourceSpec) (connector.Source, error) {
	o, err := parseURI(spec.URI)
	if err != nil {
		return nil, err
	}
	if o.key != "" {
		return nil, fmt.Errorf("%w: key= applies to sinks only", ErrBadURI)
	}
	log := spec.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &source{o: o, spec: spec, health: newBrokerHealth(log, o.topic)}
	if s.decode, err = decoder(o, spec.Type); err != nil {
		return nil, err
	}
	cl, err := newClient(o)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ps, ids, err := describeTopic(ctx, adm, o)
	if err != nil {
		return nil, err
	}
	s.ids = ids
	if o.only != nil {
		if ps, err = onlyPartitions(o, ps); err != nil {
			return nil, err
		}
	}
	start, err := startOffsets(ctx, adm, o)
	if err != nil {
		return nil, err
	}
	for p, off := range o.offsets {
		if _, ok := start[p]; !ok {
			return nil, fmt.Errorf("%w: offsets=: topic %q has no partition %d", ErrBadURI, o.topic, p)
		}
		start[p] = off
	}
	var end map[int32]int64
	if o.until.kind != "" {
		// Sources read committed data only, so a bound never lies past
		// the last stable offset, where a read_committed consumer could
		// wait for an open transaction for ever.
		if end, err = offsets(ctx, adm, o, position{kind: "committed"}); err != nil {
			return nil, err
		}
		if o.until.kind == "time" {
			at, err := offsets(ctx, adm, o, o.until)
			if err != nil {
				return nil, err
			}
			for p, off := range at {
				if off >= 0 && off < end[p] {
					end[p] = off
				}
			}
		}
	}
	for _, p := range ps {
		sp := &split{src: s, partition: p, start: start[p], end: -1}
		if end != nil {
			sp.end = end[p]
		}
		s.splits = append(s.splits, sp)
	}
	return s, nil
}

// onlyPartitions returns the partitions of partitions= after checking that
// the topic has them.
func onlyPartitions(o *options, all []int32) ([]int32, error) {
	if len(o.only) > 0 && int(o.only[len(o.only)-1]) >= len(all) {
		return nil, fmt.Errorf("%w: partitions=: topic %q has no partition %d (it has %d)", ErrBadURI, o.topic, o.only[len(o.only)-1], len(all))
	}
	return o.only, nil
}

func decoder(o *options, t reflect.Type) (func([]byte) (any, error), error) {
	if o.format == "raw" {
		switch {
		case t == reflect.TypeFor[[]byte]():
			return func(b []byte) (any, error) { return append([]byte(nil), b...), nil }, nil
		case t.Kind() == reflect.String:
			return func(b []byte) (any, error) { return reflect.ValueOf(string(b)).Convert(t).Interface(), nil }, nil
		}
		return nil, fmt.Errorf("%w: kafka: format=raw reads into []byte or string, not %s", connector.ErrUnsupported, t)
	}
	d, err := codec.NewJSONDecoder(t)
	if err != nil {
		return nil, err
	}
	return d.Decode, nil
}

func (s *source) Splits(context.Context) ([]connector.Split, error) { return s.splits, nil }
func (s *source) Bounded() bool                                     { return s.o.until.kind != "" }

func (s *source) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adm != nil {
		s.adm.Close()
		s.adm = nil
	}
	return nil
}

// startOffsets resolves start= to an offset per partition. start=group
// takes the group's committed offsets, and the earliest offset of the
// partitions it has none for.
func startOffsets(ctx context.Context, adm *kadm.Client, o *options) (map[int32]int64, error) {
	if o.start.kind != "group" {
		return offsets(ctx, adm, o, o.start)
	}
	start, err := offsets(ctx, adm, o, position{kind: "earliest"})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	resp, err := adm.FetchOffsetsForTopics(ctx, o.group, o.topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: fetching the offsets group %q committed for %q: %w", o.group, o.topic, err)
	}
	resp.Each(func(r kadm.OffsetResponse) {
		if _, ok := start[r.Partition]; ok && r.At >= 0 {
			start[r.Partition] = max(r.At, start[r.Partition])
		}
	})
	return start, nil
}

// CommitPositions commits the offsets of a completed checkpoint to the
// consumer group of group=, if any: what the job has read, as Kafka's
// tools see it.
func (s *source) CommitPositions(ctx context.Context, positions map[string][]byte) error {
	if s.o.group == "" {
		return nil
	}
	var offs kadm.Offsets
	for _, sp := range s.splits {
		sp := sp.(*split)
		pos, ok := positions[sp.ID()]
		if !ok || len(pos) == 0 {
			continue
		}
		p, err := parseSplitPos(sp.ID(), pos)
		if err != nil {
			return err
		}
		offs.Add(kadm.Offset{Topic: s.o.topic, Partition: sp.partition, At: p.Offset, LeaderEpoch: -1})
	}
	if len(offs) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.adm == nil {
		cl, err := newClient(s.o, kgo.WithHooks(s.health))
		if err != nil {
			return err
		}
		s.adm = kadm.NewClient(cl)
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if err := s.adm.CommitAllOffsets(ctx, s.o.group, offs); err != nil {
		return fmt.Errorf("kafka: committing offsets of %q to group %q: %w", s.o.topic, s.o.group, err)
	}
	return nil
}

// split is one partition, from start to end (exclusive; -1: unbounded).
type split struct {
	src        *source
	partition  int32
	start, end int64
}

func (sp *split) ID() string { return fmt.Sprintf("%s/%d", sp.src.o.topic, sp.partition) }

func (sp *split) Open(ctx context.Context) (connector.Reader, error) {
	return sp.OpenAt(ctx, nil)
}

// OpenAt opens the partition at a position a reader reported: the offset of
// the next record. It fails with connector.ErrSourceChanged when the
// position is of another incarnation of the topic, or of another cluster
// (see splitPos).
func (sp *split) OpenAt(_ context.Context, pos []byte) (connector.Reader, error) {
	start := sp.start
	if len(pos) > 0 {
		p, err := parseSplitPos(sp.ID(), pos)
		if err != nil {
			return nil, err
		}
		if err := checkSameSource(sp.src.o.topic, p, sp.src.ids); err != nil {
			return nil, err
		}
		start = p.Offset
	}
	r := &reader{sp: sp, next: start}
	if sp.end >= 0 && start >= sp.end {
		r.done = true
		return r, nil
	}
	cl, err := newClient(sp.src.o,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
			sp.src.o.topic: {sp.partition: kgo.NewOffset().At(start)},
		}),
		kgo.FetchMaxWait(PollInterval),
		// Exactly-once producers' aborted records are never data.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers take offsets too: keep them, to step over
		// them, so that a bounded read knows it reached its end offset.
		kgo.KeepControlRecords(),
		kgo.WithHooks(sp.src.health),
	)
	if err != nil {
		return nil, err
	}
	r.cl = cl
	return r, nil
}

type reader struct {
	sp      *split
	cl      *kgo.Client
	pending []*kgo.Record
	next    int64 // offset of the next record to hand out
	done    bool
	// lastProgress is when a bounded reader last got a record, or
	// checked with the broker why it did not.
	lastProgress time.Time
}

func (r *reader) Read(ctx context.Context, buf []connector.Record) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	if len(r.pending) == 0 {
		r.sp.src.health.check(time.Now())
		pctx, cancel := context.WithTimeout(ctx, PollInterval)
		fs := r.cl.PollRecords(pctx, len(buf))
		cancel()
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if err == context.DeadlineExceeded || err == context.Canceled {
				return // the poll interval ran out
			}
			if ferr == nil {
				ferr = fmt.Errorf("kafka: fetching %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return 0, ferr
		}
		r.pending = fs.Records()
		if len(r.pending) == 0 && r.sp.end >= 0 {
			if err := r.stalled(ctx); err != nil {
				return 0, err
			}
		} else {
			r.lastProgress = time.Now()
		}
	}
	n := 0
	for n < len(buf) && len(r.pending) > 0 {
		rec := r.pending[0]
		r.pending = r.pending[1:]
		if r.sp.end >= 0 && rec.Offset >= r.sp.end {
			r.done = true
			break
		}
		r.next = rec.Offset + 1
		if rec.Attrs.IsControl() {
			continue
		}
		out := connector.Record{
			Pos:          fmt.Sprintf("%s/%d@%d", rec.Topic, rec.Partition, rec.Offset),
			Timestamp:    windowing.FromTime(rec.Timestamp),
			HasTimestamp: true,
		}
		if rec.Key != nil {
			out.Key = append([]byte(nil), rec.Key...)
		}
		if rec.Value == nil {
			out.Err, out.Tombstone = connector.ErrTombstone, true
		} else if v, err := r.sp.src.decode(rec.Value); err != nil {
			out.Err, out.Raw = err, append([]byte(nil), rec.Value...)
		} else {
			out.Value = v
		}
		buf[n] = out
		n++
	}
	if r.sp.end >= 0 && r.next >= r.sp.end {
		r.done = true
	}
	if n == 0 && r.done {
		return 0, io.EOF
	}
	return n, nil
}

// stallProbe is how long a bounded reader waits for records before it asks
// the broker whether any can still come.
const stallProbe = time.Second

// stalled handles a bounded reader that got nothing: if the records up to
// its end were deleted (retention, DeleteRecords), it is done; if the broker
// does not answer for requestTimeout, it fails, naming the partition.
func (r *reader) stalled(ctx context.Context) error {
	if r.lastProgress.IsZero() {
		r.lastProgress = time.Now()
	}
	if time.Since(r.lastProgress) < stallProbe {
		return nil
	}
	pctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	lo, err := kadm.NewClient(r.cl).ListStartOffsets(pctx, r.sp.src.o.topic)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("kafka: %s: no records for %s and the broker does not answer: %w", r.sp.ID(), time.Since(r.lastProgress).Round(time.Second), err)
	}
	if l, ok := lo.Lookup(r.sp.src.o.topic, r.sp.partition); ok && l.Offset >= r.sp.end {
		r.next, r.done = l.Offset, true
	}
	r.lastProgress = time.Now()
	return nil
}

// Position is the offset of the next record, with the ids of the topic and
// the cluster (splitPos).
func (r *reader) Position() []byte {
	p := r.sp.src.ids
	p.Offset = r.next
	return p.encode()
}

func (r *reader) Close() error {
	if r.cl != nil {
		r.cl.Close()
		r.cl = nil
	}
	return nil
}
