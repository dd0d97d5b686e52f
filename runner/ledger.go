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
// checkpoint stored whole, written (atomically: a temporary file renamed
// over it) after the checkpoint's folder is renamed into place and before
// any sink commits what it pre-committed. So a checkpoint the ledger names
// may have published output, and resuming from an older one would publish
// that output again: if it is gone (its folder or its meta.json deleted)
// the resume is refused instead of falling back. A newer checkpoint than
// the ledger's (a crash between the rename and the ledger) published
// nothing yet and is used.
//
// A run creates the ledger when it finds none, before it writes any
// checkpoint, so a directory whose newest checkpoint has checksums and no
// ledger has lost it, and is refused too. A directory of a Weir before the
// ledger gets one at its next run.

const ledgerFile = "LEDGER"

type ledgerFileContent struct {
	Completed int64  `json:"completed"`
	Checksum  string `json:"checksum"`
}

func ledgerSum(completed int64) string {
	b, _ := json.Marshal(ledgerFileContent{Completed: completed})
	return fmt.Sprintf("crc32c:%08x", crc32.Checksum(b, castagnoli))
}

// readLedger returns the ledger's newest completed checkpoint; found is
// false when there is no ledger.
func (cs *checkpointStore) readLedger() (completed int64, found bool, err error) {
	b, err := fsys.ReadFile(cs.fs, cs.path(ledgerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("runner: checkpoints in %s: %w", cs, err)
	}
	var l ledgerFileContent
	if err := json.Unmarshal(b, &l); err != nil || l.Checksum != ledgerSum(l.Completed) {
		return 0, false, fmt.Errorf("%w: %s is unreadable or does not match its checksum; it cannot be trusted to say which checkpoints published output: put it back from a copy, or start over with a new --checkpoint-dir", ErrCheckpointDamaged, cs.show(cs.path(ledgerFile)))
	}
	return l.Completed, true, nil
}

// writeLedger records checkpoint id as the newest stored whole.
func (cs *checkpointStore) writeLedger(id int64) error {
	b, err := json.Marshal(ledgerFileContent{Completed: id, Checksum: ledgerSum(id)})
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

// checkLedger refuses a resume from m (nil: no checkpoint found) when the
// ledger names a newer checkpoint that is gone, or is gone itself while
// the checkpoints have checksums.
func (cs *checkpointStore) checkLedger(m *checkpointMetaFile) error {
	completed, found, err := cs.readLedger()
	if err != nil {
		return err
	}
	if !found {
		if m != nil && m.Checksum != "" {
			return fmt.Errorf("%w: %s is missing beside checkpoints that had one; without it a deleted newer checkpoint, whose output may be published, cannot be noticed: put it back from a copy, or start over with a new --checkpoint-dir", ErrCheckpointDamaged, cs.show(cs.path(ledgerFile)))
		}
		return nil
	}
	if completed == 0 || m != nil && m.ID >= completed {
		return nil // no checkpoint completed yet, or m is the newest
	}
	chk := cs.path(checkpointName(completed))
	what := "its folder is missing"
	if _, err := cs.fs.Stat(chk); err == nil {
		what = "its " + checkpointMeta + " is missing"
	}
	older := "no older checkpoint is left"
	if m != nil {
		older = fmt.Sprintf("resuming from %s instead would publish again what %s published", checkpointName(m.ID), checkpointName(completed))
	}
	return fmt.Errorf("%w: %s, the newest completed checkpoint (%s), is gone: %s; %s: put it back from a copy, or start over with a new --checkpoint-dir", ErrCheckpointDamaged, cs.show(chk), ledgerFile, what, older)
}

// ensureLedger creates the ledger of a directory that has none, naming
// the newest checkpoint found there (0: none).
func (cs *checkpointStore) ensureLedger(m *checkpointMetaFile) error {
	if _, found, err := cs.readLedger(); err != nil || found {
		return err
	}
	var id int64
	if m != nil {
		id = m.ID
	}
	if err := cs.fs.MkdirAll(cs.dir); err != nil {
		return fmt.Errorf("runner: checkpoints in %s: %w", cs, err)
	}
	return cs.writeLedger(id)
}
