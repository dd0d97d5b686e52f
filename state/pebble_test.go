package state_test

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// testPebbleOptions keeps test stores small.
var testPebbleOptions = state.PebbleOptions{CacheSize: 4 << 20, MemTableSize: 1 << 20}

func openPebble(t *testing.T) state.Backend {
	t.Helper()
	p, err := state.OpenPebble(t.TempDir(), &testPebbleOptions)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func reopenPebble(t *testing.T, b state.Backend) state.Backend {
	t.Helper()
	p := b.(*state.Pebble)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p, err := state.OpenPebble(p.Dir(), &testPebbleOptions)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPebble(t *testing.T) {
	statetest.Run(t, openPebble, reopenPebble)
}

func TestPebbleOptions(t *testing.T) {
	var o state.PebbleOptions
	o.EnsureDefaults()
	if o.CacheSize != state.DefaultPebbleCacheSize || o.MemTableSize != state.DefaultPebbleMemTableSize ||
		o.MaxOpenFiles != state.DefaultPebbleMaxOpenFiles || o.Sync {
		t.Fatalf("defaults = %+v", o)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	set := state.PebbleOptions{CacheSize: 1, MemTableSize: 2, MaxOpenFiles: 3, Sync: true}
	o = set
	o.EnsureDefaults()
	if o.CacheSize != set.CacheSize || o.MemTableSize != set.MemTableSize || o.MaxOpenFiles != set.MaxOpenFiles || o.Sync != set.Sync {
		t.Fatalf("EnsureDefaults changed set fields: %+v", o)
	}

	tests := []struct {
		name string
		opts state.PebbleOptions
		want []string // substrings of the error; none: valid
	}{
		{name: "zero", opts: state.PebbleOptions{}},
		{name: "cache", opts: state.PebbleOptions{CacheSize: -1}, want: []string{"CacheSize"}},
		{name: "memtable", opts: state.PebbleOptions{MemTableSize: 4 << 30}, want: []string{"MemTableSize"}},
		{name: "every problem at once", opts: state.PebbleOptions{CacheSize: -1, MemTableSize: 1 << 40, MaxOpenFiles: -2},
			want: []string{"CacheSize", "MemTableSize", "MaxOpenFiles"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			if !errors.Is(err, state.ErrInvalidOptions) {
				t.Fatalf("Validate = %v, want ErrInvalidOptions", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate = %q, does not mention %s", err, w)
				}
			}
			if _, err := state.OpenPebble(t.TempDir(), &tc.opts); !errors.Is(err, state.ErrInvalidOptions) {
				t.Fatalf("OpenPebble = %v, want ErrInvalidOptions", err)
			}
		})
	}
}

func TestPebbleSync(t *testing.T) {
	p, err := state.OpenPebble(t.TempDir(), &state.PebbleOptions{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
}

// fill writes n keys of about 1 KiB, enough to make Pebble flush sstables
// with the test's small memtables.
func fill(t *testing.T, b state.Backend, n int, tag string) {
	t.Helper()
	v := []byte(strings.Repeat("v", 1000))
	for i := range n {
		if err := b.Set(fmt.Appendf(nil, "key%05d", i), append([]byte(tag), v...)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRestorePebble(t *testing.T) {
	root := t.TempDir()
	p, err := state.OpenPebble(filepath.Join(root, "db"), &testPebbleOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fill(t, p, 3000, "old")
	// 3 MB through 1 MiB memtables makes sstables; wait for a flush, so
	// that the checkpoint holds some to hard-link.
	for deadline := time.Now().Add(time.Minute); p.Metrics().Keys <= 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no sstables a minute after writing 3 MB: %+v", p.Metrics())
		}
	}
	ckpt := filepath.Join(root, "ckpt")
	if err := p.Checkpoint(ckpt); err != nil {
		t.Fatal(err)
	}
	fill(t, p, 10, "new")

	restored := filepath.Join(root, "restored")
	if err := state.RestorePebble(ckpt, restored); err != nil {
		t.Fatalf("RestorePebble: %v", err)
	}
	// Sstables are hard-linked, the log and manifest copied.
	entries, err := os.ReadDir(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	ssts := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sst") {
			ssts++
		}
		a, err1 := os.Stat(filepath.Join(ckpt, e.Name()))
		b, err2 := os.Stat(filepath.Join(restored, e.Name()))
		if err1 != nil || err2 != nil {
			t.Fatalf("stat %s: %v %v", e.Name(), err1, err2)
		}
		linked := os.SameFile(a, b)
		if wantLinked := strings.HasSuffix(e.Name(), ".sst"); linked != wantLinked {
			t.Errorf("%s: hard-linked %v, want %v", e.Name(), linked, wantLinked)
		}
	}
	if ssts == 0 {
		t.Fatalf("checkpoint holds no sstables")
	}

	r, err := state.OpenPebble(restored, &testPebbleOptions)
	if err != nil {
		t.Fatal(err)
	}
	checkValue := func(b state.Backend, key, tag string) {
		t.Helper()
		v, ok, err := b.Get([]byte(key))
		if err != nil || !ok || !strings.HasPrefix(string(v), tag+"v") {
			t.Fatalf("Get(%s) = %.10q, %v, %v; want %s...", key, v, ok, err, tag)
		}
	}
	checkValue(r, "key00000", "old")
	checkValue(r, "key02999", "old")
	// Writing to the restored store leaves the checkpoint as it was.
	fill(t, r, 3000, "restored")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := state.OpenPebble(ckpt, &testPebbleOptions)
	if err != nil {
		t.Fatal(err)
	}
	checkValue(c, "key00000", "old")
	checkValue(c, "key02999", "old")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}

	// Restoring into an existing empty directory is fine.
	empty := t.TempDir()
	if err := state.RestorePebble(ckpt, empty); err != nil {
		t.Fatalf("RestorePebble into an empty directory: %v", err)
	}
	// A non-empty one is refused, and left alone.
	if err := state.RestorePebble(ckpt, restored); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("RestorePebble into a store = %v, want fs.ErrExist", err)
	}
	// So is a directory that is not a checkpoint.
	if err := state.RestorePebble(t.TempDir(), filepath.Join(root, "x")); err == nil {
		t.Fatalf("RestorePebble from an empty directory succeeded")
	}
	if _, err := os.Stat(filepath.Join(root, "x")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("failed RestorePebble left %s behind: %v", filepath.Join(root, "x"), err)
	}
}

func TestPebbleMetrics(t *testing.T) {
	p, err := state.OpenPebble(t.TempDir(), &testPebbleOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	fill(t, p, 3000, "")
	m := p.Metrics()
	if m.DiskBytes <= 0 || m.MemBytes <= 0 || m.Keys < 0 || m.Keys > 3000 {
		t.Fatalf("Metrics = %+v after writing 3000 keys of 1 KiB", m)
	}
	t.Logf("%+v", m)
}

func TestOpenPebbleErrors(t *testing.T) {
	if _, err := state.OpenPebble("", nil); err == nil || !strings.HasPrefix(err.Error(), "state: ") {
		t.Fatalf("OpenPebble(\"\") = %v", err)
	}
	dir := t.TempDir()
	p, err := state.OpenPebble(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// The directory is locked while open.
	if q, err := state.OpenPebble(dir, nil); err == nil {
		q.Close()
		t.Fatalf("opened one store twice")
	} else if !strings.HasPrefix(err.Error(), "state: ") {
		t.Fatalf("error %q lacks the package prefix", err)
	}
}

// A store whose disk has less free space than its reserve does not open;
// one whose free space falls below it fails before Pebble fills the disk:
// every operation returns ErrDiskFull and OnFailure is told once.
func TestPebbleDiskReserve(t *testing.T) {
	dir := t.TempDir()
	if _, err := state.OpenPebble(dir, &state.PebbleOptions{DiskReserve: 1 << 60}); !errors.Is(err, state.ErrDiskFull) || !strings.Contains(err.Error(), "MiB free, less than the") {
		t.Fatalf("open on a full disk: %v; want ErrDiskFull", err)
	}
	failures := make(chan error, 2)
	p, err := state.OpenPebble(dir, &state.PebbleOptions{OnFailure: func(err error) { failures <- err }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	state.SetDiskReserve(p, 1<<60) // the disk fills up
	if err := <-failures; !errors.Is(err, state.ErrDiskFull) {
		t.Fatalf("failure %v; want ErrDiskFull", err)
	}
	if err := p.Set([]byte("k"), []byte("v")); !errors.Is(err, state.ErrDiskFull) {
		t.Errorf("Set on a full disk: %v; want ErrDiskFull", err)
	}
	if _, _, err := p.Get([]byte("k")); !errors.Is(err, state.ErrDiskFull) {
		t.Errorf("Get on a full disk: %v; want ErrDiskFull", err)
	}
	select {
	case err := <-failures:
		t.Errorf("a second failure: %v", err)
	default:
	}

	q, err := state.OpenPebble(t.TempDir(), &state.PebbleOptions{DiskReserve: -1, OnFailure: func(err error) { t.Errorf("with the check off: %v", err) }})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if err := q.Set([]byte("k"), []byte("v")); err != nil {
		t.Error(err)
	}
}
