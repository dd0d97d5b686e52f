package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/kafka"
	"github.com/weir-dev/weir/state"
)

// openSplit opens the source u and returns its only split.
func openSplit(t *testing.T, u string) (connector.ResumableSplit, connector.Source) {
	t.Helper()
	ctx := context.Background()
	src, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: "in", URI: uri(t, u), Type: reflect.TypeFor[event]()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	splits, _ := src.Splits(ctx)
	if len(splits) != 1 {
		t.Fatalf("%d splits, want 1", len(splits))
	}
	return splits[0].(connector.ResumableSplit), src
}

// readN reads n records from rd, with a generous deadline, and returns
// their N fields.
func readN(t *testing.T, rd connector.Reader, n int) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var got []int64
	buf := make([]connector.Record, n)
	for len(got) < n {
		k, err := rd.Read(ctx, buf[:n-len(got)])
		if err != nil {
			t.Fatalf("after %d records: %v", len(got), err)
		}
		for _, r := range buf[:k] {
			got = append(got, r.Value.(event).N)
		}
	}
	return got
}

func writeN(t *testing.T, addr, topic string, from, to int) {
	t.Helper()
	var vs []any
	for i := from; i < to; i++ {
		vs = append(vs, event{User: "u", N: int64(i)})
	}
	write(t, "kafka://"+addr+"/"+topic, vs)
}

// TestResumeRefusesAChangedTopic: a position stores the ids of its topic
// and cluster, and OpenAt refuses a position of a topic that was deleted
// and created again, or of another cluster, with connector.ErrSourceChanged
// and a line naming the topic and what changed; the same topic resumes, and
// a position of older Weir (a bare offset) is still accepted.
func TestResumeRefusesAChangedTopic(t *testing.T) {
	ctx := context.Background()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID("cluster-a"), kfake.SeedTopics(1, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := strings.Join(c.ListenAddrs(), ",")
	writeN(t, addr, "in", 0, 10)

	sp, _ := openSplit(t, "kafka://"+addr+"/in")
	rd, err := sp.Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	readN(t, rd, 4)
	pos := rd.(connector.Positioned).Position()
	rd.Close()

	// The same topic: the resume reads on from the 5th record.
	sp, _ = openSplit(t, "kafka://"+addr+"/in")
	rd, err = sp.OpenAt(ctx, pos)
	if err != nil {
		t.Fatalf("resume on the same topic: %v", err)
	}
	if got := readN(t, rd, 2); fmt.Sprint(got) != "[4 5]" {
		t.Errorf("resumed at %s, read %v, want [4 5]", pos, got)
	}
	rd.Close()

	// A position of older Weir: the offset alone, accepted unchecked.
	rd, err = sp.OpenAt(ctx, []byte("7"))
	if err != nil {
		t.Fatalf("a bare offset: %v", err)
	}
	if got := readN(t, rd, 1); fmt.Sprint(got) != "[7]" {
		t.Errorf("at a bare offset 7, read %v", got)
	}
	rd.Close()

	// The topic deleted and created again, with more records than the
	// position's offset: reading there would look fine and be wrong.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	if _, err := adm.DeleteTopic(ctx, "in"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "in"); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	writeN(t, addr, "in", 100, 120)
	sp, _ = openSplit(t, "kafka://"+addr+"/in")
	_, err = sp.OpenAt(ctx, pos)
	if !errors.Is(err, connector.ErrSourceChanged) || !strings.Contains(err.Error(), `topic "in" was deleted and created again`) || !strings.Contains(err.Error(), "--checkpoint-dir") || strings.Contains(err.Error(), "\n") {
		t.Errorf("resume on a recreated topic: got %v, want ErrSourceChanged naming the topic and the remedy in one line", err)
	}

	// Another cluster with a topic of the same name.
	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.ClusterID("cluster-b"), kfake.SeedTopics(1, "in"))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	addr2 := strings.Join(c2.ListenAddrs(), ",")
	writeN(t, addr2, "in", 200, 220)
	sp, _ = openSplit(t, "kafka://"+addr2+"/in")
	_, err = sp.OpenAt(ctx, pos)
	if !errors.Is(err, connector.ErrSourceChanged) || !strings.Contains(err.Error(), "another cluster") || !strings.Contains(err.Error(), "cluster-a") || !strings.Contains(err.Error(), "cluster-b") {
		t.Errorf("resume on another cluster: got %v, want ErrSourceChanged naming both clusters", err)
	}
}

// TestChangelogRefusesARecreatedTopic: a changelog's base position stores
// the ids of its topics, and a restore from a changelog topic deleted and
// created again since (which holds none of the checkpoint's state) fails
// with connector.ErrSourceChanged instead of restoring nothing; a base of
// older Weir (offsets alone) past the recreated topic's end fails the same
// way.
func TestChangelogRefusesARecreatedTopic(t *testing.T) {
	addr := cluster(t, 1, "unused")
	ctx := context.Background()
	u := "kafka://" + addr + "/job?partitions=1"
	cfg := kafka.ChangelogConfig{Operators: map[uint32]string{1: "Count"}, KeyGroups: 128}
	c, err := kafka.OpenChangelog(ctx, u, cfg)
	if err != nil {
		t.Fatal(err)
	}
	base, err := c.End(ctx)
	if err != nil {
		t.Fatal(err)
	}
	key := state.AppendCell(nil, state.Cell{Op: 1, KG: 3, Key: []byte("k"), Name: "v"})
	for i := range 5 {
		if err := c.Changed(key, []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.PreCommit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	c.Close()

	restore := func(base []byte) (int, error) {
		c, err := kafka.OpenChangelog(ctx, u, cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		n := 0
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		_, err = c.Restore(rctx, base, func(k, v []byte) error { n++; return nil })
		return n, err
	}
	if n, err := restore(base); err != nil || n != 5 {
		t.Fatalf("restore from the same topic: %d changes, %v; want 5", n, err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).DeleteTopic(ctx, "job-Count-changelog"); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	n, err := restore(base)
	if !errors.Is(err, connector.ErrSourceChanged) || !strings.Contains(err.Error(), `changelog topic "job-Count-changelog" was deleted and created again`) {
		t.Errorf("restore from a recreated changelog topic: %d changes, %v; want ErrSourceChanged naming the topic", n, err)
	}
	n, err = restore([]byte(`{"job-Count-changelog":{"0":5}}`))
	if !errors.Is(err, connector.ErrSourceChanged) || !strings.Contains(err.Error(), "before the checkpoint's base offset 5") {
		t.Errorf("an older base past the recreated topic's end: %d changes, %v; want ErrSourceChanged", n, err)
	}
	if n, err := restore([]byte(`{"job-Count-changelog":{"0":0}}`)); err != nil || n != 0 {
		t.Errorf("an older base at the recreated topic's start: %d changes, %v; want none and no error", n, err)
	}
}
