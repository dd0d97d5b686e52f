// Package kafka is the kafka:// connector: sources that read a topic's
// partitions (one split each, so each partition has its own watermark and
// goes idle on its own) and sinks that produce to a topic, through franz-go's
// kgo client. It works against any Kafka-protocol broker; tests and
// `weir dev kafka` use franz-go's in-process kfake cluster.
//
// A source is unbounded unless its URI says where to stop (?until=latest: the
// end offsets when the source opens; ?until=TIME: the first offsets at or
// after that time), which makes it a bounded source like Flink's bounded
// KafkaSource: the job reads up to there, fires every window and ends.
//
// Records are decoded as JSON into the binding's type (?format=json, the
// default) or passed as raw bytes (?format=raw, for []byte or string types).
// A record's timestamp is its source timestamp; a pipeline's EventTime
// overrides it. Sinks key each record by a field of the value (?key=FIELD),
// and with ?delivery=exactly-once write in a transaction per checkpoint
// (txn.go). Changelog (changelog.go) writes keyed state's changes to Kafka
// with the same transactions and reads them back for a restore.
//
// Recovery never reads the wrong records quietly: a checkpoint's positions
// (position.go) and a changelog's base carry the ids of their topics and
// cluster, and a resume on a topic deleted and created again, or on
// another cluster, fails with connector.ErrSourceChanged; an exactly-once
// sink records each committed checkpoint with its transaction (txnmark.go)
// and refuses with connector.ErrPublishedAhead to resume from an older one;
// an unreachable broker is logged and counted (health.go).
//
// The connector also scales a job out over a consumer group
// (connector.Grouper, member.go), continues other data from a handover or a
// time (connector.Continuer, handover.go), and is the state.ChangeLogStore of
// kafka:// URIs (changelog.go).
//
// Dependency direction: kafka imports connector, codec, state (to route
// state keys, and for the changelog's contract) and franz-go; the runner
// and cmd/weir import it to register its schemes.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/state"
)

// Scheme is the URI scheme of this connector.
const Scheme = "kafka"

func init() {
	connector.Register(Scheme, kafkaConnector{})
	state.RegisterChangeLog(Scheme, openChangeLogStore)
}

type kafkaConnector struct{}

// requestTimeout bounds the metadata requests made when a source or sink
// opens, so that a wrong address fails instead of hanging.
const requestTimeout = 15 * time.Second

func newClient(o *options, extra ...kgo.Opt) (*kgo.Client, error) {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(o.brokers...),
		kgo.ClientID("weir"),
		kgo.RetryTimeout(requestTimeout),
	}, extra...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: client for %v: %w", o.brokers, err)
	}
	return cl, nil
}

// partitions returns the topic's partitions, sorted.
func partitions(ctx context.Context, adm *kadm.Client, o *options) ([]int32, error) {
	ps, _, err := describeTopic(ctx, adm, o)
	return ps, err
}

// describeTopic returns the topic's partitions, sorted, and the ids of the
// topic and its cluster as a position stores them (splitPos, without the
// offset).
func describeTopic(ctx context.Context, adm *kadm.Client, o *options) ([]int32, splitPos, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	md, err := adm.Metadata(ctx, o.topic)
	if err != nil {
		return nil, splitPos{}, fmt.Errorf("kafka: listing topic %q on %v: %w", o.topic, o.brokers, err)
	}
	t, ok := md.Topics[o.topic]
	if !ok || errors.Is(t.Err, errUnknownTopic) || len(t.Partitions) == 0 {
		return nil, splitPos{}, fmt.Errorf("%w: kafka: topic %q on %v", connector.ErrNotFound, o.topic, o.brokers)
	}
	if t.Err != nil {
		return nil, splitPos{}, fmt.Errorf("kafka: topic %q: %w", o.topic, t.Err)
	}
	var ps []int32
	for p := range t.Partitions {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps, splitPos{TopicID: topicIDString(t.ID), ClusterID: md.Cluster}, nil
}

// offsets resolves a position to an offset per partition.
func offsets(ctx context.Context, adm *kadm.Client, o *options, p position) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var (
		lo  kadm.ListedOffsets
		err error
	)
	switch p.kind {
	case "earliest":
		lo, err = adm.ListStartOffsets(ctx, o.topic)
	case "latest":
		lo, err = adm.ListEndOffsets(ctx, o.topic)
	case "committed":
		// The last stable offset: the end of what a read_committed
		// consumer can see now (an open transaction's records are after).
		lo, err = adm.ListCommittedOffsets(ctx, o.topic)
	case "time":
		lo, err = adm.ListOffsetsAfterMilli(ctx, p.ms, o.topic)
	default:
		return nil, fmt.Errorf("kafka: internal error: position %q", p.kind)
	}
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("kafka: listing %s offsets of %q: %w", p, o.topic, err)
	}
	out := map[int32]int64{}
	lo.Each(func(l kadm.ListedOffset) { out[l.Partition] = l.Offset })
	return out, nil
}
