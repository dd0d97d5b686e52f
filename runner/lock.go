package runner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// One process per state. A run locks its state directory and its
// checkpoint directory, when they are local, before it reads or resets
// anything in them, and holds the locks until it has closed them. A second
// process on either fails at once with an InUseError that names the
// holder, instead of deleting or restoring state under a running job.
//
// The lock is flock(2) on a file that holds the holder's pid and host: the
// kernel releases it when the process ends, however it ends, so a job
// killed with kill -9 leaves no lock behind. The state directory's lock is
// beside it (DIR.lock), because a restore or a reset removes the directory
// whole; the checkpoint directory's is inside it (LOCK). A checkpoint
// directory on HDFS is not locked.

const (
	stateLockSuffix = ".lock"
	checkpointLock  = "LOCK"
)

// InUseError is returned when a directory a run needs is locked by another
// process (or another run in this one).
type InUseError struct {
	What   string // the option: "--state-dir" or "--checkpoint-dir"
	Dir    string
	Holder string // "pid N on host H", or "" when the lock file says nothing
}

func (e *InUseError) Error() string {
	holder := e.Holder
	if holder == "" {
		holder = "another process"
	}
	return fmt.Sprintf("runner: %s %s is in use by %s: one process per state; stop it, or use another directory", e.What, e.Dir, holder)
}

// ErrInUse matches every InUseError (errors.Is).
var ErrInUse = errors.New("runner: directory in use")

func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// dirLock is a held lock; release gives it up.
type dirLock struct {
	f *os.File
}

// lockFile takes the lock on file (creating it and its directory), for the
// directory dir of option what, and writes this process's pid and host in
// it.
func lockFile(file, what, dir string) (*dirLock, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return nil, fmt.Errorf("runner: %s %s: %w", what, dir, err)
	}
	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("runner: %s %s: %w", what, dir, err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("runner: %s %s: locking %s: %w", what, dir, file, err)
	}
	if !held {
		b, _ := os.ReadFile(file)
		f.Close()
		return nil, &InUseError{What: what, Dir: dir, Holder: strings.TrimSpace(string(b))}
	}
	host, _ := os.Hostname()
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(fmt.Sprintf("pid %d on host %s\n", os.Getpid(), host)), 0)
	}
	return &dirLock{f: f}, nil
}

// release gives the lock up. The file stays: removing it would let a
// process that opened it before the removal hold a lock no one else sees.
func (l *dirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	unlock(l.f)
	l.f.Close()
	l.f = nil
}

// lockStateDir locks the local state directory dir (DIR.lock beside it).
func lockStateDir(dir string) (*dirLock, error) {
	dir = filepath.Clean(dir)
	return lockFile(dir+stateLockSuffix, "--state-dir", dir)
}

// lockCheckpointDir locks the local checkpoint directory dir (DIR/LOCK).
func lockCheckpointDir(dir string) (*dirLock, error) {
	dir = filepath.Clean(dir)
	return lockFile(filepath.Join(dir, checkpointLock), "--checkpoint-dir", dir)
}
