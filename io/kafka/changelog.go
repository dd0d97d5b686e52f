package kafka

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/state"
)

// Changelog is keyed state's changelog on Kafka (Samza's and Kafka
// Streams'): every change to the state of a keyed operator is also a record
// in a compacted topic of its own, <prefix>-<transform>-changelog, keyed by
// the state key, with a nil value for a deletion. A partition holds a range
// of key groups, so a partition's records are a key group range's history.
//
// Records are written in transactions that follow the checkpoints (see
// txnWriter): what a checkpoint's state includes is committed when the
// checkpoint completes, and what a crashed run changed after its last
// checkpoint is aborted. So reading the topics as a read_committed consumer
// from a job's base offsets (where its first run started) to their end
// rebuilds exactly the state of its latest checkpoint, on any machine.
//
// A Changelog is a state.ChangeLog; Changed may be called by every worker at
// once. The other methods are called while no worker changes state.
type Changelog struct {
	o      *options
	topics map[uint32]string // by operator state id
	parts  int32
	groups int
	task   int32 // the one partition written and read, or -1: all
	plain  *kgo.Client
	// ids are the ids of the topics (by name) and of their cluster when
	// the changelog opened: End stores them with the base offsets and
	// Restore checks them.
	ids    changelogIDs
	w      *txnWriter
	ctx    context.Context
	cancel context.CancelFunc
}

// ChangelogOffsets are offsets by changelog topic and partition.
type ChangelogOffsets map[string]map[int32]int64

// ChangelogConfig describes the state a changelog records. With Tasks, the
// job is scaled out over a consumer group in that many tasks, one per input
// partition: the topics then have a partition per task, and this changelog
// writes and restores partition Task alone, under a transactional id of its
// own.
type ChangelogConfig = state.ChangeLogConfig

// RestoreStats describe a restore.
type RestoreStats = state.RestoreStats

// A Changelog is the state's changelog store of kafka:// URIs.
var _ state.ChangeLogStore = (*Changelog)(nil)

func openChangeLogStore(ctx context.Context, u *url.URL, cfg state.ChangeLogConfig) (state.ChangeLogStore, error) {
	return OpenChangelog(ctx, u.String(), cfg)
}

// defaultChangelogPartitions is the number of partitions of a changelog
// topic unless ?partitions= says otherwise.
const defaultChangelogPartitions = 8

var unsafeTopicChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// OpenChangelog opens the changelog at kafka://host:port/PREFIX, creating
// its topics (compacted) if they do not exist. Options: partitions=N
// (default 8; existing topics must have as many), txn-timeout=DURATION.
// The transactional id is PREFIX-changelog: PREFIX must be unique to the job.
func OpenChangelog(ctx context.Context, rawURI string, cfg ChangelogConfig) (*Changelog, error) {
	u, err := url.Parse(rawURI)
	if err != nil || u.Scheme != Scheme {
		return nil, fmt.Errorf("%w: changelog %s: want kafka://host:port/PREFIX", ErrBadURI, redacted(rawURI))
	}
	parts := int32(defaultChangelogPartitions)
	q := u.Query()
	if cfg.Tasks > 0 {
		if q.Has("partitions") {
			return nil, fmt.Errorf("%w: changelog %s: partitions= does not apply to a job of %d tasks (a partition per task)", ErrBadURI, u.Redacted(), cfg.Tasks)
		}
		if cfg.Task < 0 || cfg.Task >= cfg.Tasks {
			return nil, fmt.Errorf("kafka: changelog: task %d of %d", cfg.Task, cfg.Tasks)
		}
		parts = cfg.Tasks
	} else if v := q.Get("partitions"); v != "" {
		n, err := fmt.Sscanf(v, "%d", &parts)
		if n != 1 || err != nil || parts < 1 || int(parts) > cfg.KeyGroups {
			return nil, fmt.Errorf("%w: changelog partitions=%q: want 1 to %d (the key groups)", ErrBadURI, v, cfg.KeyGroups)
		}
		q.Del("partitions")
		u.RawQuery = q.Encode()
	}
	o, err := parseURI(u)
	if err != nil {
		return nil, err
	}
	if o.key != "" || o.exactlyOnce || o.start.kind != "earliest" || o.until.kind != "" || o.format != "json" {
		return nil, fmt.Errorf("%w: changelog %s: only partitions= and txn-timeout= apply", ErrBadURI, u.Redacted())
	}
	o.txnID = o.topic + "-changelog"
	c := &Changelog{o: o, topics: map[uint32]string{}, parts: parts, groups: cfg.KeyGroups, task: -1}
	if cfg.Tasks > 0 {
		c.task = cfg.Task
		o.txnID = fmt.Sprintf("%s-task-%d", o.txnID, cfg.Task)
	}
	used := map[string]bool{}
	for _, id := range sortedIDs(cfg.Operators) {
		t := o.topic + "-" + unsafeTopicChars.ReplaceAllString(cfg.Operators[id], "_") + "-changelog"
		if used[t] || len(t) > 240 {
			t = fmt.Sprintf("%s-%08x-changelog", o.topic, id)
		}
		used[t] = true
		c.topics[id] = t
	}
	if c.plain, err = newClient(o); err != nil {
		return nil, err
	}
	if err := c.ensureTopics(ctx); err != nil {
		c.plain.Close()
		return nil, err
	}
	if err := c.readIDs(ctx); err != nil {
		c.plain.Close()
		return nil, err
	}
	c.w = newTxnWriter(o, c.plain, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

func sortedIDs(m map[uint32]string) []uint32 {
	ids := make([]uint32, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Topics returns the changelog topics, sorted.
func (c *Changelog) Topics() []string {
	var ts []string
	for _, t := range c.topics {
		ts = append(ts, t)
	}
	sort.Strings(ts)
	return ts
}

func (c *Changelog) ensureTopics(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	adm := kadm.NewClient(c.plain)
	ts := c.Topics()
	if len(ts) == 0 {
		return nil
	}
	compact := "compact"
	resp, err := adm.CreateTopics(ctx, c.parts, -1, map[string]*string{"cleanup.policy": &compact}, ts...)
	if err != nil {
		return fmt.Errorf("kafka: creating changelog topics on %v: %w", c.o.brokers, err)
	}
	var exist []string
	for _, r := range resp.Sorted() {
		switch {
		case errors.Is(r.Err, kerr.TopicAlreadyExists):
			exist = append(exist, r.Topic)
		case r.Err != nil:
			return fmt.Errorf("kafka: creating changelog topic %q: %w", r.Topic, r.Err)
		}
	}
	if len(exist) == 0 {
		return nil
	}
	td, err := adm.ListTopics(ctx, exist...)
	if err != nil {
		return fmt.Errorf("kafka: listing changelog topics: %w", err)
	}
	for _, t := range exist {
		if n := len(td[t].Partitions); n != int(c.parts) {
			return fmt.Errorf("kafka: changelog topic %q has %d partitions, this job writes %d (partitions=): they must not change between runs", t, n, c.parts)
		}
	}
	return nil
}

// changelogIDs are the ids of a changelog's topics, by name, and of their
// cluster; an id the broker does not give is left out.
type changelogIDs struct {
	Topics  map[string]string `json:"topicIds,omitempty"`
	Cluster string            `json:"clusterId,omitempty"`
}

// readIDs reads the ids of the changelog's topics and of their cluster.
func (c *Changelog) readIDs(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	c.ids = changelogIDs{Topics: map[string]string{}}
	ts := c.Topics()
	if len(ts) == 0 {
		return nil
	}
	md, err := kadm.NewClient(c.plain).Metadata(ctx, ts...)
	if err != nil {
		return fmt.Errorf("kafka: the ids of the changelog topics: %w", err)
	}
	c.ids.Cluster = md.Cluster
	for _, t := range ts {
		if id := topicIDString(md.Topics[t].ID); id != "" {
			c.ids.Topics[t] = id
		}
	}
	return nil
}

// changelogBase is a base position as End writes it: the offsets, and the
// ids of the topics and their cluster, so that a restore from a topic
// deleted and created again since (which would restore nothing, or
// another topic's records) is refused. Weir before ids wrote the offsets
// alone (ChangelogOffsets as JSON); Restore still reads that, unchecked.
type changelogBase struct {
	Offsets ChangelogOffsets `json:"offsets"`
	changelogIDs
}

// parseChangelogBase reads a base position of either form.
func parseChangelogBase(b []byte) (changelogBase, error) {
	var base changelogBase
	if len(b) == 0 {
		return base, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if d.Decode(&base) == nil {
		return base, nil
	}
	base = changelogBase{}
	if err := json.Unmarshal(b, &base.Offsets); err != nil {
		return base, fmt.Errorf("kafka: changelog: a base position that is not offsets by topic and partition: %w", err)
	}
	return base, nil
}

// checkIDs refuses a base of other topics or another cluster than the
// changelog's now.
func (c *Changelog) checkIDs(base changelogBase) error {
	if base.Cluster != "" && c.ids.Cluster != "" && base.Cluster != c.ids.Cluster {
		return fmt.Errorf("%w: kafka: changelog %s is on another cluster than the checkpoint's (cluster id %s then, %s now), which does not hold its state: bind the checkpoint's cluster, or start over with a new --checkpoint-dir",
			connector.ErrSourceChanged, c.o.topic, base.Cluster, c.ids.Cluster)
	}
	for _, t := range c.Topics() {
		then, now := base.Topics[t], c.ids.Topics[t]
		if then != "" && now != "" && then != now {
			return fmt.Errorf("%w: kafka: changelog topic %q was deleted and created again since the checkpoint (topic id %s then, %s now), and the checkpoint's state is not in it: start over with a new --checkpoint-dir and a new changelog prefix",
				connector.ErrSourceChanged, t, then, now)
		}
	}
	return nil
}

// partition is the changelog partition of a key group: contiguous ranges,
// or the task's partition.
func (c *Changelog) partition(kg state.KeyGroup) int32 {
	if c.task >= 0 {
		return c.task
	}
	return int32(int(kg) * int(c.parts) / c.groups)
}

// Changed records a state change in the open transaction.
func (c *Changelog) Changed(key, value []byte) error {
	op, kg, err := state.KeyRoute(key)
	if err != nil {
		return fmt.Errorf("kafka: changelog: %w", err)
	}
	t, ok := c.topics[op]
	if !ok {
		return fmt.Errorf("kafka: changelog: a state change of unknown operator %08x", op)
	}
	r := &kgo.Record{Topic: t, Partition: c.partition(kg), Key: append([]byte(nil), key...)}
	if value != nil {
		r.Value = append([]byte{}, value...)
	}
	return c.w.produce(c.ctx, r)
}

// PreCommit flushes the changes since the last checkpoint and returns the
// handle of their transaction, to keep with the checkpoint.
func (c *Changelog) PreCommit(ctx context.Context) ([]byte, error) { return c.w.preCommit(ctx, 0) }

// Commit commits what PreCommit flushed, once the checkpoint is stored.
func (c *Changelog) Commit(ctx context.Context) error { return c.w.commit(ctx) }

// CommitOpen commits every change so far. A run does not call it at its
// end (its state after the last checkpoint is never resumed from, and
// committing it would let a restart from that checkpoint count the rest
// twice); loading tools and benchmarks do.
func (c *Changelog) CommitOpen(ctx context.Context) error { return c.w.commitOpen(ctx) }

// Recover commits the transaction of checkpoint id (by its handle, if any)
// and aborts what a crashed run changed after it. Call it before Ends or
// Restore: until then the crashed run's open transaction hides later
// records from read_committed readers.
func (c *Changelog) Recover(ctx context.Context, id int64, handle []byte) error {
	return c.w.recover(ctx, id, handle)
}

// Ends returns the end of what is committed in every changelog partition
// (of a task: in its partition): a job starting with empty state takes them
// as its base offsets.
func (c *Changelog) Ends(ctx context.Context) (ChangelogOffsets, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	out := ChangelogOffsets{}
	ts := c.Topics()
	if len(ts) == 0 {
		return out, nil
	}
	lo, err := kadm.NewClient(c.plain).ListCommittedOffsets(ctx, ts...)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: changelog end offsets: %w", err)
	}
	lo.Each(func(l kadm.ListedOffset) {
		if c.task >= 0 && l.Partition != c.task {
			return // another task's
		}
		if out[l.Topic] == nil {
			out[l.Topic] = map[int32]int64{}
		}
		out[l.Topic][l.Partition] = l.Offset
	})
	return out, nil
}

// End is Ends as a state.ChangeLogPosition: the offsets with the ids of
// the topics and their cluster, as JSON (changelogBase).
func (c *Changelog) End(ctx context.Context) (state.ChangeLogPosition, error) {
	ends, err := c.Ends(ctx)
	if err != nil {
		return nil, err
	}
	return json.Marshal(changelogBase{Offsets: ends, changelogIDs: c.ids})
}

// Restore reads every changelog partition from base (as End returns it, or
// ChangelogOffsets as JSON from older Weir) to its committed end and
// applies each change in order. A partition missing from base is read from
// its start. A base of topics deleted and created again since, or of
// another cluster, fails with connector.ErrSourceChanged.
func (c *Changelog) Restore(ctx context.Context, basePos state.ChangeLogPosition, apply func(key, value []byte) error) (RestoreStats, error) {
	begin := time.Now()
	var st RestoreStats
	b, err := parseChangelogBase(basePos)
	if err != nil {
		return st, err
	}
	if err := c.checkIDs(b); err != nil {
		return st, err
	}
	base := b.Offsets
	ends, err := c.Ends(ctx)
	if err != nil {
		return st, err
	}
	from := map[string]map[int32]kgo.Offset{}
	left := map[string]map[int32]int64{} // partitions not read to their end
	for t, ps := range ends {
		for p, end := range ps {
			start, ok := base[t][p]
			if !ok {
				start = 0
			}
			if start > end {
				// The log only grows: a partition that ends before the
				// base was deleted and created again since (or is another
				// cluster's), and restoring from it would restore nothing
				// and say so nowhere.
				return st, fmt.Errorf("%w: kafka: changelog topic %q partition %d ends at offset %d, before the checkpoint's base offset %d: it was deleted and created again (or is on another cluster), and the checkpoint's state is not in it: start over with a new --checkpoint-dir and a new changelog prefix",
					connector.ErrSourceChanged, t, p, end, start)
			}
			if start == end {
				continue
			}
			if from[t] == nil {
				from[t], left[t] = map[int32]kgo.Offset{}, map[int32]int64{}
			}
			from[t][p] = kgo.NewOffset().At(start)
			left[t][p] = end
		}
	}
	if len(from) == 0 {
		st.Took = time.Since(begin)
		return st, nil
	}
	cl, err := newClient(c.o,
		kgo.ConsumePartitions(from),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(16<<20),
	)
	if err != nil {
		return st, err
	}
	defer cl.Close()
	lastProgress := time.Now()
	for len(left) > 0 {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && ferr == nil {
				ferr = fmt.Errorf("kafka: restoring from changelog %s/%d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return st, ferr
		}
		progressed := false
		fs.EachRecord(func(r *kgo.Record) {
			end, ok := left[r.Topic][r.Partition]
			if !ok || ferr != nil {
				return
			}
			progressed = true
			if r.Offset+1 >= end {
				// The partition's end, or past it: compaction may have
				// removed the record just before the end, when more were
				// written after it (the log's tail, its active segment, is
				// never cleaned).
				delete(left[r.Topic], r.Partition)
				if len(left[r.Topic]) == 0 {
					delete(left, r.Topic)
				}
			}
			if r.Offset >= end || r.Attrs.IsControl() {
				return
			}
			st.Records++
			st.Bytes += int64(len(r.Key) + len(r.Value))
			if err := apply(r.Key, r.Value); err != nil {
				ferr = err
			}
		})
		if ferr != nil {
			return st, ferr
		}
		if progressed {
			lastProgress = time.Now()
		} else if time.Since(lastProgress) > requestTimeout {
			return st, fmt.Errorf("kafka: restoring from changelog: no records for %s with %v still short of their end", requestTimeout, left)
		}
	}
	st.Took = time.Since(begin)
	return st, nil
}

// Close aborts what is not committed and closes the clients.
func (c *Changelog) Close() error {
	c.cancel()
	err := c.w.abort()
	c.plain.Close()
	return err
}
