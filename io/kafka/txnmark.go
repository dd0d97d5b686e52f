package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/io/connector"
)

// checkpointMark lets an exactly-once sink know the last checkpoint whose
// output it committed, so that a job resumed from an older checkpoint (the
// newer ones' folders were deleted) is refused instead of publishing that
// output a second time.
//
// Each checkpoint's transaction also commits an offset, the checkpoint id,
// for partition 0 of the sink's topic in a consumer group of its own,
// markGroup(txn-id): AddOffsetsToTxn and TxnOffsetCommit, as Kafka Streams
// commits its consumed offsets, so that the id is committed if and only if
// the checkpoint's records are. Recover reads it back with OffsetFetch
// (require_stable) once no transaction of the id is open, and refuses a
// resume from an older checkpoint with connector.ErrPublishedAhead.
//
// A transactional id without such an offset (written by older Weir, or
// whose offsets the broker expired: offsets.retention.minutes after the
// group's last commit, seven days by default) is accepted: there is
// nothing to check against. The group has no members; Kafka's tools list
// it with the checkpoint id as its offset, which is not a lag.
type checkpointMark struct {
	group string
	topic string
	// topicID is the topic's, looked up at the first mark: TxnOffsetCommit
	// v6 names topics by id.
	topicID [16]byte
}

// markGroup is the consumer group of a transactional id's checkpoint marks.
func markGroup(txnID string) string { return "weir-txn-" + txnID }

// markPartition is the partition whose offset in the group is the mark.
const markPartition = 0

// add commits id as the mark in the open transaction (pid, epoch) of w.
func (m *checkpointMark) add(ctx context.Context, w *txnWriter, pid int64, epoch int16, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	fail := func(err error) error {
		return fmt.Errorf("kafka: recording checkpoint %d in transaction %q: %w", id, w.txnID, err)
	}
	if m.topicID == ([16]byte{}) {
		md, err := kadm.NewClient(w.plain).Metadata(ctx, m.topic)
		if err != nil {
			return fail(err)
		}
		m.topicID = md.Topics[m.topic].ID
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = w.txnID, pid, epoch, m.group
	if err := askCoordinator(ctx, w.plain, add, func(r *kmsg.AddOffsetsToTxnResponse) int16 { return r.ErrorCode }); err != nil {
		return fail(err)
	}
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = w.txnID, m.group, pid, epoch
	req.Generation = -1
	rt := kmsg.NewTxnOffsetCommitRequestTopic()
	rt.Topic, rt.TopicID = m.topic, m.topicID
	rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	meta := "weir checkpoint"
	rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = markPartition, id, -1, &meta
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, w.plain)
	if err != nil {
		return fail(err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fail(err)
			}
		}
	}
	return nil
}

// check refuses a resume from checkpoint id when the mark says the output
// of a later checkpoint was committed.
func (m *checkpointMark) check(ctx context.Context, w *txnWriter, id int64) error {
	last, err := m.read(ctx, w, true)
	if err != nil {
		return fmt.Errorf("kafka: reading the last committed checkpoint of txn-id %q: %w", w.txnID, err)
	}
	if last <= id {
		return nil
	}
	from := fmt.Sprintf("checkpoint %d", id)
	if id == 0 {
		from = "no checkpoint"
	}
	return fmt.Errorf("%w: kafka: txn-id %q already committed the output of checkpoint %d to topic %q, and the job resumes from %s (were newer checkpoints deleted?): resuming would publish that output again; resume from the checkpoint directory that holds checkpoint %d, or start over with a new --checkpoint-dir and a new txn-id",
		connector.ErrPublishedAhead, w.txnID, last, m.topic, from, last)
}

// read returns the mark, or -1 if there is none. A stable read waits
// while a transaction that commits a mark is open or completing; an
// unstable one returns the last committed mark at once, without the open
// transaction's.
func (m *checkpointMark) read(ctx context.Context, w *txnWriter, stable bool) (int64, error) {
	adm := kadm.NewClient(w.plain)
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		fctx := ctx
		if stable {
			fctx = kadm.RequireStable(ctx)
		}
		resps, err := adm.FetchOffsets(fctx, m.group)
		if err == nil {
			if o, ok := resps.Lookup(m.topic, markPartition); ok {
				err = o.Err
				if err == nil {
					return o.At, nil
				}
			} else {
				return -1, nil
			}
		}
		switch {
		case errors.Is(err, kerr.GroupIDNotFound):
			return -1, nil
		case !errors.Is(err, kerr.UnstableOffsetCommit):
			return 0, err
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
	}
}
