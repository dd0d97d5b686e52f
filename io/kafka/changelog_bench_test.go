package kafka_test

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-dev/weir/io/kafka"
	"github.com/weir-dev/weir/state"
)

// BenchmarkChangelogRestore measures rebuilding a task's keyed state from
// its changelog on the embedded broker: WEIR_BENCH_STATE_MB (default 1024)
// MiB of 1 KiB values under cell keys of 128 key groups, the data of the
// state package's BenchmarkRestore, read back read_committed into a fresh
// Pebble store and then read in full. The embedded broker runs in the
// benchmark's process, on the same cores. Run both side by side with
//
//	go test ./state ./io/kafka -run XXX -bench Restore -benchtime 1x
func BenchmarkChangelogRestore(b *testing.B) {
	mb := 1024
	if s := os.Getenv("WEIR_BENCH_STATE_MB"); s != "" {
		mb, _ = strconv.Atoi(s)
	}
	// WEIR_BENCH_READ_ONLY=1 drops the changes instead of loading them:
	// the broker's and the client's part alone.
	readOnly := os.Getenv("WEIR_BENCH_READ_ONLY") != ""
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	uri := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/bench"
	cfg := kafka.ChangelogConfig{Operators: map[uint32]string{1: "Count"}, KeyGroups: 128}
	w, err := kafka.OpenChangelog(ctx, uri, cfg)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 1))
	val := make([]byte, 1024)
	var size int64
	for i := 0; i < mb<<10; i++ {
		for j := 0; j < len(val); j += 8 {
			binary.LittleEndian.PutUint64(val[j:], rng.Uint64())
		}
		key := binary.BigEndian.AppendUint64(nil, uint64(i))
		k := state.AppendCell(nil, state.Cell{Op: 1, KG: state.KeyGroupOf(key, 128), Key: key, Name: "v"})
		if err := w.Changed(k, val); err != nil {
			b.Fatal(err)
		}
		size += int64(len(k) + len(val))
		if i%(64<<10) == 0 { // a checkpoint every 64 MiB
			if _, err := w.PreCommit(ctx); err != nil {
				b.Fatal(err)
			}
			if err := w.Commit(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.CommitOpen(ctx); err != nil {
		b.Fatal(err)
	}
	w.Close()
	r, err := kafka.OpenChangelog(ctx, uri, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	// The phases, in seconds per restore: the read with the changes
	// handed to the Loader, the Loader's last chunk, and (outside the
	// timer, so not in MB/s) the read back that checks it.
	var read, load, scan float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		db, err := state.OpenPebble(b.TempDir(), nil)
		if err != nil {
			b.Fatal(err)
		}
		l := state.NewLoader(db)
		apply := l.Apply
		if readOnly {
			apply = func(k, v []byte) error { return nil }
		}
		t0 := time.Now()
		st, err := r.Restore(ctx, nil, apply)
		t1 := time.Now()
		if err == nil {
			err = l.Close()
		}
		t2 := time.Now()
		if err != nil {
			b.Fatal(err)
		}
		// The read back checks the restore; it is not part of it.
		b.StopTimer()
		if st.Bytes != size {
			b.Fatalf("restored %d bytes, wrote %d", st.Bytes, size)
		}
		it, err := db.NewIter(nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		var n int64
		for ok := it.First(); ok; ok = it.Next() {
			n += int64(len(it.Value()))
		}
		it.Close()
		if n != int64(mb)<<20 && !readOnly {
			b.Fatalf("read %d value bytes back, want %d", n, int64(mb)<<20)
		}
		db.Close()
		read, load, scan = read+t1.Sub(t0).Seconds(), load+t2.Sub(t1).Seconds(), scan+time.Since(t2).Seconds()
		b.StartTimer()
	}
	b.ReportMetric(float64(size)/(1<<20)/(b.Elapsed().Seconds()/float64(b.N)), "MB/s")
	b.ReportMetric(float64(size)/(1<<20), "MB")
	b.ReportMetric(read/float64(b.N), "read-s")
	b.ReportMetric(load/float64(b.N), "load-s")
	b.ReportMetric(scan/float64(b.N), "scan-s")
}
