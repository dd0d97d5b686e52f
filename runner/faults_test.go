package runner_test

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/hdfs/hdfstest"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

// TestFaults damages a stream job's checkpoints, state and surroundings in
// the ways of testdata/faults, resumes it, and checks the one property
// recovery must keep: the output is exact, or the run fails with one line
// naming the damage and writes nothing. It never ends well with wrong
// output.
//
// The job sums the values of each key per 100ms event-time window
// (windowSumPipeline) from an in-memory stream into a sink. Record i has
// key k<i%20>, event time 4i ms and value i+1, so the truth is a plain loop
// over the records sent.
//
// Commands:
//
//	job [source=mem|kafka] sink=folder|mem|kafka [checkpoints=hdfs]
//	                          a new job: source (an in-memory stream, or a
//	                          topic of one partition on an in-process Kafka),
//	                          sink (kafka: exactly-once, with source=kafka),
//	                          state and checkpoint directories (checkpoints
//	                          on an in-process HDFS, whose calls time out
//	                          after a second)
//	round N [fail-commit] [outage=D]
//	                          sends N records, runs the job until they are read
//	                          and stops it (a final checkpoint, committed by the
//	                          sinks; with fail-commit the sinks fail to commit it;
//	                          with outage, once they are read the Kafka broker
//	                          drops every request for D, while checkpoints are
//	                          taken every 200ms, before the stop; only the
//	                          broker's warnings are printed)
//	damage KIND [chk=ID]      damages the newest checkpoint (or chk-ID):
//	                          meta-truncate, meta-delete, folder-delete,
//	                          state-flip, state-truncate; or the job's
//	                          surroundings: ledger-delete, ledger-flip,
//	                          ledger-uncommitted (a crash after the sinks
//	                          committed the newest checkpoint, before the
//	                          ledger recorded it), state-dir-delete (a resume
//	                          on another machine), state-disk-full (the state
//	                          directory on a 1 MiB disk: the file is skipped
//	                          where a tmpfs cannot be mounted), state-disk-freed,
//	                          topic-recreate (the source topic deleted and made
//	                          again, with the records sent so far sent again),
//	                          namenode-silent (the HDFS of the checkpoints
//	                          accepts connections and answers nothing)
//	save / restore            copies the checkpoint directory aside, and back
//	hold / release            another process holds the job's directories
//	resume                    ends the input and runs the job to its end
//
// round and resume print "ok", or "error: " and the error's one line (the
// job's directory shown as $DIR) and whether the failed run published
// anything; resume then prints the output against the truth: "exact" or
// what is missing and duplicated. Warnings the run logged are printed
// too.
func TestFaults(t *testing.T) {
	datadriven.Walk(t, "testdata/faults", func(t *testing.T, path string) {
		var j *faultJob
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "job" && j == nil {
				d.Fatalf(t, "%s before job", d.Cmd)
			}
			switch d.Cmd {
			case "job":
				var sink string
				d.ScanArgs(t, "sink", &sink)
				source := "mem"
				if d.HasArg("source") {
					d.ScanArgs(t, "source", &source)
				}
				j = newFaultJob(t, source, sink)
				if d.HasArg("checkpoints") {
					var where string
					d.ScanArgs(t, "checkpoints", &where)
					if where != "hdfs" {
						d.Fatalf(t, "checkpoints=%s: want hdfs", where)
					}
					j.checkpointsOnHDFS(t)
				}
				t.Cleanup(j.release)
				return ""
			case "round":
				n, err := strconv.Atoi(d.CmdArgs[0].Key)
				if err != nil {
					d.Fatalf(t, "round N: %v", err)
				}
				var outage time.Duration
				if d.HasArg("outage") {
					var v string
					d.ScanArgs(t, "outage", &v)
					if outage, err = time.ParseDuration(v); err != nil {
						d.Fatalf(t, "outage=%s: %v", v, err)
					}
				}
				return j.round(t, n, d.HasArg("fail-commit"), outage)
			case "damage":
				chk := "newest"
				if d.HasArg("chk") {
					var id int
					d.ScanArgs(t, "chk", &id)
					chk = fmt.Sprintf("chk-%012d", id)
				}
				return j.damage(t, d.CmdArgs[0].Key, chk)
			case "save":
				j.copyDir(t, j.ckpt, j.ckpt+".saved")
				return ""
			case "restore":
				j.copyDir(t, j.ckpt+".saved", j.ckpt)
				return ""
			case "hold":
				j.hold(t)
				return ""
			case "release":
				j.release()
				return ""
			case "resume":
				return j.resume(t)
			}
			d.Fatalf(t, "unknown command %s", d.Cmd)
			return ""
		})
	})
}

// failing:// wraps a file:// sink (failing:///path/), or a mem:// one
// (failing://name), whose CommitCheckpoint fails while
// failCommits is set: a crash after a checkpoint completed and before its
// output was published.
var failCommits atomic.Bool

type failingConn struct{}

func init() { connector.Register("failing", failingConn{}) }

func (failingConn) OpenSource(context.Context, connector.SourceSpec) (connector.Source, error) {
	return nil, connector.ErrUnsupported
}

func (failingConn) OpenSink(ctx context.Context, spec connector.SinkSpec) (connector.Sink, error) {
	u := *spec.URI
	u.Scheme = "file"
	if u.Host != "" {
		u.Scheme = "mem"
	}
	spec.URI = &u
	s, err := connector.OpenSink(ctx, spec)
	if err != nil {
		return nil, err
	}
	return failingSink{s.(connector.PublishedSink)}, nil
}

type failingSink struct{ connector.PublishedSink }

func (s failingSink) CommitCheckpoint(ctx context.Context, id int64) error {
	if failCommits.Load() {
		return fmt.Errorf("the sink failed to commit checkpoint %d", id)
	}
	return s.PublishedSink.CommitCheckpoint(ctx, id)
}

// faultJob is one job of a test file and the world it runs in.
type faultJob struct {
	dir, state, ckpt, out string
	name                  string // of the source stream and the mem collector
	in                    string // the source's URI
	src                   *memory.Stream
	hdfs                  *hdfstest.Server // of the checkpoints, with checkpoints=hdfs
	kafka                 *kgo.Client      // the source topic's producer, with source=kafka
	brokers               []string
	cluster               *kfake.Cluster
	interval              time.Duration // between checkpoints; 0: an hour
	ended                 bool          // the input was ended (resume)
	read                  atomic.Int64
	col                   *memory.Collector
	sent                  int
	held                  func() // releases the directories another run holds; nil when none
}

func newFaultJob(t *testing.T, source, sink string) *faultJob {
	dir := t.TempDir()
	j := &faultJob{dir: dir, state: filepath.Join(dir, "disk", "state"), ckpt: filepath.Join(dir, "ckpt"),
		name: fmt.Sprintf("faults-%d", names.Add(1))}
	switch source {
	case "mem":
		j.src = memory.NewStream(j.name)
		j.in = "mem://" + j.name
	case "kafka":
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		j.brokers, j.cluster = c.ListenAddrs(), c
		if j.kafka, err = kgo.NewClient(kgo.SeedBrokers(j.brokers...), kgo.DefaultProduceTopic("in")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(j.kafka.Close)
		j.in = "kafka://" + strings.Join(c.ListenAddrs(), ",") + "/in"
	default:
		t.Fatalf("source=%s: want mem or kafka", source)
	}
	switch sink {
	case "mem":
		j.out = "failing://" + j.name
		j.col = memory.NewCollector(j.name)
	case "folder":
		j.out = (&url.URL{Scheme: "failing", Path: filepath.ToSlash(filepath.Join(dir, "out")) + "/", RawQuery: "format=jsonl"}).String()
	case "kafka":
		if j.kafka == nil {
			t.Fatal("sink=kafka needs source=kafka")
		}
		j.out = "kafka://" + strings.Join(j.brokers, ",") + "/out?delivery=exactly-once&txn-id=" + j.name
	default:
		t.Fatalf("sink=%s: want folder, mem or kafka", sink)
	}
	return j
}

// checkpointsOnHDFS moves the job's checkpoints to an in-process HDFS.
func (j *faultJob) checkpointsOnHDFS(t *testing.T) {
	t.Setenv("WEIR_HDFS_TIMEOUT", "1s") // read when a namenode is first used: this one is new
	srv, err := hdfstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	j.hdfs, j.ckpt = srv, srv.URI()+"ckpt"
}

// run runs the job until stop is closed (nil: until its input ends), and
// returns its error and the warnings it logged.
func (j *faultJob) run(stop chan struct{}) (error, []string) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	in := j.in
	if j.ended && j.kafka != nil {
		in += "?until=latest"
	}
	_, err := runner.Run(context.Background(), j.pipeline(), runner.Options{Mode: runner.Stream, Progress: -1, Logger: log,
		StateDir: j.state, CheckpointDir: j.ckpt, CheckpointInterval: cmp.Or(j.interval, time.Hour), Stop: stop,
		Bindings: map[string]string{"in": in, "out": j.out}})
	mu.Lock()
	defer mu.Unlock()
	var warns []string
	sc := bufio.NewScanner(&logs)
	for sc.Scan() {
		if _, msg, ok := strings.Cut(sc.Text(), " msg="); ok {
			if q, err := strconv.QuotedPrefix(msg); err == nil {
				msg, _ = strconv.Unquote(q)
			} else {
				msg, _, _ = strings.Cut(msg, " ")
			}
			warns = append(warns, msg)
		}
	}
	return err, warns
}

// pipeline is windowSumPipeline, counting the records it reads.
func (j *faultJob) pipeline() *sdk.Pipeline {
	p := sdk.NewPipeline()
	read := sdk.Map(sdk.Read[ev](p, "in", sdk.EventTime(at)), func(e ev) ev { j.read.Add(1); return e })
	in := sdk.WindowInto(read, windowing.Fixed(100*time.Millisecond))
	kvs := sdk.Map(in, func(e ev) sdk.KV[string, int64] { return sdk.KV[string, int64]{Key: e.Key, Value: e.V} })
	sdk.Write(sdk.ParDo(sdk.Sum(kvs), windowSumFn{}), "out")
	return p
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (w lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

func (j *faultJob) send(t *testing.T, n int) {
	for range n {
		j.sendRecord(t, j.sent)
		j.sent++
	}
}

func (j *faultJob) sendRecord(t *testing.T, i int) {
	e := ev{Key: fmt.Sprintf("k%d", i%20), At: int64(4 * i), V: int64(i + 1)}
	if j.src != nil {
		j.src.Send(e)
		return
	}
	b, _ := json.Marshal(e)
	if err := j.kafka.ProduceSync(context.Background(), &kgo.Record{Value: b}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func (j *faultJob) round(t *testing.T, n int, failCommit bool, outage time.Duration) string {
	j.send(t, n)
	failCommits.Store(failCommit)
	defer failCommits.Store(false)
	if outage > 0 {
		if j.cluster == nil {
			t.Fatal("outage: the job's source is not a topic")
		}
		j.interval = 200 * time.Millisecond
		defer func() { j.interval = 0 }()
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	var (
		err   error
		warns []string
	)
	before := j.read.Load()
	go func() {
		defer close(done)
		err, warns = j.run(stop)
	}()
	for deadline := time.Now().Add(time.Minute); j.read.Load()-before < int64(n); time.Sleep(time.Millisecond) {
		select {
		case <-done:
		default:
			if time.Now().Before(deadline) {
				continue
			}
			t.Fatalf("waited a minute for the job to read %d records", n)
		}
		break
	}
	if outage > 0 {
		var over atomic.Bool
		j.cluster.ControlKey(-1, func(kmsg.Request) (kmsg.Response, error, bool) {
			if over.Load() {
				j.cluster.DropControl()
				return nil, nil, false
			}
			j.cluster.KeepControl()
			return nil, errors.New("the broker is down"), true // closes the connection
		})
		time.Sleep(outage)
		over.Store(true)
	}
	close(stop)
	<-done
	if outage > 0 {
		warns = slices.DeleteFunc(warns, func(w string) bool { return !strings.HasPrefix(w, "kafka: broker") })
		for i := range warns {
			warns[i] = unreachable.ReplaceAllString(strings.ReplaceAll(warns[i], strings.Join(j.brokers, ","), "$BROKER"), "unreachable for $$Ns: $$ERR")
		}
		warns = slices.Compact(warns)
	}
	return j.report(err, warns)
}

// report prints a run's end: its warnings, and ok or its error in one
// line.
func (j *faultJob) report(err error, warns []string) string {
	var b strings.Builder
	for _, w := range warns {
		fmt.Fprintf(&b, "warning: %s\n", j.show(w))
	}
	if err == nil {
		b.WriteString("ok\n")
		return b.String()
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") {
		fmt.Fprintf(&b, "error of more than one line:\n%s\n", msg)
		return b.String()
	}
	fmt.Fprintf(&b, "error: %s\n", j.show(msg))
	return b.String()
}

// show replaces the job's directory in s with $DIR, and the holder of a
// lock with $PID and $HOST.
func (j *faultJob) show(s string) string {
	s = strings.ReplaceAll(s, filepath.ToSlash(j.dir), "$DIR")
	s = strings.ReplaceAll(s, j.dir, "$DIR")
	s = holder.ReplaceAllString(s, "pid $$PID on host $$HOST")
	// What a state file holds depends on when the job's goroutines ran.
	s = stateFile.ReplaceAllString(s, "state/$$FILE")
	s = sum.ReplaceAllString(s, "crc32c $$SUM, $$WRITTEN was written")
	s = topicID.ReplaceAllString(s, "topic id $$THEN then, $$NOW now")
	if j.hdfs != nil {
		s = strings.ReplaceAll(s, j.hdfs.Addr(), "$NAMENODE")
	}
	return size.ReplaceAllString(s, "has $$SIZE bytes, $$WRITTEN were written")
}

var (
	holder    = regexp.MustCompile(`pid [0-9]+ on host [^ :;,]+`)
	stateFile = regexp.MustCompile(`state/[0-9]+\.(log|sst)`)
	sum       = regexp.MustCompile(`crc32c [0-9a-f]{8}, [0-9a-f]{8} was written`)
	size      = regexp.MustCompile(`has [0-9]+ bytes, [0-9]+ were written`)
	topicID   = regexp.MustCompile(`topic id [^ ]+ then, [^ ]+ now`)
	// How long, and the error, depend on when the reader noticed.
	unreachable = regexp.MustCompile(`unreachable for [0-9]+s: .*`)
)

func (j *faultJob) resume(t *testing.T) string {
	if j.src != nil {
		j.src.Close()
	}
	j.ended = true
	published := j.output(t)
	err, warns := j.run(nil)
	s := j.report(err, warns)
	got := j.output(t)
	if err != nil {
		if len(got) != len(published) {
			return s + fmt.Sprintf("the failed run published %d rows\n", len(got)-len(published))
		}
		return s + "the failed run published nothing\n"
	}
	return s + j.verdict(got)
}

// verdict compares the output with the truth.
func (j *faultJob) verdict(got []string) string {
	want := map[string]int64{}
	for i := range j.sent {
		want[fmt.Sprintf("k%d@%d", i%20, 4*i/100*100)] += int64(i + 1)
	}
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	var missing, duplicated, wrong int
	for k, v := range want {
		switch n := count[fmt.Sprintf("%s %d", k, v)]; {
		case n == 0:
			missing++
		case n > 1:
			duplicated += n - 1
		}
	}
	for row := range count {
		k, _, _ := strings.Cut(row, " ")
		if _, ok := want[k]; !ok || row != fmt.Sprintf("%s %d", k, want[k]) {
			wrong += count[row]
		}
	}
	if missing+duplicated+wrong == 0 {
		return fmt.Sprintf("exact: %d rows\n", len(got))
	}
	return fmt.Sprintf("WRONG: %d rows, %d of %d missing, %d duplicated, %d wrong\n", len(got), missing, len(want), duplicated, wrong)
}

// output returns the rows the sink published.
func (j *faultJob) output(t *testing.T) []string {
	if j.col != nil {
		var rows []string
		for _, v := range j.col.Values() {
			rows = append(rows, v.(string))
		}
		return rows
	}
	if strings.HasPrefix(j.out, "kafka:") {
		return j.topicOutput(t)
	}
	files, err := filepath.Glob(filepath.Join(j.dir, "out", "part-*"))
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line == "" {
				continue
			}
			var s string
			if err := json.Unmarshal([]byte(line), &s); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			rows = append(rows, s)
		}
	}
	return rows
}

// topicOutput reads the sink's topic as a read_committed consumer sees it.
func (j *faultJob) topicOutput(t *testing.T) []string {
	ctx := context.Background()
	ends, err := kadm.NewClient(j.kafka).ListEndOffsets(ctx, "out")
	if err != nil {
		t.Fatal(err)
	}
	end := ends["out"][0].Offset
	cl, err := kgo.NewClient(kgo.SeedBrokers(j.brokers...), kgo.ConsumeTopics("out"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rows []string
	// Transactions' markers take offsets too: read until the end, or
	// until a poll finds nothing more (the end is an aborted or open
	// transaction's).
	for at := int64(0); at < end-1; {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if fs.NumRecords() == 0 {
			break
		}
		fs.EachRecord(func(r *kgo.Record) {
			var s string
			if err := json.Unmarshal(r.Value, &s); err != nil {
				t.Fatalf("out@%d: %v", r.Offset, err)
			}
			rows = append(rows, s)
			at = r.Offset
		})
	}
	return rows
}

func (j *faultJob) damage(t *testing.T, kind, chk string) string {
	if kind == "namenode-silent" {
		if j.hdfs == nil {
			t.Fatal("namenode-silent: the job's checkpoints are not on HDFS")
		}
		j.hdfs.Pause()
		return "the namenode of the checkpoints answers nothing"
	}
	if chk == "newest" {
		chks, _ := filepath.Glob(filepath.Join(j.ckpt, "chk-*"))
		if len(chks) == 0 {
			t.Fatal("no checkpoint to damage")
		}
		chk = filepath.Base(chks[len(chks)-1])
	}
	p := filepath.Join(j.ckpt, chk)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	switch kind {
	case "meta-truncate":
		b, err := os.ReadFile(filepath.Join(p, "meta.json"))
		must(err)
		must(os.WriteFile(filepath.Join(p, "meta.json"), b[:len(b)/2], 0o644))
		return chk + "/meta.json cut in half"
	case "meta-delete":
		must(os.Remove(filepath.Join(p, "meta.json")))
		return chk + "/meta.json deleted"
	case "folder-delete":
		must(os.RemoveAll(p))
		return chk + " deleted"
	case "state-flip", "state-truncate":
		victim := largestFile(t, filepath.Join(p, "state"))
		b, err := os.ReadFile(victim)
		must(err)
		if kind == "state-flip" {
			b[len(b)/2] ^= 1
		} else {
			b = b[:len(b)/2]
		}
		must(os.WriteFile(victim, b, 0o644))
		return fmt.Sprintf("%s/state: the largest file %s", chk, map[string]string{"state-flip": "has a byte flipped", "state-truncate": "cut in half"}[kind])
	case "ledger-delete":
		must(os.Remove(filepath.Join(j.ckpt, "LEDGER")))
		return "LEDGER deleted"
	case "ledger-flip":
		b, err := os.ReadFile(filepath.Join(j.ckpt, "LEDGER"))
		must(err)
		b[bytes.IndexByte(b, ':')+1] ^= 1
		must(os.WriteFile(filepath.Join(j.ckpt, "LEDGER"), b, 0o644))
		return "LEDGER has a byte flipped"
	case "ledger-uncommitted":
		// What a crash after the sinks committed the newest checkpoint
		// and before the ledger recorded it leaves.
		b, err := os.ReadFile(filepath.Join(j.ckpt, "LEDGER"))
		must(err)
		var l struct{ Completed, Committed int64 }
		must(json.Unmarshal(b, &l))
		l.Committed = l.Completed - 1
		body := fmt.Sprintf(`{"completed":%d,"committed":%d,"checksum":""}`, l.Completed, l.Committed)
		sum := crc32.Checksum([]byte(body), crc32.MakeTable(crc32.Castagnoli))
		must(os.WriteFile(filepath.Join(j.ckpt, "LEDGER"), []byte(strings.Replace(body, `"checksum":""`, fmt.Sprintf(`"checksum":"crc32c:%08x"`, sum), 1)), 0o644))
		return fmt.Sprintf("LEDGER says the sinks committed checkpoint %d, not %d", l.Committed, l.Completed)
	case "topic-recreate":
		if j.kafka == nil {
			t.Fatal("topic-recreate: the job's source is not a topic")
		}
		ctx := context.Background()
		adm := kadm.NewClient(j.kafka)
		if _, err := adm.DeleteTopic(ctx, "in"); err != nil {
			t.Fatal(err)
		}
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, "in"); err != nil {
			t.Fatal(err)
		}
		// A new producer: the old one knows the old topic's id.
		cl, err := kgo.NewClient(kgo.SeedBrokers(j.brokers...), kgo.DefaultProduceTopic("in"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		j.kafka = cl
		for i := range j.sent {
			j.sendRecord(t, i)
		}
		return fmt.Sprintf("topic in deleted and created again, with the %d records sent again", j.sent)
	case "state-dir-delete":
		must(os.RemoveAll(j.state))
		return "state directory deleted"
	case "state-disk-full":
		// A new machine whose disk for the state is all but full: a
		// 1 MiB tmpfs, which takes root to mount.
		disk := filepath.Dir(j.state)
		must(os.RemoveAll(disk))
		must(os.MkdirAll(disk, 0o755))
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk).CombinedOutput(); err != nil {
			t.Skipf("mounting a tmpfs for a full disk: %v: %s", err, bytes.TrimSpace(out))
		}
		t.Cleanup(func() { exec.Command("umount", disk).Run() })
		return "state directory on a disk with 1 MiB"
	case "state-disk-freed":
		if out, err := exec.Command("umount", filepath.Dir(j.state)).CombinedOutput(); err != nil {
			t.Fatalf("umount: %v: %s", err, out)
		}
		return "state directory on a disk with room"
	}
	t.Fatalf("unknown damage %s", kind)
	return ""
}

// largestFile returns the largest file in dir: the one a byte flip is
// least likely to miss.
func largestFile(t *testing.T, dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var victim string
	var size int64 = -1
	for _, e := range entries {
		if info, err := e.Info(); err == nil && info.Mode().IsRegular() && info.Size() > size {
			victim, size = filepath.Join(dir, e.Name()), info.Size()
		}
	}
	return victim
}

func (j *faultJob) copyDir(t *testing.T, from, to string) {
	if err := os.RemoveAll(to); err != nil {
		t.Fatal(err)
	}
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		if d.Name() == "LOCK" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// hold takes the job's directories as another process running it would.
func (j *faultJob) hold(t *testing.T) {
	if err := os.MkdirAll(j.ckpt, 0o755); err != nil {
		t.Fatal(err)
	}
	release, err := runner.HoldDirs(j.state, j.ckpt)
	if err != nil {
		t.Fatal(err)
	}
	j.held = release
}

func (j *faultJob) release() {
	if j.held != nil {
		j.held()
		j.held = nil
	}
}
