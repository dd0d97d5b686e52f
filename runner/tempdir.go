package runner

import (
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// Temporary directories. A run without --state-dir keeps its state in a
// temporary directory, and a checkpoint on HDFS is staged in one on its
// way up or down. A process killed with them open leaves them behind,
// with up to the whole state in them, so each has a lock file beside it
// (weir-KIND-N.lock, flock(2)-locked while the directory is in use), and
// the first run of a process sweeps those whose lock it can take: their
// owner is gone. A lock file younger than tempSweepAge is left alone: its
// owner may be between creating it and locking it.

const tempSweepAge = time.Minute

var tempLockName = regexp.MustCompile(`^weir-(state|checkpoint|restore)-[0-9]+\.lock$`)

// makeTempDir makes a temporary directory for kind ("state", "checkpoint"
// or "restore"), locked until release, which removes it.
func makeTempDir(kind string) (dir string, release func(), err error) {
	f, err := os.CreateTemp("", "weir-"+kind+"-*.lock")
	if err != nil {
		return "", nil, err
	}
	if _, err := tryLock(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", nil, err
	}
	dir = f.Name()[:len(f.Name())-len(".lock")]
	if err := os.Mkdir(dir, 0o700); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", nil, err
	}
	var once sync.Once
	return dir, func() {
		once.Do(func() {
			os.RemoveAll(dir)
			os.Remove(f.Name())
			unlock(f)
			f.Close()
		})
	}, nil
}

var sweepOnce sync.Once

// sweepTempDirs removes, once per process, the temporary directories that
// killed processes left.
func sweepTempDirs(log *slog.Logger) {
	if !canLock {
		return // without flock, a directory in use cannot be told apart
	}
	sweepOnce.Do(func() {
		tmp := os.TempDir()
		entries, err := os.ReadDir(tmp)
		if err != nil {
			return
		}
		for _, e := range entries {
			if !tempLockName.MatchString(e.Name()) {
				continue
			}
			if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < tempSweepAge {
				continue
			}
			lock := filepath.Join(tmp, e.Name())
			f, err := os.OpenFile(lock, os.O_RDWR, 0)
			if err != nil {
				continue
			}
			if held, err := tryLock(f); err != nil || !held {
				f.Close()
				continue
			}
			dir := lock[:len(lock)-len(".lock")]
			size := dirSize(dir)
			if err := os.RemoveAll(dir); err == nil {
				os.Remove(lock)
				log.Info("removed a temporary directory a killed run left", "dir", dir, "mb", size>>20)
			}
			unlock(f)
			f.Close()
		}
	})
}
