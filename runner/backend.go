package runner

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/weir-dev/weir/internal/fsutil"
	"github.com/weir-dev/weir/state"
)

func backendDesc(o *Options) string {
	if o.StateBackend == "memory" {
		return "memory"
	}
	if o.StateDir == "" {
		return "pebble (temporary directory)"
	}
	return "pebble " + o.StateDir
}

// openBackend opens the state backend. Resuming from a checkpoint, it
// reuses a state directory left exactly at that checkpoint, and otherwise
// restores the checkpoint's copy into it. The returned cleanup closes the
// backend and, given a checkpoint id, marks the directory as left at it.
//
// fromLog, when set, rebuilds the state from the changelog instead of the
// checkpoint's copy.
//
// stateOf returns a local directory with the resumed checkpoint's state
// copy, and what to call when done with it.
func openBackend(o *Options, onFailure func(error), resume *checkpointMetaFile, stateOf func() (string, func(), error), fromLog func(state.Backend) error) (state.Backend, func(marker int64), error) {
	log := o.Logger
	if o.StateBackend == "memory" {
		if resume != nil && fromLog != nil {
			b := state.NewMem()
			if err := fromLog(b); err != nil {
				b.Close()
				return nil, nil, err
			}
			return b, func(int64) { b.Close() }, nil
		}
		if resume != nil {
			src, done, err := stateOf()
			if err != nil {
				return nil, nil, err
			}
			b, err := state.LoadMem(src)
			done()
			if err != nil {
				return nil, nil, fmt.Errorf("runner: restoring checkpoint %d: %w", resume.ID, err)
			}
			return b, func(int64) { b.Close() }, nil
		}
		b := state.NewMem()
		return b, func(int64) { b.Close() }, nil
	}
	dir := o.StateDir
	temp := dir == ""
	releaseTemp := func() {}
	if temp {
		d, release, err := makeTempDir("state")
		if err != nil {
			return nil, nil, fmt.Errorf("runner: state directory: %w", err)
		}
		dir, releaseTemp = d, release
	}
	opened := false
	defer func() {
		if !opened {
			releaseTemp()
		}
	}()
	entries, _ := os.ReadDir(dir)
	entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool { return e.Name() == jobMarker })
	restoreLog := false
	switch {
	case resume != nil:
		if id, ok := markerID(dir); ok && id == resume.ID {
			log.Info("local state is at the checkpoint: reused without a restore", "dir", dir, "checkpoint", resume.ID)
			break
		}
		begin := time.Now()
		if err := os.RemoveAll(dir); err != nil {
			return nil, nil, fmt.Errorf("runner: state directory: %w", err)
		}
		if fromLog != nil {
			restoreLog = true
			break
		}
		src, done, err := stateOf()
		if err != nil {
			return nil, nil, err
		}
		err = state.RestorePebble(src, dir)
		mb := float64(dirSize(src)) / (1 << 20)
		done()
		if err != nil {
			return nil, nil, fmt.Errorf("runner: restoring checkpoint %d: %w", resume.ID, err)
		}
		took := time.Since(begin)
		log.Info("state restored from checkpoint", "checkpoint", resume.ID, "mb", int64(mb), "took", took.Round(time.Millisecond), "mb_per_s", int64(mb/max(took.Seconds(), 1e-3)))
	case len(entries) > 0 && o.CheckpointDir != "":
		log.Info("no checkpoint to resume from: starting with empty state", "dir", dir)
		if err := os.RemoveAll(dir); err != nil {
			return nil, nil, fmt.Errorf("runner: resetting state directory: %w", err)
		}
	case len(entries) > 0:
		if !o.ResetState {
			return nil, nil, fmt.Errorf("%w: %s holds state from an earlier run; pass --reset-state to start over, or use another --state-dir", ErrStateDir, dir)
		}
		if err := os.RemoveAll(dir); err != nil {
			return nil, nil, fmt.Errorf("runner: resetting state directory: %w", err)
		}
	}
	// The run writes state beyond any checkpoint from here on.
	os.Remove(filepath.Join(dir, stateMarker))
	popts := memoryBudget(o.Memory).pebble()
	if popts == nil {
		popts = &state.PebbleOptions{}
	}
	popts.OnFailure = onFailure
	b, err := state.OpenPebble(dir, popts)
	if err == nil && restoreLog {
		if err = fromLog(b); err != nil {
			b.Close()
		}
	}
	if err != nil {
		return nil, nil, err
	}
	opened = true
	return b, func(marker int64) {
		if err := b.Close(); err != nil {
			o.Logger.Warn("closing the state backend", "err", err)
			marker = 0
		}
		if temp {
			releaseTemp()
		} else if marker > 0 {
			if err := fsutil.WriteFileSync(filepath.Join(dir, stateMarker), []byte(strconv.FormatInt(marker, 10))); err != nil {
				o.Logger.Warn("marking the state directory", "err", err)
			}
		}
	}, nil
}
