package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/io/connector"
)

// txnSink is a sink with delivery=exactly-once: what it writes between two
// checkpoints goes in one Kafka transaction, so a read_committed consumer
// sees a checkpoint's output all at once, after the checkpoint is complete,
// and never the output of a run that crashed after its last checkpoint.
//
// Each transaction has a producer of its own, whose InitProducerID bumps
// the epoch of the transactional id; so a (producer id, epoch) pair names
// one transaction. PreCommit flushes the open transaction without ending
// it and returns that pair as the checkpoint's handle. CommitCheckpoint
// ends it. After a crash, Recover ends the transaction of the checkpoint
// the job resumes from with the handle (an EndTxn request, as Flink's
// KafkaSink does by resuming the producer), then fences the transactional
// id, which aborts whatever the crashed run wrote after that checkpoint.
//
// The sink writer calls Write, PreCommit, CommitCheckpoint and Commit from
// one goroutine, and never writes between PreCommit and CommitCheckpoint;
// so the next transaction's producer (which fences the id) is created only
// once the previous transaction is committed.
type txnSink struct {
	*sink // encoding, keys, and cl: a plain client for Recover's requests

	cur     *kgo.Client // the open transaction; nil until the next write
	records int64       // produced in cur
	pending *kgo.Client // pre-committed, waiting for CommitCheckpoint

	mu struct {
		sync.Mutex
		err error // the first failed produce of cur
	}
}

// txnHandle is what a checkpoint keeps of a pre-committed transaction.
type txnHandle struct {
	TxnID      string    `json:"txnId"`
	ProducerID int64     `json:"producerId"`
	Epoch      int16     `json:"epoch"`
	Records    int64     `json:"records"`
	At         time.Time `json:"at"` // when it was pre-committed
}

var _ connector.CheckpointSink = (*txnSink)(nil)

func (t *txnSink) begin() error {
	cl, err := newClient(t.o,
		kgo.DefaultProduceTopic(t.o.topic),
		kgo.AllowAutoTopicCreation(),
		kgo.TransactionalID(t.o.txnID),
		kgo.TransactionTimeout(t.o.txnTimeout),
	)
	if err != nil {
		return err
	}
	if err := cl.BeginTransaction(); err != nil {
		cl.Close()
		return fmt.Errorf("kafka: beginning a transaction on %q: %w", t.o.topic, err)
	}
	t.cur, t.records = cl, 0
	t.mu.Lock()
	t.mu.err = nil
	t.mu.Unlock()
	return nil
}

// Write produces values in the open transaction, opening one if needed.
// Produce errors surface at the latest when the transaction is flushed.
func (t *txnSink) Write(ctx context.Context, values []any) error {
	if len(values) == 0 {
		return nil
	}
	if t.pending != nil {
		return errors.New("kafka: internal error: a write before the pre-committed transaction was committed")
	}
	recs, err := t.sink.records(values)
	if err != nil {
		return err
	}
	if t.cur == nil {
		if err := t.begin(); err != nil {
			return err
		}
	}
	if err := t.failed(); err != nil {
		return err
	}
	for _, r := range recs {
		t.cur.Produce(ctx, r, t.produced)
	}
	t.records += int64(len(recs))
	return nil
}

func (t *txnSink) produced(_ *kgo.Record, err error) {
	if err != nil {
		t.mu.Lock()
		if t.mu.err == nil {
			t.mu.err = fmt.Errorf("kafka: producing to %q in transaction %q: %w", t.o.topic, t.o.txnID, err)
		}
		t.mu.Unlock()
	}
}

func (t *txnSink) failed() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.mu.err
}

// flush waits until every record of the open transaction is acknowledged.
func (t *txnSink) flush(ctx context.Context, cl *kgo.Client) error {
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("kafka: flushing %q: %w", t.o.topic, err)
	}
	return t.failed()
}

// PreCommit flushes the open transaction and returns its handle; the
// transaction stays open until CommitCheckpoint (or Recover).
func (t *txnSink) PreCommit(ctx context.Context, id int64) ([]byte, error) {
	if t.cur == nil {
		return nil, nil // nothing written since the last checkpoint
	}
	if err := t.flush(ctx, t.cur); err != nil {
		return nil, err
	}
	pid, epoch, err := t.cur.ProducerID(ctx)
	if err != nil {
		return nil, fmt.Errorf("kafka: the producer id of transaction %q: %w", t.o.txnID, err)
	}
	h, err := json.Marshal(txnHandle{TxnID: t.o.txnID, ProducerID: pid, Epoch: epoch, Records: t.records, At: time.Now().UTC()})
	if err != nil {
		return nil, err
	}
	t.pending, t.cur = t.cur, nil
	return h, nil
}

// CommitCheckpoint commits the transaction pre-committed for id.
func (t *txnSink) CommitCheckpoint(ctx context.Context, id int64) error {
	if t.pending == nil {
		return nil
	}
	cl := t.pending
	t.pending = nil
	defer cl.Close()
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("kafka: committing the transaction of checkpoint %d on %q: %w", id, t.o.topic, err)
	}
	return nil
}

// Recover commits the transaction of checkpoint id, if its handle names
// one, and aborts any other transaction open under the sink's id.
func (t *txnSink) Recover(ctx context.Context, id int64, handle []byte) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if handle != nil {
		var h txnHandle
		if err := json.Unmarshal(handle, &h); err != nil {
			return fmt.Errorf("kafka: checkpoint %d: unreadable transaction handle: %v", id, err)
		}
		if err := t.commitHandle(ctx, id, h); err != nil {
			return err
		}
	}
	return t.fence(ctx)
}

func (t *txnSink) commitHandle(ctx context.Context, id int64, h txnHandle) error {
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = h.TxnID, h.ProducerID, h.Epoch, true
	resp, err := req.RequestWith(ctx, t.cl)
	if err != nil {
		return fmt.Errorf("kafka: committing the transaction of checkpoint %d (%q): %w", id, h.TxnID, err)
	}
	switch err := kerr.ErrorForCode(resp.ErrorCode); {
	case err == nil:
		return nil
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.InvalidProducerIDMapping):
		// A newer producer has the id: this run's next transaction
		// began, which happens only after this one was committed; or the
		// broker timed the transaction out and aborted it.
		if age := time.Since(h.At); age >= t.o.txnTimeout {
			return fmt.Errorf("kafka: the transaction of checkpoint %d (%q, %d records) was pre-committed %s ago, longer than txn-timeout=%s: the broker may have aborted it, and its output may be lost (%v)",
				id, h.TxnID, h.Records, age.Round(time.Second), t.o.txnTimeout, err)
		}
		return nil
	case errors.Is(err, kerr.InvalidTxnState):
		return fmt.Errorf("kafka: the transaction of checkpoint %d (%q, %d records) was aborted, not committed: its output is lost (%v)", id, h.TxnID, h.Records, err)
	default:
		return fmt.Errorf("kafka: committing the transaction of checkpoint %d (%q): %w", id, h.TxnID, err)
	}
}

// fence initializes the transactional id, which aborts a transaction a
// crashed run left open (read_committed consumers wait at it until then).
func (t *txnSink) fence(ctx context.Context) error {
	req := kmsg.NewPtrInitProducerIDRequest()
	id := t.o.txnID
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = int32(t.o.txnTimeout.Milliseconds())
	resp, err := req.RequestWith(ctx, t.cl)
	if err == nil {
		err = kerr.ErrorForCode(resp.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("kafka: aborting what a crashed run left open under txn-id %q: %w", id, err)
	}
	return nil
}

// Commit ends the run: the open transaction is committed (without
// checkpoints, the whole run's output is that one transaction).
func (t *txnSink) Commit(ctx context.Context) error {
	defer t.cl.Close()
	if t.pending != nil {
		if err := t.CommitCheckpoint(ctx, 0); err != nil {
			return err
		}
	}
	if t.cur == nil {
		return nil
	}
	cl := t.cur
	t.cur = nil
	defer cl.Close()
	if err := t.flush(ctx, cl); err != nil {
		cl.EndTransaction(ctx, kgo.TryAbort)
		return err
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("kafka: committing the transaction on %q: %w", t.o.topic, err)
	}
	return nil
}

// Abort aborts the open transaction. A pre-committed one is left open for
// Recover, which commits it if its checkpoint completed.
func (t *txnSink) Abort() error {
	defer t.cl.Close()
	if t.pending != nil {
		t.pending.Close()
		t.pending = nil
	}
	if t.cur == nil {
		return nil
	}
	cl := t.cur
	t.cur = nil
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	cl.AbortBufferedRecords(ctx)
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return fmt.Errorf("kafka: aborting the transaction on %q: %w", t.o.topic, err)
	}
	return nil
}
