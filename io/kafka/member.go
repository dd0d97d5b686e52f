package kafka

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/io/connector"
)

// MemberConfig describes a process of a job that is scaled out over a Kafka
// consumer group (connector.GroupConfig; Sources are kafka:// URIs, all on
// the same brokers; SessionTimeout is Kafka's session.timeout.ms, 45s by
// default, and RebalanceTimeout 60s by default).
//
// The job's tasks are its input partitions, Samza's way: task p reads
// partition p of every source topic and keeps state of its own, so the
// topics must have as many partitions each, and a key's records must all
// be in one partition (the topics are partitioned by the key the job groups
// by, as a producer keyed by it does). Kafka's group protocol, with the
// range assignor, gives each member the same partition numbers of every
// topic; the member runs those tasks.
type MemberConfig = connector.GroupConfig

// JoinGroup makes kafka:// sources scale a job out (connector.Grouper).
func (kafkaConnector) JoinGroup(ctx context.Context, cfg connector.GroupConfig) (connector.Membership, error) {
	return JoinGroup(ctx, cfg)
}

// Member is a process's membership of its job's consumer group. The
// member fetches nothing: the tasks read their partitions themselves, from
// their checkpoints' offsets, and report those through CommitPositions.
type Member struct {
	cl     *kgo.Client
	tasks  int32
	topics []string
	closed sync.Once
}

// JoinGroup joins the consumer group of a scaled-out job. It fails at once,
// with a message naming the source, when a source is not a plain kafka://
// topic (group=, partitions= and offsets= are the group's to decide), when
// the sources are on different brokers, or when their topics have
// different numbers of partitions.
func JoinGroup(ctx context.Context, cfg MemberConfig) (*Member, error) {
	if cfg.Group == "" {
		return nil, fmt.Errorf("%w: a consumer group needs a name", ErrBadURI)
	}
	if len(cfg.Sources) == 0 {
		return nil, fmt.Errorf("%w: a job scaled out over consumer group %q needs a kafka:// source", ErrBadURI, cfg.Group)
	}
	var (
		brokers []string
		topics  []string
		first   *options
	)
	for _, raw := range cfg.Sources {
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != Scheme {
			return nil, fmt.Errorf("%w: %s: a job scaled out over consumer group %q reads kafka:// sources only", ErrBadURI, redacted(raw), cfg.Group)
		}
		o, err := parseURI(u)
		if err != nil {
			return nil, err
		}
		if o.group != "" || o.only != nil || o.offsets != nil {
			return nil, fmt.Errorf("%w: %s: group=, partitions= and offsets= do not apply in consumer group %q (the group assigns partitions, checkpoints keep offsets)", ErrBadURI, u.Redacted(), cfg.Group)
		}
		b := slices.Clone(o.brokers)
		sort.Strings(b)
		if first == nil {
			first, brokers = o, b
		} else if !slices.Equal(b, brokers) {
			return nil, fmt.Errorf("%w: %s: the sources of consumer group %q must be on the same brokers (%s)", ErrBadURI, u.Redacted(), cfg.Group, strings.Join(brokers, ","))
		}
		if !slices.Contains(topics, o.topic) {
			topics = append(topics, o.topic)
		}
	}
	sort.Strings(topics)
	m := &Member{topics: topics}

	adminCl, err := newClient(first)
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	for _, t := range topics {
		o := *first
		o.topic = t
		ps, err := partitions(ctx, kadm.NewClient(adminCl), &o)
		if err != nil {
			adminCl.Close()
			return nil, err
		}
		counts[t] = len(ps)
	}
	adminCl.Close()
	for _, t := range topics {
		if counts[t] != counts[topics[0]] {
			return nil, fmt.Errorf("%w: topics %q (%d partitions) and %q (%d) of consumer group %q must have as many partitions: task p reads partition p of each", ErrBadURI, topics[0], counts[topics[0]], t, counts[t], cfg.Group)
		}
	}
	m.tasks = int32(counts[topics[0]])

	opts := []kgo.Opt{
		kgo.ConsumerGroup(cfg.Group),
		kgo.ConsumeTopics(topics...),
		// Eager: every member stops all its tasks before any task moves,
		// so no task ever runs twice at once. The range assignor gives a
		// member the same partition numbers of every topic.
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			tasks, err := m.tasksOf(a)
			cfg.Assigned(tasks, m.tasks, err)
		}),
		kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) { cfg.Revoked() }),
		kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) { cfg.Lost() }),
	}
	if cfg.SessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(cfg.SessionTimeout), kgo.HeartbeatInterval(max(cfg.SessionTimeout/10, 100*time.Millisecond)))
	}
	if cfg.RebalanceTimeout > 0 {
		opts = append(opts, kgo.RebalanceTimeout(cfg.RebalanceTimeout))
	}
	if m.cl, err = newClient(first, opts...); err != nil {
		return nil, err
	}
	// The member fetches nothing: the tasks read their partitions.
	m.cl.PauseFetchTopics(topics...)
	return m, nil
}

// tasksOf turns an assignment into tasks: the partition numbers assigned
// in every topic, which must be the same.
func (m *Member) tasksOf(a map[string][]int32) ([]int32, error) {
	var tasks []int32
	for i, t := range m.topics {
		ps := slices.Clone(a[t])
		slices.Sort(ps)
		if i == 0 {
			tasks = ps
			continue
		}
		if !slices.Equal(ps, tasks) {
			return nil, fmt.Errorf("kafka: consumer group assigned partitions %v of %q but %v of %q: a task needs the same partition of each topic (is another kind of consumer in the group?)", tasks, m.topics[0], ps, t)
		}
	}
	return tasks, nil
}

// CommitPositions commits the offsets of a task's completed checkpoint to
// the group, under the member's current generation: Kafka's tools then
// show the job's lag as a consumer group's (a task resumes from its
// checkpoints, not from these). positions are by split id, topic/partition,
// as a kafka source's splits report them. A commit during a rebalance may
// be refused; the next checkpoint's commit makes up for it.
func (m *Member) CommitPositions(ctx context.Context, positions map[string][]byte) error {
	offs := map[string]map[int32]kgo.EpochOffset{}
	for id, pos := range positions {
		i := strings.LastIndexByte(id, '/')
		if i < 0 {
			return fmt.Errorf("kafka: bad position %q of split %q", pos, id)
		}
		p, perr := strconv.ParseInt(id[i+1:], 10, 32)
		sp, oerr := parseSplitPos(id, pos)
		if perr != nil || oerr != nil {
			return fmt.Errorf("kafka: bad position %q of split %q", pos, id)
		}
		off := sp.Offset
		t := id[:i]
		if offs[t] == nil {
			offs[t] = map[int32]kgo.EpochOffset{}
		}
		offs[t][int32(p)] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	if len(offs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var err error
	m.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, cerr error) {
		if cerr != nil {
			err = cerr
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if perr := kerr.ErrorForCode(p.ErrorCode); perr != nil && err == nil {
					err = fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, perr)
				}
			}
		}
	})
	if err != nil {
		return fmt.Errorf("kafka: committing a task's offsets to its consumer group: %w", err)
	}
	return nil
}

// Tasks is the number of tasks: the partitions of each source topic.
func (m *Member) Tasks() int32 { return m.tasks }

// Close leaves the group (Revoked is called first if tasks are assigned)
// and closes the client.
func (m *Member) Close() { m.closed.Do(m.cl.Close) }
