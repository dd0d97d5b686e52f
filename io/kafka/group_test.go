package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/kafka"
)

// TestGroupOffsets: a source with group= commits the positions it is given
// to the consumer group, where Kafka's tools see them, and start=group
// starts from them (the earliest offset where the group has none).
func TestGroupOffsets(t *testing.T) {
	addr := cluster(t, 3, "views")
	base := "kafka://" + addr + "/views"
	var vs []any
	for i := range 60 {
		vs = append(vs, event{User: fmt.Sprintf("u%d", i%9), N: int64(i)})
	}
	write(t, base+"?key=user", vs)
	ctx := context.Background()

	src, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: "in", URI: uri(t, base+"?group=profile-views"), Type: reflect.TypeFor[event]()})
	if err != nil {
		t.Fatal(err)
	}
	pc, ok := src.(connector.PositionCommitter)
	if !ok {
		t.Fatal("a kafka source does not take positions")
	}
	if err := pc.CommitPositions(ctx, map[string][]byte{"views/0": []byte("3"), "views/2": []byte("5")}); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addr, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).FetchOffsets(ctx, "profile-views")
	if err != nil {
		t.Fatal(err)
	}
	got := map[int32]int64{}
	resp.Each(func(r kadm.OffsetResponse) { got[r.Partition] = r.At })
	if want := map[int32]int64{0: 3, 2: 5}; !reflect.DeepEqual(got, want) {
		t.Errorf("the group's offsets are %v, want %v", got, want)
	}

	all, _ := readAll(t, base+"?until=latest")
	perPartition := map[string]int{}
	for _, r := range all {
		perPartition[r.Pos[:strings.Index(r.Pos, "@")]]++
	}
	recs, _ := readAll(t, base+"?group=profile-views&start=group&until=latest")
	if want := len(all) - 3 - 5; len(recs) != want {
		t.Errorf("start=group read %d records, want %d (all %d less the 3 and 5 the group has read)", len(recs), want, len(all))
	}
	for _, r := range recs {
		part, o, _ := strings.Cut(r.Pos, "@")
		off, _ := strconv.Atoi(o)
		if part == "views/0" && off < 3 || part == "views/2" && off < 5 {
			t.Errorf("start=group read %s, before the group's offset", r.Pos)
		}
	}
	if perPartition["views/0"] < 3 || perPartition["views/2"] < 5 {
		t.Fatalf("partitions too small for the test: %v", perPartition)
	}
}

func TestGroupOptionErrors(t *testing.T) {
	addr := cluster(t, 1, "here")
	ctx := context.Background()
	_, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: "in", URI: uri(t, "kafka://"+addr+"/here?start=group"), Type: reflect.TypeFor[event]()})
	if !errors.Is(err, kafka.ErrBadURI) || !strings.Contains(err.Error(), "start=group needs group=NAME") {
		t.Errorf("start=group without a group: %v", err)
	}
	_, err = connector.OpenSink(ctx, connector.SinkSpec{Binding: "out", URI: uri(t, "kafka://"+addr+"/here?group=g"), Type: reflect.TypeFor[event]()})
	if !errors.Is(err, kafka.ErrBadURI) || !strings.Contains(err.Error(), "group=") {
		t.Errorf("group= on a sink: %v", err)
	}
}
