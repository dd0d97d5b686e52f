package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/fsys"
	"github.com/weir-dev/weir/runner/internal/engine"
	"github.com/weir-dev/weir/state"
)

// Checkpoints: a run's checkpoints are written by the engine's coordinator
// calling back here (checkpointing), into a checkpoint store.
//
// Checkpoint storage. A checkpoint directory (local, or on HDFS) holds one directory per
// checkpoint, chk-<id>: the state backend's own checkpoint (state/; not with
// a changelog, which holds the state instead) and
// meta.json (the id, when, every split's position and watermark, and the
// pre-commit handles of two-phase sinks). A
// checkpoint is written under chk-<id>.tmp and renamed when complete, so a
// crash while writing leaves nothing that looks complete. The newest
// keepCheckpoints are kept.
//
// A state directory that a run left exactly at a checkpoint (a stop takes a
// final checkpoint and writes nothing after it) carries a marker file with
// that id; a restart from the same checkpoint reuses the directory as it is
// (Samza's host affinity) instead of restoring it.

const (
	keepCheckpoints = 3
	checkpointMeta  = "meta.json"
	stateMarker     = "WEIR_CHECKPOINT"
	// finishedMarker in a checkpoint directory says its job ran to its end.
	finishedMarker = "FINISHED"
	// sinksCommitted and changelogCommitted in chk-<id> say that the
	// sinks, or the changelog, committed what checkpoint id pre-committed:
	// a restart from it need not (and after a long outage could not tell
	// whether to) commit it again.
	sinksCommitted     = "SINKS_COMMITTED"
	changelogCommitted = "CHANGELOG_COMMITTED"
)

type checkpointMetaFile struct {
	ID      int64              `json:"id"`
	Written time.Time          `json:"written"`
	Splits  engine.SplitStates `json:"splits"`
	// Sinks has the pre-commit handles of two-phase sinks, by binding.
	Sinks map[string][]byte `json:"sinks,omitempty"`
	// Changelog is set when the state is in a changelog: the checkpoint
	// then has no state/ copy.
	Changelog *changelogMeta `json:"changelog,omitempty"`
	// States has the schema version of every state cell, by transform and
	// cell, so that a job resumed with older code fails at launch.
	States stateVersions `json:"states,omitempty"`
	// Phase is "history" or "live" in backfill-then-stream mode.
	Phase string `json:"phase,omitempty"`
	// StateFormat is the version of the engine's own layout of the state
	// (see stateFormat); 0 before there was one.
	StateFormat int `json:"stateFormat,omitempty"`
	// Files lists the state copy's files, with sizes and checksums
	// (checksum.go); Checksum is meta.json's own. Both are empty in a
	// checkpoint written before them.
	Files    []stateFile `json:"files,omitempty"`
	Checksum string      `json:"checksum,omitempty"`
}

// stateFormat is the version of the engine's own state layout that this
// Weir writes and reads. 1: windows kept in memory are copied beside the
// keyed state at each checkpoint (runner/internal/engine/windowsnap.go),
// where a Weir without it would not look. A checkpoint of a newer format
// fails at launch, as a newer state schema does.
const stateFormat = 1

// stateVersions are schema versions by transform and state cell.
type stateVersions map[string]map[string]uint64

// declaredStates returns the schema versions g's state cells declare.
func declaredStates(g *graph.Graph) stateVersions {
	out := stateVersions{}
	for _, n := range g.Nodes {
		if n.DoFn == nil {
			continue
		}
		for _, st := range n.DoFn.States {
			if out[n.Name] == nil {
				out[n.Name] = map[string]uint64{}
			}
			out[n.Name][st.Name] = st.Version
		}
	}
	return out
}

// checkStateVersions fails if checkpoint m holds a state cell at a schema
// version newer than g declares, or the engine's state in a newer format:
// the job's earlier code, or an earlier Weir, would misread it.
func checkStateVersions(m *checkpointMetaFile, g *graph.Graph) error {
	if m.StateFormat > stateFormat {
		return fmt.Errorf("%w: checkpoint %d was written by a newer Weir (state format %d; this one reads up to %d), which keeps state where this one would not look: resume with that version, or start over with a new --checkpoint-dir",
			ErrOptions, m.ID, m.StateFormat, stateFormat)
	}
	declared := declaredStates(g)
	var errs []error
	for tr, cells := range m.States {
		for cell, stored := range cells {
			if d, ok := declared[tr][cell]; ok && d < stored {
				errs = append(errs, fmt.Errorf("%w: checkpoint %d: ParDo %q state %q was written with schema version %d, this job declares %d: an older version of the job would misread it (resume with the newer job, or start over with a new --checkpoint-dir)",
					ErrOptions, m.ID, tr, cell, stored, d))
			}
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
	return errors.Join(errs...)
}

// checkpointStore is the directory checkpoints go to, on the local disk or
// on HDFS (io/fsys). Locally, the backend's checkpoint is written in place
// (Pebble hard-links its tables); elsewhere it is written to a local
// temporary directory and copied up, and a restore copies it down.
type checkpointStore struct {
	fs   fsys.FS
	dir  string
	sums fileSums // of the sstables this run's checkpoints hold

	// fellBack, set by latest, says why it returned a checkpoint older
	// than the ledger's newest (checkLedger).
	fellBack string

	ledger struct {
		sync.Mutex
		l ledger // as written to LEDGER
	}
}

// openCheckpointStore resolves a --checkpoint-dir value: a path, or a
// file:// or hdfs:// URI.
func openCheckpointStore(s string) (*checkpointStore, error) {
	u, err := connector.ParseURI(s)
	if err != nil {
		return nil, err
	}
	f, p, err := fsys.Resolve(u)
	if err != nil {
		return nil, optErr("checkpoint-dir", " %s: %v", s, err)
	}
	return &checkpointStore{fs: f, dir: strings.TrimSuffix(p, "/"), sums: fileSums{}}, nil
}

func (cs *checkpointStore) path(elems ...string) string {
	return path.Join(append([]string{cs.dir}, elems...)...)
}

func (cs *checkpointStore) String() string { return cs.show(cs.dir) }

// show returns the path p of the store as errors and logs name it.
func (cs *checkpointStore) show(p string) string {
	if cs.fs == fsys.Local {
		return p
	}
	return cs.fs.String() + p
}

// finished reports whether the store's job ran to its end.
func (cs *checkpointStore) finished() bool {
	_, err := cs.fs.Stat(cs.path(finishedMarker))
	return err == nil
}

func (cs *checkpointStore) markFinished() error {
	// A run that ended before its first checkpoint has not made the
	// directory yet.
	if err := cs.fs.MkdirAll(cs.dir); err != nil {
		return err
	}
	return fsys.WriteFile(cs.fs, cs.path(finishedMarker), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"))
}

// latest returns the newest complete checkpoint, if any, and its directory.
func (cs *checkpointStore) latest() (*checkpointMetaFile, string, error) {
	entries, err := cs.fs.ReadDir(cs.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("runner: checkpoints in %s: %w", cs, err)
	}
	var ids []int64
	for _, e := range entries {
		if id, ok := checkpointID(e.Name()); ok && e.IsDir() {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	for _, id := range ids {
		p := cs.path(checkpointName(id))
		b, err := fsys.ReadFile(cs.fs, path.Join(p, checkpointMeta))
		if err != nil {
			continue
		}
		m, _, err := decodeMeta(cs.show(p), id, b)
		if err != nil {
			return nil, "", err
		}
		if cs.fellBack, err = cs.checkLedger(m); err != nil {
			return nil, "", err
		}
		return m, p, nil
	}
	cs.fellBack, err = cs.checkLedger(nil)
	return nil, "", err
}

func checkpointName(id int64) string { return fmt.Sprintf("chk-%012d", id) }

func checkpointID(name string) (int64, bool) {
	s, ok := strings.CutPrefix(name, "chk-")
	if !ok || strings.Contains(s, ".") {
		return 0, false
	}
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil
}

// write stores checkpoint m.ID: the backend's copy (unless m.Changelog is
// set: the changelog holds the state) and meta.json, under chk-<id>.tmp
// renamed when complete; then it prunes old checkpoints. m has everything
// but the time. It returns the checkpoint's size in bytes.
func (cs *checkpointStore) write(b state.Backend, m checkpointMetaFile) (int64, error) {
	id := m.ID
	final := cs.path(checkpointName(id))
	tmp := final + ".tmp"
	if err := cs.fs.RemoveAll(tmp); err != nil {
		return 0, err
	}
	if err := cs.fs.MkdirAll(tmp); err != nil {
		return 0, err
	}
	var size int64
	if m.Changelog == nil {
		n, files, err := cs.writeState(b, path.Join(tmp, "state"))
		if err != nil {
			return 0, err
		}
		size += n
		m.Files = files
	}
	m.Written = time.Now().UTC()
	meta, err := encodeMeta(m)
	if err != nil {
		return 0, err
	}
	if err := fsys.WriteFile(cs.fs, path.Join(tmp, checkpointMeta), meta); err != nil {
		return 0, err
	}
	size += int64(len(meta))
	if err := cs.fs.Rename(tmp, final); err != nil {
		return 0, err
	}
	if err := cs.fs.SyncDir(cs.dir); err != nil {
		return 0, err
	}
	if err := cs.recordCompleted(id); err != nil {
		return 0, err
	}
	entries, _ := cs.fs.ReadDir(cs.dir)
	var ids []int64
	for _, e := range entries {
		if old, ok := checkpointID(e.Name()); ok && old < id {
			ids = append(ids, old)
		} else if strings.HasSuffix(e.Name(), ".tmp") && e.Name() != path.Base(tmp) {
			cs.fs.RemoveAll(cs.path(e.Name()))
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	for i, old := range ids {
		if i >= keepCheckpoints-1 {
			cs.fs.RemoveAll(cs.path(checkpointName(old)))
		}
	}
	return size, nil
}

// markCommitted writes marker in checkpoint id's directory.
func (cs *checkpointStore) markCommitted(id int64, marker string) error {
	return fsys.WriteFile(cs.fs, cs.path(checkpointName(id), marker), nil)
}

// committed reports whether marker is in the checkpoint directory chk.
func (cs *checkpointStore) committed(chk, marker string) bool {
	_, err := cs.fs.Stat(path.Join(chk, marker))
	return err == nil
}

// writeState writes the backend's checkpoint to dir on the store, and
// returns its size and its files with their checksums.
func (cs *checkpointStore) writeState(b state.Backend, dir string) (int64, []stateFile, error) {
	if cs.fs == fsys.Local {
		if err := b.Checkpoint(dir); err != nil {
			return 0, nil, err
		}
		files, err := sumState(dir, cs.sums)
		return dirSize(dir), files, err
	}
	local, release, err := makeTempDir("checkpoint")
	if err != nil {
		return 0, nil, err
	}
	defer release()
	if err := b.Checkpoint(filepath.Join(local, "state")); err != nil {
		return 0, nil, err
	}
	files, err := sumState(filepath.Join(local, "state"), cs.sums)
	if err != nil {
		return 0, nil, err
	}
	n, err := copyUp(filepath.Join(local, "state"), cs.fs, dir)
	return n, files, err
}

// localState returns a local directory holding the state of the checkpoint
// m at chk (a directory of the store), verified against the files m lists,
// and what removes it when it is a copy.
func (cs *checkpointStore) localState(chk string, m *checkpointMetaFile) (string, func(), error) {
	src := path.Join(chk, "state")
	verify := func(dir string) error {
		if m.Checksum == "" {
			return nil // written before checksums
		}
		return verifyState(cs.show(chk), dir, m.Files)
	}
	if cs.fs == fsys.Local {
		if err := verify(src); err != nil {
			return "", nil, err
		}
		return src, func() {}, nil
	}
	local, done, err := makeTempDir("restore")
	if err != nil {
		return "", nil, err
	}
	if err := copyDown(cs.fs, src, filepath.Join(local, "state")); err != nil {
		done()
		return "", nil, fmt.Errorf("runner: copying checkpoint %s down: %w", cs.fs.String()+src, err)
	}
	if err := verify(filepath.Join(local, "state")); err != nil {
		done()
		return "", nil, err
	}
	return filepath.Join(local, "state"), done, nil
}

// copyUp copies the local directory tree src to dst on f.
func copyUp(src string, f fsys.FS, dst string) (int64, error) {
	var n int64
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := path.Join(dst, filepath.ToSlash(rel))
		if d.IsDir() {
			return f.MkdirAll(target)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		w, err := f.Create(target)
		if err != nil {
			return err
		}
		c, err := io.Copy(w, in)
		n += c
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		return err
	})
	return n, err
}

// copyDown copies the directory tree src on f to the local dst.
func copyDown(f fsys.FS, src, dst string) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	infos, err := f.ReadDir(src)
	if err != nil {
		return err
	}
	for _, fi := range infos {
		from, to := path.Join(src, fi.Name()), filepath.Join(dst, fi.Name())
		if fi.IsDir() {
			if err := copyDown(f, from, to); err != nil {
				return err
			}
			continue
		}
		r, err := f.Open(from)
		if err != nil {
			return err
		}
		w, err := os.Create(to)
		if err == nil {
			_, err = io.Copy(w, r)
			if cerr := w.Close(); err == nil {
				err = cerr
			}
		}
		r.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// markerID returns the checkpoint id the state directory was left at.
func markerID(stateDir string) (int64, bool) {
	b, err := os.ReadFile(filepath.Join(stateDir, stateMarker))
	if err != nil {
		return 0, false
	}
	id, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return id, err == nil
}

// checkpointing turns the engine's checkpoints on, into the run's store:
// every completed checkpoint pre-commits the changelog, writes the
// backend's copy (none with a changelog) with the positions and the sinks'
// handles, commits the changelog, and hands the positions to the sources
// that report them. A resumed run continues the ids and the positions of
// the checkpoint it resumed from.
func (r *run) checkpointing(ctx context.Context, cfg *engine.Config) {
	cfg.CheckpointInterval = r.opts.CheckpointInterval
	cfg.OnCommitted = func(id int64) {
		if err := r.ckpts.markCommitted(id, sinksCommitted); err != nil {
			r.log.Warn("marking checkpoint committed", "id", id, "err", err)
		}
		if err := r.ckpts.recordCommitted(id); err != nil {
			r.log.Warn("recording checkpoint committed", "id", id, "err", err)
		}
	}
	cfg.OnCheckpoint = func(id int64, final bool, splits engine.SplitStates, handles map[string][]byte) error {
		return r.checkpoint(ctx, id, final, splits, handles)
	}
	if r.resume != nil {
		cfg.FirstCheckpointID, cfg.Resume = r.resume.ID, r.resume.Splits
		r.log.Info("resuming from checkpoint", "id", r.resume.ID, "written", r.resume.Written)
	}
}

// checkpoint stores checkpoint id, which every participant has reached.
func (r *run) checkpoint(ctx context.Context, id int64, final bool, splits engine.SplitStates, handles map[string][]byte) error {
	begin := time.Now()
	var cm *changelogMeta
	if r.clog != nil {
		h, err := r.clog.log.PreCommit(ctx)
		if err != nil {
			return err
		}
		cm = &changelogMeta{URI: r.opts.Changelog, Handle: h, Base: r.clog.base}
	}
	size, err := r.ckpts.write(r.backend, checkpointMetaFile{ID: id, Splits: splits, Sinks: handles, Changelog: cm, States: r.states, Phase: r.part.phase, StateFormat: stateFormat})
	if err != nil {
		return err
	}
	if r.clog != nil {
		if err := r.clog.log.Commit(ctx); err != nil {
			return err
		}
		if err := r.ckpts.markCommitted(id, changelogCommitted); err != nil {
			return err
		}
	}
	r.lastCheckpoint, r.finalCheckpoint = id, final
	r.checkpoints++
	r.positions.committed(splits)
	r.log.Info("checkpoint", "id", id, "mb", size>>20, "took", time.Since(begin).Round(time.Millisecond))
	return nil
}
