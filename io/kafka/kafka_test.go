package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/kafka"
)

type event struct {
	User string `json:"user"`
	N    int64  `json:"n"`
}

func cluster(t *testing.T, partitions int32, topics ...string) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(partitions, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

func uri(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func write(t *testing.T, u string, vs []any) {
	t.Helper()
	ctx := context.Background()
	s, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: "out", URI: uri(t, u), Type: reflect.TypeFor[event]()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, vs); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// readAll reads every split of a bounded source to its end.
func readAll(t *testing.T, u string) ([]connector.Record, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: "in", URI: uri(t, u), Type: reflect.TypeFor[event]()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if !src.Bounded() {
		t.Fatalf("%s: not bounded", u)
	}
	splits, _ := src.Splits(ctx)
	var out []connector.Record
	buf := make([]connector.Record, 64)
	for _, sp := range splits {
		rd, err := sp.Open(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for {
			n, err := rd.Read(ctx, buf)
			out = append(out, buf[:n]...)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		rd.Close()
	}
	return out, len(splits)
}

func TestRoundTripAndBounds(t *testing.T) {
	addr := cluster(t, 3, "events")
	base := "kafka://" + addr + "/events"
	var vs []any
	for i := 0; i < 300; i++ {
		vs = append(vs, event{User: fmt.Sprintf("u%d", i%7), N: int64(i)})
	}
	write(t, base+"?key=user", vs)
	time.Sleep(10 * time.Millisecond)
	middle := time.Now()
	time.Sleep(10 * time.Millisecond)
	write(t, base+"?key=user", []any{event{User: "late", N: 1000}})

	recs, splits := readAll(t, base+"?until=latest")
	if splits != 3 {
		t.Errorf("%d splits, want one per partition (3)", splits)
	}
	var got []string
	users := map[string]map[string]bool{} // user -> partitions
	for _, r := range recs {
		if r.Err != nil || !r.HasTimestamp || r.Timestamp < 0 {
			t.Fatalf("record %+v", r)
		}
		e := r.Value.(event)
		got = append(got, fmt.Sprint(e.N))
		part := r.Pos[:strings.Index(r.Pos, "@")]
		if users[e.User] == nil {
			users[e.User] = map[string]bool{}
		}
		users[e.User][part] = true
	}
	if len(got) != 301 {
		t.Fatalf("read %d records, want 301", len(got))
	}
	for u, ps := range users {
		if len(ps) != 1 {
			t.Errorf("records keyed %q are in %d partitions, want one", u, len(ps))
		}
	}
	sort.Strings(got)

	if recs, _ := readAll(t, base+"?start=latest&until=latest"); len(recs) != 0 {
		t.Errorf("start=latest&until=latest read %d records", len(recs))
	}
	if recs, _ := readAll(t, fmt.Sprintf("%s?until=%d", base, middle.UnixMilli())); len(recs) != 300 {
		t.Errorf("until the middle read %d records, want 300", len(recs))
	}
	if recs, _ := readAll(t, fmt.Sprintf("%s?start=%s&until=latest", base, middle.UTC().Format(time.RFC3339Nano))); len(recs) != 1 {
		t.Errorf("from the middle read %d records, want 1", len(recs))
	}
}

func TestMalformedRecordIsARecordWithItsPosition(t *testing.T) {
	addr := cluster(t, 1, "raw")
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("raw"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	for _, v := range []string{`{"user":"a","n":1}`, `{"user":`, `{"user":"b","n":"two"}`, `{"user":"c","n":3}`} {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	recs, _ := readAll(t, "kafka://"+addr+"/raw?until=latest")
	if len(recs) != 4 {
		t.Fatalf("%d records", len(recs))
	}
	for i, want := range []string{"", "raw/0@1", "raw/0@2", ""} {
		if (want == "") != (recs[i].Err == nil) || want != "" && (recs[i].Pos != want || len(recs[i].Raw) == 0) {
			t.Errorf("record %d: %+v", i, recs[i])
		}
	}
}

func TestErrors(t *testing.T) {
	addr := cluster(t, 1, "here")
	ctx := context.Background()
	open := func(u string) error {
		_, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: "in", URI: uri(t, u), Type: reflect.TypeFor[event]()})
		return err
	}
	if err := open("kafka://" + addr + "/missing"); !errors.Is(err, connector.ErrNotFound) || !strings.Contains(err.Error(), `topic "missing"`) {
		t.Errorf("missing topic: %v", err)
	}
	if err := open("kafka://" + addr + "/here?until=soon&colour=red"); !errors.Is(err, kafka.ErrBadURI) || !strings.Contains(err.Error(), "until=\"soon\"") || !strings.Contains(err.Error(), `unknown option "colour"`) {
		t.Errorf("bad options: %v", err)
	}
	if err := open("kafka:///here"); !errors.Is(err, kafka.ErrBadURI) {
		t.Errorf("no broker: %v", err)
	}
	_, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: "out", URI: uri(t, "kafka://"+addr+"/here?key=nope"), Type: reflect.TypeFor[event]()})
	if !errors.Is(err, kafka.ErrBadURI) || !strings.Contains(err.Error(), `key="nope"`) {
		t.Errorf("bad key: %v", err)
	}
}

// Records of aborted transactions are never data, and a bounded read ends
// at the last stable offset even with markers in the way.
func TestReadCommittedOnly(t *testing.T) {
	addr := cluster(t, 1, "tx")
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("tx"), kgo.TransactionalID("weir-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	txn := func(commit bool, vs ...string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range vs {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	txn(false, `{"user":"aborted","n":1}`, `{"user":"aborted","n":2}`)
	txn(true, `{"user":"kept","n":3}`)
	recs, _ := readAll(t, "kafka://"+addr+"/tx?until=latest")
	if len(recs) != 1 || recs[0].Value.(event).User != "kept" {
		t.Errorf("read %+v, want only the committed record", recs)
	}
}

type userID string

type keyed struct {
	ID     userID  `json:"id"`
	Ref    *string `json:"ref"`
	secret string
	Plain  string `json:"-"`
}

// A key is the same bytes whatever the Go type that holds it, unexported
// and json:"-" fields are not keys, and no broker at a sink's address fails
// at open.
func TestSinkKeys(t *testing.T) {
	addr := cluster(t, 1, "k")
	ctx := context.Background()
	ref := "r1"
	for _, c := range []struct {
		key  string
		want string
	}{{"id", "u1"}, {"ref", "r1"}} {
		s, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: "out", URI: uri(t, "kafka://"+addr+"/k?key="+c.key), Type: reflect.TypeFor[keyed]()})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Write(ctx, []any{keyed{ID: "u1", Ref: &ref, secret: "s"}, keyed{ID: "u2"}}); err != nil {
			t.Fatal(err)
		}
		s.Commit(ctx)
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("k"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	var keys []string
	deadline := time.Now().Add(time.Minute)
	for len(keys) < 4 {
		if time.Now().After(deadline) {
			t.Fatalf("a minute of polling got keys %q", keys)
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if r.Key == nil {
				keys = append(keys, "<nil>")
			} else {
				keys = append(keys, string(r.Key))
			}
		})
	}
	if got := fmt.Sprint(keys); got != "[u1 u2 r1 <nil>]" {
		t.Errorf("keys %s, want [u1 u2 r1 <nil>]", got)
	}
	for _, bad := range []string{"secret", "Plain"} {
		if _, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: "out", URI: uri(t, "kafka://"+addr+"/k?key="+bad), Type: reflect.TypeFor[keyed]()}); !errors.Is(err, kafka.ErrBadURI) {
			t.Errorf("key=%s: got %v, want ErrBadURI", bad, err)
		}
	}
}
