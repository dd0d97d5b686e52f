package runner

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/fsys"
)

// The ledger refuses a resume that would fall back past a checkpoint that
// may have published output, and lets through what published nothing.
func TestLedger(t *testing.T) {
	uncommitted := func(t *testing.T, cs *checkpointStore) { // a crash before the sinks of 3 committed
		if err := cs.writeLedger(ledger{Completed: 3, Committed: 2}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, cs *checkpointStore)
		want   string // in the error; "" for none, resuming from wantID
		wantID int64
		note   string // in the warning of a fallback
	}{
		{"intact", func(*testing.T, *checkpointStore) {}, "", 3, ""},
		{"newest folder deleted", func(t *testing.T, cs *checkpointStore) {
			rm(t, cs.path(checkpointName(3)))
		}, "chk-000000000003, the newest completed checkpoint (LEDGER), is gone: its folder is missing; its sinks committed (LEDGER), so resuming from chk-000000000002 instead would publish their output again", 0, ""},
		{"newest folder deleted before its sinks committed", func(t *testing.T, cs *checkpointStore) {
			uncommitted(t, cs)
			rm(t, cs.path(checkpointName(3)))
		}, "", 2, "chk-000000000003, the newest completed checkpoint (LEDGER), is gone: its folder is missing, but none of its sinks committed: resuming from chk-000000000002 instead"},
		{"newest meta.json deleted before its sinks committed, state in a changelog", func(t *testing.T, cs *checkpointStore) {
			uncommitted(t, cs)
			b, err := encodeMeta(checkpointMetaFile{ID: 2, Changelog: &changelogMeta{URI: "kafka://x/y"}})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cs.path(checkpointName(2), checkpointMeta), b, 0o644); err != nil {
				t.Fatal(err)
			}
			rm(t, cs.path(checkpointName(3), checkpointMeta))
		}, "its meta.json is missing; the changelog may hold its changes", 0, ""},
		{"every checkpoint deleted before the first sinks committed", func(t *testing.T, cs *checkpointStore) {
			if err := cs.writeLedger(ledger{Completed: 3}); err != nil {
				t.Fatal(err)
			}
			for id := int64(1); id <= 3; id++ {
				rm(t, cs.path(checkpointName(id)))
			}
		}, "", 0, "starting from the beginning"},
		{"newest meta.json deleted", func(t *testing.T, cs *checkpointStore) {
			rm(t, cs.path(checkpointName(3), checkpointMeta))
		}, "its meta.json is missing", 0, ""},
		{"every checkpoint deleted", func(t *testing.T, cs *checkpointStore) {
			for id := int64(1); id <= 3; id++ {
				rm(t, cs.path(checkpointName(id)))
			}
		}, "its sinks committed (LEDGER), so starting from the beginning would publish their output again", 0, ""},
		{"ledger deleted", func(t *testing.T, cs *checkpointStore) {
			rm(t, cs.path(ledgerFile))
		}, "LEDGER is missing", 0, ""},
		{"ledger changed", func(t *testing.T, cs *checkpointStore) {
			b, err := os.ReadFile(cs.path(ledgerFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cs.path(ledgerFile), []byte(strings.Replace(string(b), `"completed":3`, `"completed":2`, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "LEDGER is unreadable or does not match its checksum", 0, ""},
		{"crash before the ledger named the newest", func(t *testing.T, cs *checkpointStore) {
			if err := cs.writeLedger(ledger{Completed: 2, Committed: 2}); err != nil {
				t.Fatal(err)
			}
		}, "", 3, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, _ := checkpointsOf(t, fsys.Local)
			tc.damage(t, cs)
			m, _, err := cs.latest()
			if tc.want == "" {
				if err != nil || tc.wantID == 0 && m != nil || tc.wantID != 0 && (m == nil || m.ID != tc.wantID) {
					t.Fatalf("got %+v, %v; want checkpoint %d", m, err, tc.wantID)
				}
				if tc.note == "" && cs.fellBack != "" || !strings.Contains(cs.fellBack, tc.note) {
					t.Fatalf("warning %q; want one with %q", cs.fellBack, tc.note)
				}
				return
			}
			if !errors.Is(err, ErrCheckpointDamaged) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v; want one line, ErrCheckpointDamaged, with %q", err, tc.want)
			}
		})
	}
}

// A checkpoint directory of a Weir before the ledger (no LEDGER, no
// checksums) resumes, and gets a ledger naming its newest checkpoint.
func TestLedgerOfAnOlderDirectory(t *testing.T) {
	cs, _ := checkpointsOf(t, fsys.Local)
	rm(t, cs.path(ledgerFile))
	for id := int64(1); id <= 3; id++ {
		m := checkpointMetaFile{ID: id}
		b, err := encodeMeta(m)
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.Replace(string(b), `"checksum"`, `"ignored"`, 1))
		if err := os.WriteFile(cs.path(checkpointName(id), checkpointMeta), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	m, _, err := cs.latest()
	if err != nil || m == nil || m.ID != 3 || m.Checksum != "" {
		t.Fatalf("latest: %+v, %v; want checkpoint 3 unverified", m, err)
	}
	if err := cs.ensureLedger(m); err != nil {
		t.Fatal(err)
	}
	if l, found, err := cs.readLedger(); err != nil || !found || l.Completed != 3 {
		t.Fatalf("ledger: %+v %v %v; want 3 completed", l, found, err)
	}
}

func rm(t *testing.T, p string) {
	t.Helper()
	if err := os.RemoveAll(filepath.FromSlash(p)); err != nil {
		t.Fatal(err)
	}
}

// A new directory gets a ledger that names no checkpoint, and a run that
// crashed before its first checkpoint completed starts over from it.
func TestLedgerOfANewDirectory(t *testing.T) {
	cs := &checkpointStore{fs: fsys.Local, dir: filepath.Join(t.TempDir(), "ckpts"), sums: fileSums{}}
	if err := cs.ensureLedger(nil); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(cs.path(checkpointName(1)+".tmp"), 0o755); err != nil { // a crash while writing it
		t.Fatal(err)
	}
	if m, _, err := cs.latest(); m != nil || err != nil {
		t.Fatalf("latest: %+v, %v; want no checkpoint and no error", m, err)
	}
}
