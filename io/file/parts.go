package file

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/fsys"
)

// partsSink writes a directory (a URI ending in '/'). Without checkpoints it
// writes one file, part-00000.<ext>, committed at the end of the run. With
// checkpoints it is a connector.CheckpointSink, as Flink's FileSink: the
// output of checkpoint N is closed into a hidden .pending-cN file when N's
// barrier arrives, renamed to part-cN.<ext> when N completes, and settled by
// Recover after a restart (pending files up to the checkpoint resumed from
// are committed, later ones deleted). Readers of the directory skip hidden
// files, so nothing uncommitted is ever read.
//
// A sink of one of several tasks (SinkSpec.Task) puts the task in every
// name it writes (part-<task>-00000, .pending-<task>-cN, part-<task>-cN,
// and their temporary files) and only ever looks at, commits or deletes
// its own: the tasks' checkpoint ids are independent counters.
type partsSink struct {
	fs       fsys.FS
	dir, ext string
	task     string // SinkSpec.Task; "" for a job that is one task
	open     func() (*sink, error)

	mu struct {
		sync.Mutex
		cur   *sink // the part being written; nil until the first write
		ckpts bool  // a checkpoint has happened
	}
}

var _ connector.PublishedSink = (*partsSink)(nil)

// pendingPrefix starts the names of the task's pending files:
// ".pending-c", or ".pending-<task>-c".
func (ps *partsSink) pendingPrefix() string {
	if ps.task == "" {
		return ".pending-c"
	}
	return ".pending-" + ps.task + "-c"
}

func (ps *partsSink) pendingPath(id int64) string {
	return path.Join(ps.dir, fmt.Sprintf("%s%012d%s", ps.pendingPrefix(), id, ps.ext))
}

// isTemp says whether name is a temporary file of the task's parts,
// ".part[-<task>]-00000.<ext>.tmp-<digits>" (of any extension), and not
// another task's.
func (ps *partsSink) isTemp(name string) bool {
	rest, ok := strings.CutPrefix(name, "."+partStem(ps.task)+"00000.")
	if !ok {
		return false
	}
	ext, n, ok := strings.Cut(rest, ".tmp-")
	return ok && ext != "" && !strings.ContainsAny(ext, ".-") && digits(n)
}

// digits says whether s is a non-empty string of decimal digits.
func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func (ps *partsSink) Write(ctx context.Context, values []any) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.mu.cur == nil {
		cur, err := ps.open()
		if err != nil {
			return err
		}
		ps.mu.cur = cur
	}
	return ps.mu.cur.Write(ctx, values)
}

// PreCommit closes the part being written as checkpoint id's pending file.
// Its name is its handle: it returns none.
func (ps *partsSink) PreCommit(_ context.Context, id int64) ([]byte, error) {
	return nil, ps.preCommit(id)
}

func (ps *partsSink) preCommit(id int64) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.mu.ckpts = true
	cur := ps.mu.cur
	if cur == nil {
		return nil
	}
	ps.mu.cur = nil
	cur.mu.Lock()
	defer cur.mu.Unlock()
	if err := cur.mu.err; err != nil {
		cur.abortLocked()
		return err
	}
	if err := cur.finishLocked(); err != nil {
		cur.abortLocked()
		return err
	}
	cur.mu.done = true
	if err := ps.fs.Rename(cur.tmp, ps.pendingPath(id)); err != nil {
		return fmt.Errorf("%s: pre-committing checkpoint %d in %s: %w", prefix, id, where(ps.fs, ps.dir), err)
	}
	return ps.fs.SyncDir(ps.dir)
}

// pending returns the ids of the task's pending files, sorted.
func (ps *partsSink) pending() ([]int64, error) {
	entries, err := ps.fs.ReadDir(ps.dir)
	if err != nil {
		return nil, fmt.Errorf("%s: listing %s: %w", prefix, where(ps.fs, ps.dir), err)
	}
	var ids []int64
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), ps.pendingPrefix())
		if !ok || !strings.HasSuffix(name, ps.ext) {
			continue
		}
		// Another task's ".pending-<task>-c..." leaves a name that does
		// not parse.
		if id, err := strconv.ParseInt(strings.TrimSuffix(name, ps.ext), 10, 64); err == nil {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// CommitCheckpoint publishes the pending files of id and earlier.
func (ps *partsSink) CommitCheckpoint(_ context.Context, id int64) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.commitUpToLocked(id)
}

func (ps *partsSink) commitUpToLocked(id int64) error {
	ids, err := ps.pending()
	if err != nil {
		return err
	}
	for _, k := range ids {
		if k > id {
			break
		}
		final := path.Join(ps.dir, fmt.Sprintf("%sc%012d%s", partStem(ps.task), k, ps.ext))
		if err := ps.fs.Rename(ps.pendingPath(k), final); err != nil {
			return fmt.Errorf("%s: committing checkpoint %d in %s: %w", prefix, k, where(ps.fs, ps.dir), err)
		}
	}
	return ps.fs.SyncDir(ps.dir)
}

// Published returns the newest checkpoint of which the task's directory
// has a committed part (0: none).
func (ps *partsSink) Published(context.Context) (int64, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return ps.published()
}

func (ps *partsSink) published() (int64, error) {
	entries, err := ps.fs.ReadDir(ps.dir)
	if err != nil {
		return 0, fmt.Errorf("%s: listing %s: %w", prefix, where(ps.fs, ps.dir), err)
	}
	var newest int64
	for _, e := range entries {
		name, ok := strings.CutPrefix(e.Name(), partStem(ps.task)+"c")
		if !ok || !strings.HasSuffix(name, ps.ext) {
			continue
		}
		// Another task's "part-<task>-c..." does not parse.
		if id, err := strconv.ParseInt(strings.TrimSuffix(name, ps.ext), 10, 64); err == nil && digits(strings.TrimSuffix(name, ps.ext)) {
			newest = max(newest, id)
		}
	}
	return newest, nil
}

// Recover commits what the task pre-committed up to id and deletes what it
// pre-committed after it, and any part of the task a crashed run left half
// written; other tasks' files are left alone. A part of a checkpoint after
// id that is committed already (its checkpoint was lost after its output
// was published) is refused with connector.ErrPublishedAhead.
func (ps *partsSink) Recover(_ context.Context, id int64, _ []byte) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	newest, err := ps.published()
	if err != nil {
		return err
	}
	if newest > id {
		return fmt.Errorf("%s: recovering %s at checkpoint %d: %w: %sc%012d%s", prefix, where(ps.fs, ps.dir), id, connector.ErrPublishedAhead, partStem(ps.task), newest, ps.ext)
	}
	if err := ps.commitUpToLocked(id); err != nil {
		return err
	}
	ids, err := ps.pending()
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range ids {
		if k > id {
			errs = append(errs, ps.fs.Remove(ps.pendingPath(k)))
		}
	}
	entries, _ := ps.fs.ReadDir(ps.dir)
	for _, e := range entries {
		if ps.isTemp(e.Name()) {
			errs = append(errs, ps.fs.Remove(path.Join(ps.dir, e.Name())))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: recovering %s at checkpoint %d: %w", prefix, where(ps.fs, ps.dir), id, err)
	}
	return ps.fs.SyncDir(ps.dir)
}

// Commit ends the run: the part being written is published (as
// part[-<task>]-00000 when the run took no checkpoint), and so is anything
// the task still has pending.
func (ps *partsSink) Commit(ctx context.Context) error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.mu.cur == nil && !ps.mu.ckpts {
		// A run with no output still leaves its (empty) part, so that a
		// finished run can be told from one that never ran.
		cur, err := ps.open()
		if err != nil {
			return err
		}
		ps.mu.cur = cur
	}
	if cur := ps.mu.cur; cur != nil {
		ps.mu.cur = nil
		if ps.mu.ckpts {
			cur.path = path.Join(ps.dir, fmt.Sprintf("%send-%d%s", partStem(ps.task), time.Now().UnixNano(), ps.ext))
		}
		if err := cur.Commit(ctx); err != nil {
			return err
		}
	}
	return ps.commitUpToLocked(1<<63 - 1)
}

// Abort discards the part being written; pending files wait for Recover.
func (ps *partsSink) Abort() error {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if cur := ps.mu.cur; cur != nil {
		ps.mu.cur = nil
		return cur.Abort()
	}
	return nil
}
