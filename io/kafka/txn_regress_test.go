package kafka_test

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestRecoverRetriesConcurrentTransactions: a real broker answers an
// InitProducerID for a transactional id whose transaction is still open
// (the crashed run's) or still completing (the one Recover just committed
// with EndTxn: PrepareCommit until its markers are written) with
// CONCURRENT_TRANSACTIONS, and expects the client to retry. kfake ends
// transactions synchronously, so the fault is injected once, as a broker
// would answer. Recover must retry instead of failing the restart.
func TestRecoverRetriesConcurrentTransactions(t *testing.T) {
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	u := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/out?delivery=exactly-once&txn-id=job-r"

	s := openTxnSink(t, u)
	s.Write(ctx, evs("a"))
	h1, _ := s.PreCommit(ctx, 1)
	if err := s.CommitCheckpoint(ctx, 1); err != nil {
		t.Fatal(err)
	}
	s.Write(ctx, evs("x")) // crash with x in an open transaction

	// What a real broker answers to the fence while it aborts x's
	// transaction.
	c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.InitProducerID}, Err: kerr.ConcurrentTransactions, TopLevel: true})
	if err := openTxnSink(t, u).Recover(ctx, 1, h1); err != nil {
		t.Fatalf("restart failed on a retriable CONCURRENT_TRANSACTIONS: %v", err)
	}
}
