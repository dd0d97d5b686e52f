package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/kafka"
	"github.com/weir-dev/weir/state"
)

// TestPartitionsOption: partitions= reads those partitions only, and one
// the topic does not have is an error naming it.
func TestPartitionsOption(t *testing.T) {
	addr := cluster(t, 3, "views")
	base := "kafka://" + addr + "/views"
	var vs []any
	for i := range 90 {
		vs = append(vs, event{User: fmt.Sprintf("u%d", i%9), N: int64(i)})
	}
	write(t, base+"?key=user", vs)
	ns := func(opt string) []int64 {
		t.Helper()
		recs, _ := readAll(t, base+"?until=latest"+opt)
		var out []int64
		for _, r := range recs {
			out = append(out, r.Value.(event).N)
		}
		slices.Sort(out)
		return out
	}
	all := ns("")
	if len(all) != 90 {
		t.Fatalf("the whole topic: %d records, want 90", len(all))
	}
	var each [][]int64
	var union []int64
	for p := range 3 {
		got := ns(fmt.Sprintf("&partitions=%d", p))
		if len(got) == 0 {
			t.Fatalf("partitions=%d: nothing read", p)
		}
		each = append(each, got)
		union = append(union, got...)
	}
	if slices.Sort(union); !slices.Equal(union, all) {
		t.Errorf("the partitions read one by one: %v, want each record once: %v", union, all)
	}
	two := slices.Sorted(slices.Values(append(slices.Clone(each[0]), each[2]...)))
	if got := ns("&partitions=2,0"); !slices.Equal(got, two) {
		t.Errorf("partitions=2,0: %v, want %v", got, two)
	}
	for opt, want := range map[string]string{"3": "has no partition 3", "x": `"x" is not a partition number`, "-1": "is not a partition number"} {
		_, err := connector.OpenSource(context.Background(), connector.SourceSpec{Binding: "in", URI: uri(t, base+"?partitions="+opt), Type: reflect.TypeFor[event]()})
		if !errors.Is(err, kafka.ErrBadURI) || !strings.Contains(err.Error(), want) {
			t.Errorf("partitions=%s: %v, want ErrBadURI saying %q", opt, err, want)
		}
	}
}

// TestChangelogOfTasks: the changelog of one task of a scaled-out job
// writes its task's partition alone and restores that partition alone, so
// a task that moves gets its own state back and no other task's.
func TestChangelogOfTasks(t *testing.T) {
	addr := cluster(t, 1, "unused")
	ctx := context.Background()
	u := "kafka://" + addr + "/job"
	ops := map[uint32]string{1: "Count"}
	keys := func(task int) map[string]string {
		m := map[string]string{}
		for i := range 50 { // keys in every key group
			key := fmt.Appendf(nil, "t%d-k%d", task, i)
			m[string(state.AppendCell(nil, state.Cell{Op: 1, KG: state.KeyGroupOf(key, 128), Key: key, Name: "v"}))] = fmt.Sprint(task, i)
		}
		return m
	}
	for task := range 3 {
		c, err := kafka.OpenChangelog(ctx, u, kafka.ChangelogConfig{Operators: ops, KeyGroups: 128, Tasks: 3, Task: int32(task)})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range keys(task) {
			if err := c.Changed([]byte(k), []byte(v)); err != nil {
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
	}
	for task := range 3 {
		c, err := kafka.OpenChangelog(ctx, u, kafka.ChangelogConfig{Operators: ops, KeyGroups: 128, Tasks: 3, Task: int32(task)})
		if err != nil {
			t.Fatal(err)
		}
		ends, err := c.Ends(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for topic, ps := range ends {
			if len(ps) != 1 || ps[int32(task)] == 0 {
				t.Errorf("task %d: ends of %s are %v, want its partition %d alone", task, topic, ps, task)
			}
		}
		got := map[string]string{}
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		_, err = c.Restore(rctx, nil, func(k, v []byte) error { got[string(k)] = string(v); return nil })
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if want := keys(task); !reflect.DeepEqual(got, want) {
			t.Errorf("task %d restored %d keys, want its own %d", task, len(got), len(want))
		}
		c.Close()
	}
	if _, err := kafka.OpenChangelog(ctx, u+"?partitions=3", kafka.ChangelogConfig{Operators: ops, KeyGroups: 128, Tasks: 3, Task: 0}); !errors.Is(err, kafka.ErrBadURI) {
		t.Errorf("partitions= with tasks: %v, want ErrBadURI", err)
	}
}

// TestJoinGroupChecks: a scaled-out job's sources must be plain kafka://
// topics on one cluster with as many partitions each.
func TestJoinGroupChecks(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "views", "clicks"), kfake.SeedTopics(2, "profiles"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/"
	nop := func([]int32, int32, error) {}
	for _, tc := range []struct {
		name    string
		sources []string
		want    string
	}{
		{"partition counts differ", []string{k + "views", k + "profiles"}, `"profiles" (2 partitions)`},
		{"not kafka", []string{"file:///tmp/views.jsonl"}, "kafka:// sources only"},
		{"group= on a source", []string{k + "views?group=g"}, "do not apply in consumer group"},
		{"partitions= on a source", []string{k + "views?partitions=1"}, "do not apply in consumer group"},
		{"no source", nil, "needs a kafka:// source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := kafka.JoinGroup(context.Background(), kafka.MemberConfig{Sources: tc.sources, Group: "g", Assigned: nop, Revoked: func() {}, Lost: func() {}})
			if err == nil {
				m.Close()
				t.Fatal("joined")
			}
			if !errors.Is(err, kafka.ErrBadURI) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("%v, want one line wrapping ErrBadURI saying %q", err, tc.want)
			}
		})
	}
}

// TestJoinGroupAssignsTasks: two members of a group over two topics of
// four partitions share the four tasks, each getting the same partitions
// of both topics; when one leaves, the other is given all four.
func TestJoinGroupAssignsTasks(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, "views", "clicks"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k := "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/"
	type assignment struct {
		tasks []int32
		err   error
	}
	join := func() (*kafka.Member, chan assignment) {
		ch := make(chan assignment, 16)
		m, err := kafka.JoinGroup(context.Background(), kafka.MemberConfig{
			Sources: []string{k + "views", k + "clicks?until=latest"}, Group: "g",
			Assigned: func(tasks []int32, of int32, err error) {
				if of != 4 {
					err = fmt.Errorf("of %d tasks, want 4", of)
				}
				ch <- assignment{tasks, err}
			},
			Revoked: func() {}, Lost: func() {},
		})
		if err != nil {
			t.Fatal(err)
		}
		return m, ch
	}
	next := func(ch chan assignment) []int32 {
		t.Helper()
		select {
		case a := <-ch:
			if a.err != nil {
				t.Fatal(a.err)
			}
			return a.tasks
		case <-time.After(time.Minute):
			t.Fatal("no assignment")
			return nil
		}
	}
	a, ach := join()
	if got := next(ach); !slices.Equal(got, []int32{0, 1, 2, 3}) {
		t.Fatalf("alone: tasks %v, want all four", got)
	}
	b, bch := join()
	defer b.Close()
	// The group rebalances: a gives up its tasks and both get two.
	var ta, tb []int32
	for len(ta) != 2 {
		ta = next(ach)
	}
	tb = next(bch)
	if both := slices.Sorted(slices.Values(append(slices.Clone(ta), tb...))); !slices.Equal(both, []int32{0, 1, 2, 3}) {
		t.Fatalf("tasks %v and %v, want the four between them", ta, tb)
	}
	a.Close()
	for len(tb) != 4 {
		tb = next(bch)
	}
}
