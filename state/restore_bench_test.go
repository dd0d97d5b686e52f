package state_test

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/weir-dev/weir/state"
)

// restoreBench is a Pebble store of WEIR_BENCH_STATE_MB (default 1024) MiB
// of keyed state and a checkpoint of it, built once per process.
var restoreBench struct {
	once            sync.Once
	root, dir, ckpt string
	mb              int
	err             error
}

func restoreSetup(b *testing.B) {
	restoreBench.once.Do(func() {
		mb := 1024
		if s := os.Getenv("WEIR_BENCH_STATE_MB"); s != "" {
			mb, _ = strconv.Atoi(s)
		}
		restoreBench.mb = mb
		root, err := os.MkdirTemp("", "weir-restore-bench-")
		if err != nil {
			restoreBench.err = err
			return
		}
		restoreBench.root = root
		restoreBench.dir = filepath.Join(root, "live")
		restoreBench.ckpt = filepath.Join(root, "checkpoint")
		db, err := state.OpenPebble(restoreBench.dir, nil)
		if err != nil {
			restoreBench.err = err
			return
		}
		// 1 KiB values under cell keys of 128 key groups: incompressible,
		// so the bytes on disk are about the bytes written.
		rng := rand.New(rand.NewPCG(1, 1))
		val := make([]byte, 1024)
		n := mb << 10
		for i := 0; i < n; i++ {
			for j := 0; j < len(val); j += 8 {
				binary.LittleEndian.PutUint64(val[j:], rng.Uint64())
			}
			key := binary.BigEndian.AppendUint64(nil, uint64(i))
			k := state.AppendCell(nil, state.Cell{Op: 1, KG: state.KeyGroupOf(key, 128), Key: key, Name: "v"})
			if err := db.Set(k, val); err != nil {
				restoreBench.err = err
				return
			}
		}
		if err := db.Checkpoint(restoreBench.ckpt); err == nil {
			err = db.Close()
		}
		restoreBench.err = err
	})
	if restoreBench.err != nil {
		b.Fatal(restoreBench.err)
	}
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			n += info.Size()
		}
		return nil
	})
	return n
}

// scanAll reads every key, so that a restore is measured up to usable,
// readable state.
func scanAll(b *testing.B, db state.Backend) int64 {
	it, err := db.NewIter([]byte{0}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var n int64
	for ok := it.First(); ok; ok = it.Next() {
		n += int64(len(it.Value()))
	}
	if err := it.Close(); err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkRestore measures getting a task's keyed state back after a
// restart, three ways: reopening the local directory it left (host
// affinity), restoring the checkpoint on the same disk (RestorePebble hard
// links the tables), and copying the checkpoint byte by byte (what a
// restore from another machine's storage costs). Each ends by reading every
// value. Run it with, for example:
//
//	go test ./state -run XXX -bench Restore -benchtime 1x
func BenchmarkRestore(b *testing.B) {
	restoreSetup(b)
	b.Cleanup(func() {
		os.RemoveAll(restoreBench.root)
		restoreBench.once = sync.Once{}
	})
	size := dirBytes(restoreBench.ckpt)
	report := func(b *testing.B) {
		b.ReportMetric(float64(size)/(1<<20)/(b.Elapsed().Seconds()/float64(b.N)), "MB/s")
		b.ReportMetric(float64(size)/(1<<20), "MB")
	}
	// restore is one way of getting the state back: it returns the
	// directory to open.
	cases := []struct {
		name    string
		restore func(b *testing.B) (string, error)
	}{
		{"local-dir", func(*testing.B) (string, error) { return restoreBench.dir, nil }},
		{"checkpoint-same-disk", func(b *testing.B) (string, error) {
			dst := filepath.Join(b.TempDir(), "restored")
			return dst, state.RestorePebble(restoreBench.ckpt, dst)
		}},
		{"checkpoint-copied", func(b *testing.B) (string, error) {
			dst := filepath.Join(b.TempDir(), "copied")
			return dst, copyTree(restoreBench.ckpt, dst)
		}},
		{"changes-loaded", func(b *testing.B) (string, error) {
			// The Weir side of a restore from a changelog: the changes,
			// in no key order, through a Loader. The reading is
			// io/kafka's BenchmarkChangelogRestore.
			b.StopTimer()
			changes := restoreChanges(b)
			dst := filepath.Join(b.TempDir(), "loaded")
			db, err := state.OpenPebble(dst, nil)
			if err != nil {
				return "", err
			}
			b.StartTimer()
			l := state.NewLoader(db)
			for _, c := range changes {
				if err := l.Apply(c[0], c[1]); err != nil {
					return "", err
				}
			}
			if err := l.Close(); err != nil {
				return "", err
			}
			return dst, db.Close()
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				dir, err := c.restore(b)
				if err != nil {
					b.Fatal(err)
				}
				db, err := state.OpenPebble(dir, nil)
				if err != nil {
					b.Fatal(err)
				}
				scanAll(b, db)
				db.Close()
			}
			report(b)
		})
	}
}

// restoreChanges returns the keys and values of the restore benchmark's
// store in random order, as changes arrive from a changelog's partitions
// read at once.
func restoreChanges(b *testing.B) [][2][]byte {
	db, err := state.OpenPebble(restoreBench.dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter([]byte{0}, nil)
	if err != nil {
		b.Fatal(err)
	}
	var out [][2][]byte
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, [2][]byte{append([]byte(nil), it.Key()...), append([]byte(nil), it.Value()...)})
	}
	it.Close()
	rng := rand.New(rand.NewPCG(2, 2))
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func copyTree(src, dst string) error {
	return filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		if err := out.Sync(); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
