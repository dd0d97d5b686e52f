package runner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
)

// TestCheckpointOffsetsReachTheGroup: a stream job reading a topic with
// group= commits each completed checkpoint's offsets to that consumer
// group, so that after a stop (a final checkpoint) the group's offsets are
// the ends of the partitions, as Kafka's tools would show them.
func TestCheckpointOffsetsReachTheGroup(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "views"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("views"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 90
	for i := range n {
		b, _ := json.Marshal(ev{Key: fmt.Sprintf("k%d", i%10), At: int64(i), V: 1})
		if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 10)), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, "views")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})

	p := sdk.NewPipeline()
	sdk.Write(sdk.Map(sdk.Read[ev](p, "in", sdk.EventTime(at)), func(e ev) string { return e.Key }), "out")
	out := fmt.Sprintf("group-out-%d", names.Add(1))
	col := memory.NewCollector(out)
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := runner.Run(ctx, p, runner.Options{Mode: runner.Stream, Progress: -1, Parallelism: 2, Logger: slog.New(slog.DiscardHandler),
			CheckpointDir: filepath.Join(t.TempDir(), "ckpt"), CheckpointInterval: 50 * time.Millisecond, Stop: stop,
			Bindings: map[string]string{"in": "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/views?group=profile-views", "out": "mem://" + out}})
		done <- err
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for len(col.Values()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := len(col.Values()); got != n {
		t.Fatalf("the job wrote %d values, want %d", got, n)
	}
	resp, err := adm.FetchOffsets(ctx, "profile-views")
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32]int64{}
	resp.Each(func(r kadm.OffsetResponse) { got[r.Partition] = r.At })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the group's offsets after the stop are %v, want the ends %v", got, want)
	}
}
