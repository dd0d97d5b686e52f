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

// txnWriter writes records in Kafka transactions that follow checkpoints:
// what is written between two checkpoints goes in one transaction, so a
// read_committed consumer sees a checkpoint's records all at once, after the
// checkpoint is complete, and never those of a run that crashed after its
// last checkpoint. The exactly-once sink and the state changelog use it.
//
// Each transaction has a producer of its own, whose InitProducerID bumps
// the epoch of the transactional id; so a (producer id, epoch) pair names
// one transaction. preCommit flushes the open transaction without ending it
// and returns that pair as the checkpoint's handle; commit ends it. After a
// crash, recover ends the transaction of the checkpoint the job resumes
// from with the handle (an EndTxn request, as Flink's KafkaSink does by
// resuming the producer), then fences the transactional id, which aborts
// whatever the crashed run wrote after that checkpoint.
//
// Callers never produce between preCommit and commit, so the next
// transaction's producer (which fences the id) is created only once the
// previous transaction is committed. produce may be called concurrently;
// the other methods are called by one goroutine while nothing produces.
type txnWriter struct {
	brokers []string
	txnID   string
	timeout time.Duration
	opts    []kgo.Opt   // producer options (default topic, partitioner)
	plain   *kgo.Client // for Recover's requests

	pending *kgo.Client // pre-committed, waiting for commit

	// mark, when set, records in each transaction the checkpoint it
	// belongs to (see checkpointMark); the exactly-once sink sets it.
	mark *checkpointMark

	// ctx is the records' context: a record must outlive the Write that
	// produced it (it is sent later, at the latest by preCommit's flush),
	// so it is not the caller's. abort cancels it.
	ctx    context.Context
	cancel context.CancelFunc

	mu struct {
		sync.Mutex
		cur     *kgo.Client // the open transaction; nil until the next write
		records int64       // produced in cur
		err     error       // the first failed produce of cur
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

func newTxnWriter(o *options, plain *kgo.Client, opts ...kgo.Opt) *txnWriter {
	w := &txnWriter{brokers: o.brokers, txnID: o.txnID, timeout: o.txnTimeout, opts: opts, plain: plain}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	return w
}

func (w *txnWriter) beginLocked() error {
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(w.brokers...),
		kgo.ClientID("weir"),
		kgo.RetryTimeout(requestTimeout),
		kgo.TransactionalID(w.txnID),
		kgo.TransactionTimeout(w.timeout),
	}, w.opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("kafka: client for %v: %w", w.brokers, err)
	}
	if err := cl.BeginTransaction(); err != nil {
		cl.Close()
		return fmt.Errorf("kafka: beginning a transaction under %q: %w", w.txnID, err)
	}
	w.mu.cur, w.mu.records, w.mu.err = cl, 0, nil
	return nil
}

// produce writes records in the open transaction, opening one if needed.
// Produce errors surface at the latest when the transaction is flushed.
// When the client's buffer is full it waits, until ctx is done, for what is
// buffered to be sent.
func (w *txnWriter) produce(ctx context.Context, recs ...*kgo.Record) error {
	if w.pending != nil {
		return errors.New("kafka: internal error: a write before the pre-committed transaction was committed")
	}
	w.mu.Lock()
	if w.mu.cur == nil {
		if err := w.beginLocked(); err != nil {
			w.mu.Unlock()
			return err
		}
	}
	cl, err := w.mu.cur, w.mu.err
	w.mu.records += int64(len(recs))
	w.mu.Unlock()
	if err != nil {
		return err
	}
	// Produce would wait for room on the records' context, which a
	// stopping job does not cancel: wait here, on ctx, instead.
	if cl.BufferedProduceRecords() >= flushAtBuffered {
		if err := cl.Flush(ctx); err != nil {
			return fmt.Errorf("kafka: transaction %q: %w", w.txnID, err)
		}
	}
	for _, r := range recs {
		cl.Produce(w.ctx, r, w.produced)
	}
	return nil
}

// flushAtBuffered is the number of buffered records at which produce waits
// for them to be sent: below franz-go's default limit of 50000 (where
// Produce blocks), by more than a batch.
const flushAtBuffered = 40000

func (w *txnWriter) produced(r *kgo.Record, err error) {
	if err != nil {
		w.mu.Lock()
		if w.mu.err == nil {
			w.mu.err = fmt.Errorf("kafka: producing to %q in transaction %q: %w", r.Topic, w.txnID, err)
		}
		w.mu.Unlock()
	}
}

// takeOpen detaches the open transaction, if any.
func (w *txnWriter) takeOpen() (*kgo.Client, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cl, n := w.mu.cur, w.mu.records
	w.mu.cur = nil
	return cl, n
}

// flush waits until every record of cl's transaction is acknowledged.
func (w *txnWriter) flush(ctx context.Context, cl *kgo.Client) error {
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("kafka: flushing transaction %q: %w", w.txnID, err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.err
}

// preCommit flushes the open transaction of checkpoint id and returns its
// handle; it stays open until commit (or recover, after a crash). With
// nothing written it returns no handle.
func (w *txnWriter) preCommit(ctx context.Context, id int64) ([]byte, error) {
	cl, n := w.takeOpen()
	if cl == nil {
		return nil, nil
	}
	if err := w.flush(ctx, cl); err != nil {
		cl.Close()
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	pid, epoch, err := cl.ProducerID(pctx)
	if err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka: the producer id of transaction %q: %w", w.txnID, err)
	}
	if w.mark != nil && id > 0 {
		if err := w.mark.add(ctx, w, pid, epoch, id); err != nil {
			cl.Close()
			return nil, err
		}
	}
	h, err := json.Marshal(txnHandle{TxnID: w.txnID, ProducerID: pid, Epoch: epoch, Records: n, At: time.Now().UTC()})
	if err != nil {
		cl.Close()
		return nil, err
	}
	w.pending = cl
	return h, nil
}

// commit commits the pre-committed transaction, if any.
func (w *txnWriter) commit(ctx context.Context) error {
	if w.pending == nil {
		return nil
	}
	cl := w.pending
	w.pending = nil
	defer cl.Close()
	if err := w.end(ctx, cl, kgo.TryCommit); err != nil {
		return fmt.Errorf("kafka: committing transaction %q: %w", w.txnID, err)
	}
	return nil
}

// end ends cl's transaction, within requestTimeout: an EndTxn that no
// coordinator answers fails instead of holding the job (the transaction
// stays open, and a restart's recover commits or aborts it).
func (w *txnWriter) end(ctx context.Context, cl *kgo.Client, how kgo.TransactionEndTry) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return cl.EndTransaction(ctx, how)
}

// commitOpen flushes and commits the open transaction, if any (the end of
// a run).
func (w *txnWriter) commitOpen(ctx context.Context) error {
	if err := w.commit(ctx); err != nil {
		return err
	}
	cl, _ := w.takeOpen()
	if cl == nil {
		return nil
	}
	defer cl.Close()
	if err := w.flush(ctx, cl); err != nil {
		w.end(ctx, cl, kgo.TryAbort)
		return err
	}
	if err := w.end(ctx, cl, kgo.TryCommit); err != nil {
		return fmt.Errorf("kafka: committing transaction %q: %w", w.txnID, err)
	}
	return nil
}

// abort aborts the open transaction. A pre-committed one is left open for
// recover, which commits it if its checkpoint completed.
func (w *txnWriter) abort() error {
	w.cancel()
	if w.pending != nil {
		w.pending.Close()
		w.pending = nil
	}
	cl, _ := w.takeOpen()
	if cl == nil {
		return nil
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	cl.AbortBufferedRecords(ctx)
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		return fmt.Errorf("kafka: aborting transaction %q: %w", w.txnID, err)
	}
	return nil
}

// recover commits the transaction of checkpoint id, if handle names one,
// and aborts any other transaction open under the id.
func (w *txnWriter) recover(ctx context.Context, id int64, handle []byte) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if handle != nil {
		var h txnHandle
		if err := json.Unmarshal(handle, &h); err != nil {
			return fmt.Errorf("kafka: checkpoint %d: unreadable transaction handle: %v", id, err)
		}
		if err := w.commitHandle(ctx, id, h); err != nil {
			return err
		}
	}
	if err := w.fence(ctx); err != nil {
		return err
	}
	if w.mark != nil {
		// Only now is no transaction of the id open or completing, so
		// the mark read is the last committed one.
		return w.mark.check(ctx, w, id)
	}
	return nil
}

// whileConcurrent repeats a transaction coordinator request while it
// answers CONCURRENT_TRANSACTIONS: a broker that is still completing a
// transaction (a crashed run's, or the one just ended) says so until it is
// done. It returns the last answer's error code.
func whileConcurrent(ctx context.Context, do func() (int16, error)) (int16, error) {
	for wait := 20 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		code, err := do()
		if err != nil || !errors.Is(kerr.ErrorForCode(code), kerr.ConcurrentTransactions) {
			return code, err
		}
		select {
		case <-ctx.Done():
			return code, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// coordinatorRequest is a transaction coordinator request of kmsg's, whose
// answer is R.
type coordinatorRequest[R any] interface {
	RequestWith(context.Context, kmsg.Requestor) (R, error)
}

// askCoordinator sends req through cl, repeated while the coordinator is
// still completing a transaction (whileConcurrent), and returns the
// error of the answer's code (code reads it), or of the request.
func askCoordinator[R any](ctx context.Context, cl *kgo.Client, req coordinatorRequest[R], code func(R) int16) error {
	c, err := whileConcurrent(ctx, func() (int16, error) {
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return 0, err
		}
		return code(resp), nil
	})
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(c)
}

func (w *txnWriter) commitHandle(ctx context.Context, id int64, h txnHandle) error {
	req := kmsg.NewPtrEndTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = h.TxnID, h.ProducerID, h.Epoch, true
	switch err := askCoordinator(ctx, w.plain, req, func(r *kmsg.EndTxnResponse) int16 { return r.ErrorCode }); {
	case err == nil:
		return nil
	case errors.Is(err, kerr.ProducerFenced), errors.Is(err, kerr.InvalidProducerEpoch), errors.Is(err, kerr.InvalidProducerIDMapping):
		// A newer producer has the id: this run's next transaction
		// began, which happens only after this one was committed; or the
		// broker timed the transaction out and aborted it.
		if age := time.Since(h.At); age >= w.timeout {
			return fmt.Errorf("kafka: the transaction of checkpoint %d (%q, %d records) was pre-committed %s ago, longer than txn-timeout=%s: the broker may have aborted it, and its output may be lost (%v)",
				id, h.TxnID, h.Records, age.Round(time.Second), w.timeout, err)
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
func (w *txnWriter) fence(ctx context.Context) error {
	req := kmsg.NewPtrInitProducerIDRequest()
	id := w.txnID
	req.TransactionalID = &id
	req.TransactionTimeoutMillis = int32(w.timeout.Milliseconds())
	if err := askCoordinator(ctx, w.plain, req, func(r *kmsg.InitProducerIDResponse) int16 { return r.ErrorCode }); err != nil {
		return fmt.Errorf("kafka: aborting what a crashed run left open under txn-id %q: %w", id, err)
	}
	return nil
}

// txnSink is a sink with delivery=exactly-once: a txnWriter on its topic.
// Without checkpoints, the whole run's output is one transaction,
// committed by Commit.
type txnSink struct {
	*sink // encoding, keys, and cl: the plain client
	w     *txnWriter
}

var _ connector.PublishedSink = (*txnSink)(nil)

func (t *txnSink) Write(ctx context.Context, values []any) error {
	if len(values) == 0 {
		return nil
	}
	recs, err := t.sink.records(values)
	if err != nil {
		return err
	}
	return t.w.produce(ctx, recs...)
}

// PreCommit flushes the open transaction and returns its handle.
func (t *txnSink) PreCommit(ctx context.Context, id int64) ([]byte, error) {
	return t.w.preCommit(ctx, id)
}

// CommitCheckpoint commits the transaction pre-committed for id.
func (t *txnSink) CommitCheckpoint(ctx context.Context, id int64) error {
	if err := t.w.commit(ctx); err != nil {
		return fmt.Errorf("%w (checkpoint %d, topic %q)", err, id, t.o.topic)
	}
	return nil
}

// Recover commits the transaction of checkpoint id and aborts any later one.
// It fails with connector.ErrPublishedAhead when the output of a later
// checkpoint was committed already (checkpointMark).
func (t *txnSink) Recover(ctx context.Context, id int64, handle []byte) error {
	return t.w.recover(ctx, id, handle)
}

// Published returns the newest checkpoint whose output the transactional
// id committed (its mark; 0 when it has none). It does not wait for, nor
// end, a transaction a crashed run left open: that one is not published.
func (t *txnSink) Published(ctx context.Context) (int64, error) {
	if t.w.mark == nil {
		return 0, nil
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	last, err := t.w.mark.read(ctx, t.w, false)
	if err != nil {
		return 0, fmt.Errorf("kafka: reading the last committed checkpoint of txn-id %q: %w", t.w.txnID, err)
	}
	return max(last, 0), nil
}

// Commit commits the open transaction.
func (t *txnSink) Commit(ctx context.Context) error {
	defer t.cl.Close()
	return t.w.commitOpen(ctx)
}

// Abort aborts the open transaction; a pre-committed one waits for Recover.
func (t *txnSink) Abort() error {
	defer t.cl.Close()
	return t.w.abort()
}
