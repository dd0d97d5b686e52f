package state_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// reopenMem "reopens" a memory store through its checkpoint: Checkpoint,
// Close, LoadMem.
func reopenMem(t *testing.T, b state.Backend) state.Backend {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "snapshot")
	if err := b.Checkpoint(dir); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	m, err := state.LoadMem(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMem(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Backend { return state.NewMem() }, reopenMem)
}

func TestMemMetrics(t *testing.T) {
	m := state.NewMem()
	defer m.Close()
	for _, k := range []string{"a", "b", "c", "b"} {
		if err := m.Set([]byte(k), []byte("value")); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Delete([]byte("c")); err != nil {
		t.Fatal(err)
	}
	got := m.Metrics()
	if got.Keys != 2 || got.DiskBytes != 0 || got.MemBytes < 2*(1+5) {
		t.Fatalf("Metrics = %+v, want 2 keys of 6 bytes", got)
	}
	if err := m.DeleteRange(nil, nil); err != nil {
		t.Fatal(err)
	}
	if got := m.Metrics(); got.Keys != 0 || got.MemBytes != 0 {
		t.Fatalf("Metrics of an emptied store = %+v", got)
	}
}

func TestLoadMemCorrupt(t *testing.T) {
	m := state.NewMem()
	defer m.Close()
	for _, k := range []string{"a", "b", "c"} {
		if err := m.Set([]byte(k), []byte("value of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "ckpt")
	if err := m.Checkpoint(dir); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("checkpoint holds %v, %v; want one file", entries, err)
	}
	file := filepath.Join(dir, entries[0].Name())
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func([]byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)/2] ^= 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-5] }},
		{"empty", func(b []byte) []byte { return nil }},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"trailing garbage", func(b []byte) []byte { return append(b, 0) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			bad := tc.mutate(append([]byte(nil), good...))
			if err := os.WriteFile(filepath.Join(d, entries[0].Name()), bad, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := state.LoadMem(d); !errors.Is(err, state.ErrCorruptCheckpoint) {
				t.Fatalf("LoadMem = %v, want ErrCorruptCheckpoint", err)
			}
		})
	}
	if _, err := state.LoadMem(t.TempDir()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("LoadMem of an empty directory = %v, want fs.ErrNotExist", err)
	}
	l, err := state.LoadMem(dir)
	if err != nil {
		t.Fatalf("LoadMem of the intact checkpoint: %v", err)
	}
	defer l.Close()
	if got := l.Metrics().Keys; got != 3 {
		t.Fatalf("loaded %d keys, want 3", got)
	}
}
