package runner

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The first run of a process removes the temporary directories that a
// killed process left (their lock is free and old), and leaves those in
// use and those just made.
func TestTempDirsOfKilledRunsAreSwept(t *testing.T) {
	if !canLock {
		t.Skip("no flock here: temporary directories are not swept")
	}
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	old := time.Now().Add(-2 * tempSweepAge)
	left := func(name string, at time.Time) string { // what a killed process leaves
		dir := filepath.Join(tmp, name)
		if err := os.MkdirAll(filepath.Join(dir, "state"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "state", "000001.sst"), make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir+".lock", nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir+".lock", at, at); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	killed := left("weir-state-123", old)
	killedRestore := left("weir-restore-456", old)
	young := left("weir-checkpoint-789", time.Now())
	other := left("weir-other-1", old)
	inUse, release, err := makeTempDir("state")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if err := os.Chtimes(inUse+".lock", old, old); err != nil {
		t.Fatal(err)
	}

	sweepOnce = sync.Once{}
	sweepTempDirs(slog.New(slog.DiscardHandler))
	for _, tc := range []struct {
		dir  string
		kept bool
	}{{killed, false}, {killedRestore, false}, {young, true}, {other, true}, {inUse, true}} {
		_, err := os.Stat(tc.dir)
		_, lerr := os.Stat(tc.dir + ".lock")
		if kept := err == nil && lerr == nil; kept != tc.kept {
			t.Errorf("%s: kept %v (%v, %v), want %v", filepath.Base(tc.dir), kept, err, lerr, tc.kept)
		}
	}
	release()
	if _, err := os.Stat(inUse); !os.IsNotExist(err) {
		t.Errorf("release left %s: %v", inUse, err)
	}
}
