package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/weir-dev/weir/internal/fsutil"
	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/runner/internal/engine"
	"github.com/weir-dev/weir/state"
)

// Checkpoint storage. A checkpoint directory holds one directory per
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
}

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
// version newer than g declares: the job's earlier code would misread it.
func checkStateVersions(m *checkpointMetaFile, g *graph.Graph) error {
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

// checkpointPath turns a --checkpoint-dir value (a path or file:// URI)
// into a local path.
func checkpointPath(s string) (string, error) {
	u, err := connector.ParseURI(s)
	if err != nil {
		return "", err
	}
	if u.Scheme != "file" {
		return "", fmt.Errorf("%w: --checkpoint-dir %s: only file:// checkpoints are supported so far", ErrOptions, s)
	}
	p := u.Path
	if u.Host != "" && u.Host != "localhost" {
		p = filepath.Join(u.Host, p)
	}
	return p, nil
}

// latestCheckpoint returns the newest complete checkpoint in dir, if any.
func latestCheckpoint(dir string) (*checkpointMetaFile, string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("runner: checkpoints: %w", err)
	}
	var ids []int64
	for _, e := range entries {
		if id, ok := checkpointID(e.Name()); ok && e.IsDir() {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	for _, id := range ids {
		p := filepath.Join(dir, checkpointName(id))
		b, err := os.ReadFile(filepath.Join(p, checkpointMeta))
		if err != nil {
			continue
		}
		var m checkpointMetaFile
		if err := json.Unmarshal(b, &m); err != nil || m.ID != id {
			return nil, "", fmt.Errorf("runner: checkpoint %s: unreadable %s", p, checkpointMeta)
		}
		return &m, p, nil
	}
	return nil, "", nil
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

// writeCheckpoint stores checkpoint id: the backend's copy and the split
// states, then prunes old checkpoints.
// m has everything but the time; m.Changelog set means no state copy.
func writeCheckpoint(dir string, b state.Backend, m checkpointMetaFile) (int64, error) {
	id := m.ID
	final := filepath.Join(dir, checkpointName(id))
	tmp := final + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return 0, err
	}
	if m.Changelog == nil {
		if err := b.Checkpoint(filepath.Join(tmp, "state")); err != nil {
			return 0, err
		}
	}
	m.Written = time.Now().UTC()
	meta, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return 0, err
	}
	if err := fsutil.WriteFileSync(filepath.Join(tmp, checkpointMeta), meta); err != nil {
		return 0, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return 0, err
	}
	if err := fsutil.SyncDir(dir); err != nil {
		return 0, err
	}
	size := dirSize(final)
	entries, _ := os.ReadDir(dir)
	var ids []int64
	for _, e := range entries {
		if old, ok := checkpointID(e.Name()); ok && old < id {
			ids = append(ids, old)
		} else if strings.HasSuffix(e.Name(), ".tmp") && e.Name() != filepath.Base(tmp) {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] > ids[j] })
	for i, old := range ids {
		if i >= keepCheckpoints-1 {
			os.RemoveAll(filepath.Join(dir, checkpointName(old)))
		}
	}
	return size, nil
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
