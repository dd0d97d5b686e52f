package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"

	"github.com/weir-dev/weir/io/fsys"
)

// The ledger. A checkpoint directory's LEDGER holds the id of the newest
// checkpoint stored whole ("completed"), written after the checkpoint's
// folder is renamed into place and before any sink commits what it
// pre-committed, and the id of the newest checkpoint whose sinks all
// committed ("committed"), written once they have. Both are written
// atomically (a temporary file renamed over it).
//
// So when the checkpoint the ledger names as completed is gone (its folder
// or its meta.json deleted), a resume knows it, and falls back to the
// newest checkpoint left only when that publishes nothing twice:
//   - if the ledger says the lost checkpoint's sinks committed, its output
//     is published, and resuming from an older one would publish it again:
//     refused;
//   - if the state is kept in a changelog, the lost checkpoint's changes
//     may be in it, and would be restored with the older checkpoint's
//     positions: refused;
//   - otherwise the run falls back, with a warning, and each two-phase sink
//     checks in Recover that it published nothing after the checkpoint
//     resumed from (connector.ErrPublishedAhead): the ledger's "committed"
//     is written after the sinks commit, so a crash in between leaves it
//     one behind, and the sinks have the last word.
// A newer checkpoint than the ledger's (a crash between the rename and the
// ledger) published nothing yet and is used.
//
// A run creates the ledger when it finds none, before it writes any
// checkpoint, so a directory whose newest checkpoint has checksums and no
// ledger has lost it, and is refused too. A directory of a Weir before the
// ledger gets one at its next run.

const ledgerFile = "LEDGER"

// ledger is the content of LEDGER. Checksum is the CRC-32C of the JSON of
// the other fields.
type ledger struct {
	Completed int64  `json:"completed"`
	Committed int64  `json:"committed,omitempty"`
	Checksum  string `json:"checksum"`
}

func (l ledger) sum() string {
	l.Checksum = ""
	b, _ := json.Marshal(l)
	return fmt.Sprintf("crc32c:%08x", crc32.Checksum(b, castagnoli))
}

// readLedger returns the ledger; found is false when there is none.
func (cs *checkpointStore) readLedger() (l ledger, found bool, err error) {
	b, err := fsys.ReadFile(cs.fs, cs.path(ledgerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return ledger{}, false, nil
	}
	if err != nil {
		return ledger{}, false, fmt.Errorf("runner: checkpoints in %s: %w", cs, err)
	}
	if err := json.Unmarshal(b, &l); err != nil || l.Checksum != l.sum() {
		return ledger{}, false, fmt.Errorf("%w: %s is unreadable or does not match its checksum; it cannot be trusted to say which checkpoints published output: put it back from a copy, or start over with a new --checkpoint-dir", ErrCheckpointDamaged, cs.show(cs.path(ledgerFile)))
	}
	return l, true, nil
}

// writeLedger replaces the ledger with l.
func (cs *checkpointStore) writeLedger(l ledger) error {
	l.Checksum = l.sum()
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	tmp := cs.path(ledgerFile + ".tmp")
	if err := fsys.WriteFile(cs.fs, tmp, append(b, '\n')); err != nil {
		return fmt.Errorf("runner: writing %s: %w", cs.show(cs.path(ledgerFile)), err)
	}
	if err := cs.fs.Rename(tmp, cs.path(ledgerFile)); err != nil {
		return fmt.Errorf("runner: writing %s: %w", cs.show(cs.path(ledgerFile)), err)
	}
	return nil
}

// recordCompleted records checkpoint id as the newest stored whole, and
// recordCommitted as the newest whose sinks committed. The engine calls
// them from different goroutines; the store's copy of the ledger is
// theirs alone.
func (cs *checkpointStore) recordCompleted(id int64) error {
	cs.ledger.Lock()
	defer cs.ledger.Unlock()
	cs.ledger.l.Completed = id
	return cs.writeLedger(cs.ledger.l)
}

func (cs *checkpointStore) recordCommitted(id int64) error {
	cs.ledger.Lock()
	defer cs.ledger.Unlock()
	cs.ledger.l.Committed = max(cs.ledger.l.Committed, id)
	return cs.writeLedger(cs.ledger.l)
}

// checkLedger checks a resume from m (nil: no checkpoint found) against
// the ledger. It refuses when the ledger names a newer checkpoint that is
// gone and whose output may be published, or is gone itself while the
// checkpoints have checksums; it returns a warning when it lets the run
// fall back past a lost checkpoint that published nothing.
func (cs *checkpointStore) checkLedger(m *checkpointMetaFile) (fellBack string, err error) {
	l, found, err := cs.readLedger()
	if err != nil {
		return "", err
	}
	if !found {
		if m != nil && m.Checksum != "" {
			return "", fmt.Errorf("%w: %s is missing beside checkpoints that had one; without it a deleted newer checkpoint, whose output may be published, cannot be noticed: put it back from a copy, or start over with a new --checkpoint-dir", ErrCheckpointDamaged, cs.show(cs.path(ledgerFile)))
		}
		return "", nil
	}
	if l.Completed == 0 || m != nil && m.ID >= l.Completed {
		return "", nil // no checkpoint completed yet, or m is the newest
	}
	chk := cs.path(checkpointName(l.Completed))
	what := "its folder is missing"
	if _, err := cs.fs.Stat(chk); err == nil {
		what = "its " + checkpointMeta + " is missing"
	}
	var at int64
	older := "starting from the beginning"
	if m != nil {
		at = m.ID
		older = "resuming from " + checkpointName(at) + " instead"
	}
	gone := fmt.Sprintf("%s, the newest completed checkpoint (%s), is gone: %s", cs.show(chk), ledgerFile, what)
	switch {
	case l.Committed > at:
		return "", fmt.Errorf("%w: %s; its sinks committed (%s), so %s would publish their output again: put it back from a copy, or start over with a new --checkpoint-dir", ErrCheckpointDamaged, gone, ledgerFile, older)
	case m != nil && m.Changelog != nil:
		return "", fmt.Errorf("%w: %s; the changelog may hold its changes, which %s would restore with older positions: put it back from a copy, or start over with a new --checkpoint-dir and a new changelog", ErrCheckpointDamaged, gone, older)
	}
	return fmt.Sprintf("%s, but none of its sinks committed: %s, and every two-phase sink checks that it published nothing after it", gone, older), nil
}

// ensureLedger creates the ledger of a directory that has none, naming
// the newest checkpoint found there (0: none), and keeps its content for
// the run's checkpoints to update.
func (cs *checkpointStore) ensureLedger(m *checkpointMetaFile) error {
	l, found, err := cs.readLedger()
	if err != nil {
		return err
	}
	cs.ledger.Lock()
	defer cs.ledger.Unlock()
	cs.ledger.l = l
	if found {
		return nil
	}
	if m != nil {
		cs.ledger.l.Completed = m.ID
	}
	if err := cs.fs.MkdirAll(cs.dir); err != nil {
		return fmt.Errorf("runner: checkpoints in %s: %w", cs, err)
	}
	return cs.writeLedger(cs.ledger.l)
}
