package runner

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Checkpoints that prove themselves. meta.json lists every file of the
// checkpoint's state copy with its size and CRC-32C, and carries a
// checksum of its own content; a restore verifies both before it uses
// anything, so a damaged checkpoint is refused in one line instead of
// restoring wrong state. A checkpoint written before the lists existed
// (no checksum) is used as it is, with a warning.

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCheckpointDamaged matches every error about a checkpoint whose files
// or metadata do not match what was written (errors.Is).
var ErrCheckpointDamaged = errors.New("runner: checkpoint damaged")

// stateFile is one file of a checkpoint's state copy.
type stateFile struct {
	Name   string `json:"name"` // relative to state/, with '/'
	Size   int64  `json:"size"`
	CRC32C uint32 `json:"crc32c"`
}

// fileSums remembers the sums of the files a run's backend checkpoints
// that never change under their name (Pebble's sstables), so that each is
// read once, not at every checkpoint. One run's store owns it.
type fileSums map[string]stateFile

// sumState lists the files under the local directory dir with their sizes
// and checksums, sorted by name.
func sumState(dir string, known fileSums) ([]stateFile, error) {
	var files []stateFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if f, ok := known[rel]; ok && f.Size == info.Size() {
			files = append(files, f)
			return nil
		}
		f := stateFile{Name: rel}
		if f.Size, f.CRC32C, err = sumFile(p); err != nil {
			return err
		}
		if known != nil && strings.HasSuffix(rel, ".sst") {
			known[rel] = f
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("runner: checksumming the checkpoint's state: %w", err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files, nil
}

func sumFile(p string) (int64, uint32, error) {
	f, err := os.Open(p)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	h := crc32.New(castagnoli)
	n, err := io.Copy(h, f)
	return n, h.Sum32(), err
}

// verifyState checks the local directory dir, the state copy of checkpoint
// chk, against the files its meta.json lists: every file there, of its
// size and checksum, and no other.
func verifyState(chk, dir string, want []stateFile) error {
	got, err := sumState(dir, nil)
	if err != nil {
		return err
	}
	have := make(map[string]stateFile, len(got))
	for _, f := range got {
		have[f.Name] = f
	}
	for _, w := range want {
		g, ok := have[w.Name]
		switch {
		case !ok:
			return damaged(chk, "state/%s is missing", w.Name)
		case g.Size != w.Size:
			return damaged(chk, "state/%s has %d bytes, %d were written", w.Name, g.Size, w.Size)
		case g.CRC32C != w.CRC32C:
			return damaged(chk, "state/%s does not match its checksum (crc32c %08x, %08x was written)", w.Name, g.CRC32C, w.CRC32C)
		}
		delete(have, w.Name)
	}
	for name := range have {
		return damaged(chk, "state/%s was not written with it", name)
	}
	return nil
}

func damaged(chk, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s; it cannot be used: put it back from a copy, or start over with a new --checkpoint-dir", ErrCheckpointDamaged, chk, fmt.Sprintf(format, args...))
}

// metaSum is the checksum of m's content: CRC-32C of its JSON encoding
// with Checksum empty.
func metaSum(m checkpointMetaFile) (string, error) {
	m.Checksum = ""
	b, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("crc32c:%08x", crc32.Checksum(b, castagnoli)), nil
}

// encodeMeta returns meta.json's bytes for m, with its checksum.
func encodeMeta(m checkpointMetaFile) ([]byte, error) {
	sum, err := metaSum(m)
	if err != nil {
		return nil, err
	}
	m.Checksum = sum
	return json.MarshalIndent(m, "", "  ")
}

// decodeMeta reads meta.json's bytes b of checkpoint chk (id) and checks
// its checksum. ok is false for a checkpoint written before checksums.
func decodeMeta(chk string, id int64, b []byte) (m *checkpointMetaFile, sums bool, err error) {
	m = new(checkpointMetaFile)
	if err := json.Unmarshal(b, m); err != nil {
		return nil, false, damaged(chk, "%s is unreadable (%v)", checkpointMeta, err)
	}
	if m.ID != id {
		return nil, false, damaged(chk, "%s is for checkpoint %d", checkpointMeta, m.ID)
	}
	if m.Checksum == "" {
		return m, false, nil
	}
	sum, err := metaSum(*m)
	if err != nil {
		return nil, false, err
	}
	if sum != m.Checksum {
		return nil, false, damaged(chk, "%s does not match its checksum", checkpointMeta)
	}
	return m, true, nil
}
