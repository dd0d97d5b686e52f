package runner

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/fsys"
	"github.com/weir-dev/weir/state"
)

// remoteFS is the local disk seen as another file system, so that the
// store takes the path it takes for HDFS: copy the checkpoint up, and down
// for a restore.
type remoteFS struct{ fsys.FS }

func TestCheckpointStoreOnAnotherFileSystem(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   fsys.FS
	}{{"local", fsys.Local}, {"copied", remoteFS{fsys.Local}}} {
		t.Run(tc.name, func(t *testing.T) {
			cs := &checkpointStore{fs: tc.fs, dir: filepath.Join(t.TempDir(), "ckpts")}
			if err := cs.fs.MkdirAll(cs.dir); err != nil {
				t.Fatal(err)
			}
			b, err := state.OpenPebble(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			for id := int64(1); id <= 5; id++ {
				if err := b.Set([]byte(fmt.Sprint("k", id)), []byte(fmt.Sprint("v", id))); err != nil {
					t.Fatal(err)
				}
				if _, err := cs.write(b, checkpointMetaFile{ID: id}); err != nil {
					t.Fatal(err)
				}
			}
			m, at, err := cs.latest()
			if err != nil || m == nil || m.ID != 5 {
				t.Fatalf("latest: %v %v", m, err)
			}
			entries, _ := cs.fs.ReadDir(cs.dir)
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if got := strings.Join(names, " "); got != "LEDGER chk-000000000003 chk-000000000004 chk-000000000005" {
				t.Errorf("kept %s, want the ledger and the last 3 checkpoints", got)
			}
			src, done, err := cs.localState(at, m)
			if err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "restored")
			err = state.RestorePebble(src, dst)
			done()
			if err != nil {
				t.Fatal(err)
			}
			r, err := state.OpenPebble(dst, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for id := 1; id <= 5; id++ {
				if v, ok, err := r.Get([]byte(fmt.Sprint("k", id))); err != nil || !ok || string(v) != fmt.Sprint("v", id) {
					t.Errorf("k%d: %q %v %v", id, v, ok, err)
				}
			}
			if cs.finished() {
				t.Error("finished before it was marked")
			}
			if err := cs.markFinished(); err != nil || !cs.finished() {
				t.Errorf("marked finished: %v", err)
			}
		})
	}
}
