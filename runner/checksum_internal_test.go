package runner

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/fsys"
	"github.com/weir-dev/weir/state"
)

// A checkpoint whose state copy or meta.json was damaged after it was
// written is refused with ErrCheckpointDamaged, naming the checkpoint and
// the file, before anything restores from it; on the store's local path
// and on the copied one (HDFS's).
func TestDamagedCheckpointIsRefused(t *testing.T) {
	flip := func(p string) error {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			return fmt.Errorf("flip %s: %v (%d bytes)", p, err, len(b))
		}
		b[len(b)/2] ^= 0x20
		return os.WriteFile(p, b, 0o644)
	}
	// largest returns the biggest file of the state copy: the one most
	// likely to hold the data (a WAL or an sstable).
	largest := func(dir string) string {
		var best string
		var size int64 = -1
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if info, err := e.Info(); err == nil && !e.IsDir() && info.Size() > size {
				best, size = filepath.Join(dir, e.Name()), info.Size()
			}
		}
		return best
	}
	for _, tc := range []struct {
		name   string
		damage func(chk string) error
		want   string // in the error
	}{
		{"state file byte flipped", func(chk string) error { return flip(largest(filepath.Join(chk, "state"))) }, "does not match its checksum"},
		{"state file truncated", func(chk string) error {
			p := largest(filepath.Join(chk, "state"))
			info, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, info.Size()/2)
		}, "bytes, "},
		{"state file deleted", func(chk string) error { return os.Remove(largest(filepath.Join(chk, "state"))) }, "is missing"},
		{"file added", func(chk string) error {
			return os.WriteFile(filepath.Join(chk, "state", "000999.log"), []byte("x"), 0o644)
		}, "was not written with it"},
		{"meta.json value changed", func(chk string) error {
			p := filepath.Join(chk, checkpointMeta)
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			nb := bytes.Replace(b, []byte(`"phase": "live"`), []byte(`"phase": "lave"`), 1)
			if bytes.Equal(nb, b) {
				return errors.New("no phase to change")
			}
			return os.WriteFile(p, nb, 0o644)
		}, "meta.json does not match its checksum"},
		{"meta.json truncated", func(chk string) error {
			p := filepath.Join(chk, checkpointMeta)
			info, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, info.Size()/2)
		}, "meta.json is unreadable"},
	} {
		for _, store := range []struct {
			name string
			fs   fsys.FS
		}{{"local", fsys.Local}, {"copied", remoteFS{fsys.Local}}} {
			t.Run(tc.name+"/"+store.name, func(t *testing.T) {
				cs, b := checkpointsOf(t, store.fs)
				_ = b
				chk := filepath.Join(cs.dir, checkpointName(3))
				if err := tc.damage(chk); err != nil {
					t.Fatal(err)
				}
				m, at, err := cs.latest()
				if err == nil {
					var done func()
					_, done, err = cs.localState(at, m)
					if err == nil {
						done()
					}
				}
				if !errors.Is(err, ErrCheckpointDamaged) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), checkpointName(3)) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("got %v, want one line: ErrCheckpointDamaged naming %s and %q", err, checkpointName(3), tc.want)
				}
			})
		}
	}
}

// An undamaged checkpoint verifies, and one written before checksums (no
// file list, no checksum) is used as it is.
func TestCheckpointChecksums(t *testing.T) {
	cs, _ := checkpointsOf(t, fsys.Local)
	m, at, err := cs.latest()
	if err != nil || m == nil || m.ID != 3 || m.Checksum == "" || len(m.Files) == 0 {
		t.Fatalf("latest: %+v, %v; want checkpoint 3 with its files and checksum", m, err)
	}
	for _, f := range m.Files {
		if strings.HasSuffix(f.Name, ".sst") && cs.sums[f.Name] != f {
			t.Errorf("%s: remembered %+v, listed %+v", f.Name, cs.sums[f.Name], f)
		}
	}
	if _, done, err := cs.localState(at, m); err != nil {
		t.Fatal(err)
	} else {
		done()
	}
	// The same checkpoint as an older Weir wrote it.
	old := *m
	old.Files, old.Checksum = nil, ""
	b, err := json.MarshalIndent(old, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path.Join(at, checkpointMeta), b, 0o644); err != nil {
		t.Fatal(err)
	}
	m, at, err = cs.latest()
	if err != nil || m == nil || m.ID != 3 || m.Checksum != "" {
		t.Fatalf("latest of an older checkpoint: %+v, %v", m, err)
	}
	if _, done, err := cs.localState(at, m); err != nil {
		t.Fatal(err)
	} else {
		done()
	}
}

// checkpointsOf writes three checkpoints of a Pebble backend, with
// sstables and a WAL, to a new store on f.
func checkpointsOf(t *testing.T, f fsys.FS) (*checkpointStore, state.Backend) {
	t.Helper()
	cs := &checkpointStore{fs: f, dir: filepath.Join(t.TempDir(), "ckpts"), sums: fileSums{}}
	if err := cs.fs.MkdirAll(cs.dir); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b, err := state.OpenPebble(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	for id := int64(1); id <= 3; id++ {
		for k := range 2000 {
			if err := b.Set([]byte(fmt.Sprintf("k%d-%d", id, k)), bytes.Repeat([]byte{byte(k)}, 100)); err != nil {
				t.Fatal(err)
			}
		}
		if id < 3 {
			// Reopened, Pebble flushes what its log holds into an
			// sstable: the checkpoint then has both kinds of file.
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			if b, err = state.OpenPebble(dir, nil); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cs.write(b, checkpointMetaFile{ID: id, Phase: "live"}); err != nil {
			t.Fatal(err)
		}
		if err := cs.recordCommitted(id); err != nil { // as the sinks do
			t.Fatal(err)
		}
	}
	return cs, b
}

func TestCheckpointsOfHaveSSTables(t *testing.T) {
	cs, _ := checkpointsOf(t, fsys.Local)
	m, _, err := cs.latest()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range m.Files {
		if strings.HasSuffix(f.Name, ".sst") {
			n++
		}
	}
	if n == 0 || len(cs.sums) != n {
		t.Fatalf("checkpoint lists %d sstables, %d remembered; want some, all remembered: %+v", n, len(cs.sums), m.Files)
	}
}

// decodeMeta never panics, and what it accepts with a checksum encodes
// again to a meta.json it accepts as the same checkpoint.
func FuzzDecodeMeta(f *testing.F) {
	good, err := encodeMeta(checkpointMetaFile{ID: 7, Phase: "live", Files: []stateFile{{Name: "000002.log", Size: 10, CRC32C: 3}},
		Sinks: map[string][]byte{"out": []byte("handle")}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"id":7}`))
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, sums, err := decodeMeta("chk", 7, b)
		if err != nil {
			if !errors.Is(err, ErrCheckpointDamaged) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %q: want one line, ErrCheckpointDamaged", err)
			}
			return
		}
		if m.ID != 7 || sums != (m.Checksum != "") {
			t.Fatalf("accepted %+v (sums %v)", m, sums)
		}
		if !sums {
			return
		}
		again, err := encodeMeta(*m)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok, err := decodeMeta("chk", 7, again); err != nil || !ok {
			t.Fatalf("re-encoded: %v, %v", ok, err)
		}
	})
}
