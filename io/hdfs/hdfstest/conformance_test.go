package hdfstest_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/user"
	"path"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"github.com/colinmarc/hdfs/v2/hadoopconf"

	"github.com/weir-dev/weir/io/hdfs/hdfstest"
)

// suiteBlockSize is the block size the suite writes its files with: 1 MiB,
// the smallest a real namenode accepts by default, so that a few MiB of
// data cross block boundaries.
const suiteBlockSize = 1 << 20

// target is what the conformance suite runs against.
type target struct {
	client *hdfs.Client
	// root is a directory the suite owns; it does not exist yet.
	root string
	// blockFiles returns the local files of a file's blocks, or is nil when
	// they are out of reach (a real cluster).
	blockFiles func(name string) ([]string, error)
}

// TestConformance runs the suite against the test server.
func TestConformance(t *testing.T) {
	s, err := hdfstest.Start(t.TempDir(), hdfstest.BlockSize(suiteBlockSize), hdfstest.ListingLimit(3), hdfstest.Logger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{s.Addr()}, User: "weir"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	runConformance(t, target{client: c, root: "/conformance", blockFiles: s.BlockFiles})
}

// TestConformanceCluster runs the suite against the real cluster that
// HADOOP_CONF_DIR describes (fs.defaultFS), as HADOOP_USER_NAME or the
// current user, in a fresh directory under /tmp that it removes. It is
// skipped without HADOOP_CONF_DIR.
func TestConformanceCluster(t *testing.T) {
	if os.Getenv("HADOOP_CONF_DIR") == "" {
		t.Skip("HADOOP_CONF_DIR is not set: no real cluster to run against")
	}
	conf, err := hadoopconf.LoadFromEnvironment()
	if err != nil {
		t.Fatal(err)
	}
	opts := hdfs.ClientOptionsFromConf(conf)
	if opts.KerberosClient != nil {
		t.Skip("the cluster asks for Kerberos, which this suite does not set up")
	}
	if opts.User = os.Getenv("HADOOP_USER_NAME"); opts.User == "" {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		opts.User = u.Username
	}
	c, err := hdfs.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	root := fmt.Sprintf("/tmp/weir-hdfstest-%d-%d", time.Now().UnixNano(), rand.Uint32())
	t.Cleanup(func() { c.RemoveAll(root) })
	runConformance(t, target{client: c, root: root})
}

// runConformance checks what Weir relies on an HDFS to do, through the real
// client. Its subtests share the target and run in order.
func runConformance(t *testing.T, tg target) {
	c, root := tg.client, tg.root
	p := func(elem ...string) string { return path.Join(append([]string{root}, elem...)...) }
	if err := c.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}

	t.Run("stat", func(t *testing.T) {
		fi, err := c.Stat(root)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.IsDir() || fi.Name() != path.Base(root) || fi.Mode()&os.ModeDir == 0 {
			t.Errorf("Stat(%s) = dir %v, name %q, mode %v", root, fi.IsDir(), fi.Name(), fi.Mode())
		}
		if fi, err := c.Stat("/"); err != nil || !fi.IsDir() {
			t.Errorf("Stat(/) = %v, %v; want a directory", fi, err)
		}
	})

	sizes := []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"one-byte", 1},
		{"one-chunk-and-a-bit", 700},
		{"one-block", suiteBlockSize},
		{"block-plus-one", suiteBlockSize + 1},
		{"blocks-and-partial", 3*suiteBlockSize + 12345},
	}
	contents := make(map[string][]byte)
	t.Run("write-read", func(t *testing.T) {
		for i, sz := range sizes {
			name := p(sz.name)
			data := pattern(uint64(i), sz.size)
			contents[name] = data
			writeFile(t, c, name, data)
			fi, err := c.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			if fi.IsDir() || fi.Size() != int64(sz.size) || fi.Name() != sz.name {
				t.Errorf("Stat(%s) = dir %v, size %d, name %q; want a file of %d bytes", name, fi.IsDir(), fi.Size(), fi.Name(), sz.size)
			}
			got, err := c.ReadFile(name)
			if err != nil {
				t.Fatalf("ReadFile(%s): %v", name, err)
			}
			if !bytes.Equal(got, data) {
				t.Errorf("ReadFile(%s): %d bytes, differing from the %d written at %d", name, len(got), len(data), firstDiff(got, data))
			}
		}
	})

	t.Run("read-at-offsets", func(t *testing.T) {
		name := p("blocks-and-partial")
		data := contents[name]
		if data == nil {
			t.Skip("write-read failed")
		}
		f, err := c.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		const bs = suiteBlockSize
		for _, r := range []struct{ off, n int }{
			{0, 1}, {1, 511}, {511, 2}, {512, 512}, {1000, 70000},
			{bs - 10, 20}, {bs - 1, 1}, {bs, 1}, {bs + 1, 100},
			{2*bs - 3, 6}, {bs / 2, 2 * bs}, {len(data) - 100, 100}, {len(data) - 1, 1},
		} {
			buf := make([]byte, r.n)
			n, err := f.ReadAt(buf, int64(r.off))
			if err != nil || n != r.n {
				t.Errorf("ReadAt(%d bytes at %d) = %d, %v", r.n, r.off, n, err)
				continue
			}
			if !bytes.Equal(buf, data[r.off:r.off+r.n]) {
				t.Errorf("ReadAt(%d bytes at %d): differs at %d", r.n, r.off, r.off+firstDiff(buf, data[r.off:]))
			}
		}
		// Past the end: what is there, and io.EOF.
		buf := make([]byte, 50)
		if n, err := f.ReadAt(buf, int64(len(data)-20)); n != 20 || err != io.EOF || !bytes.Equal(buf[:20], data[len(data)-20:]) {
			t.Errorf("ReadAt(50 bytes at size-20) = %d, %v; want 20, EOF", n, err)
		}
		// Seek, then read on across a block boundary.
		if _, err := f.Seek(bs-5, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf = make([]byte, 10)
		if _, err := io.ReadFull(f, buf); err != nil || !bytes.Equal(buf, data[bs-5:bs+5]) {
			t.Errorf("Seek(bs-5) + ReadFull(10) = %v; bytes equal: %v", err, bytes.Equal(buf, data[bs-5:bs+5]))
		}
	})

	t.Run("create-existing", func(t *testing.T) {
		_, err := c.Create(p("one-byte"))
		if !errors.Is(err, os.ErrExist) {
			t.Errorf("Create(existing file) = %v, want os.ErrExist", err)
		}
		_, err = c.Create(p("no-such-dir", "f"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Create(in a missing directory) = %v, want os.ErrNotExist", err)
		}
	})

	t.Run("mkdir", func(t *testing.T) {
		deep := p("a", "b", "c")
		if err := c.MkdirAll(deep, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := c.MkdirAll(deep, 0o755); err != nil {
			t.Errorf("MkdirAll(existing) = %v", err)
		}
		for _, d := range []string{p("a"), p("a", "b"), deep} {
			if fi, err := c.Stat(d); err != nil || !fi.IsDir() {
				t.Errorf("Stat(%s) = %v, %v; want a directory", d, fi, err)
			}
		}
		if err := c.Mkdir(p("a"), 0o755); !errors.Is(err, os.ErrExist) {
			t.Errorf("Mkdir(existing) = %v, want os.ErrExist", err)
		}
		if err := c.Mkdir(p("x", "y"), 0o755); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Mkdir(in a missing directory) = %v, want os.ErrNotExist", err)
		}
		if err := c.MkdirAll(p("one-byte"), 0o755); !errors.Is(err, os.ErrExist) {
			t.Errorf("MkdirAll(a file) = %v, want os.ErrExist", err)
		}
	})

	t.Run("list", func(t *testing.T) {
		dir := p("list")
		if err := c.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		var want []string
		for i := range 8 { // more than one page of the test server's listings
			name := fmt.Sprintf("f%02d", 7-i)
			writeFile(t, c, path.Join(dir, name), pattern(uint64(100+i), i*10))
			want = append(want, name)
		}
		if err := c.Mkdir(path.Join(dir, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		want = append(want, "sub")
		slices.Sort(want)
		fis, err := c.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, fi := range fis {
			got = append(got, fi.Name())
			if fi.Name() == "sub" != fi.IsDir() {
				t.Errorf("%s: IsDir %v", fi.Name(), fi.IsDir())
			}
			if fi.Name() == "f03" && fi.Size() != 40 {
				t.Errorf("f03: size %d in the listing, want 40", fi.Size())
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("ReadDir(%s) = %v, want %v", dir, got, want)
		}
		// Reading a directory a few entries at a time.
		f, err := c.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		got = nil
		for {
			names, err := f.Readdirnames(2)
			if err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			got = append(got, names...)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Readdirnames(2) until EOF = %v, want %v", got, want)
		}
	})

	t.Run("rename", func(t *testing.T) {
		// To a new name.
		src, dst := p("one-chunk-and-a-bit"), p("renamed")
		if err := c.Rename(src, dst); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Stat(src); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Stat(renamed source) = %v, want os.ErrNotExist", err)
		}
		checkContent(t, c, dst, contents[src])
		// Over an existing file, which it replaces.
		if err := c.Rename(p("one-byte"), dst); err != nil {
			t.Fatal(err)
		}
		checkContent(t, c, dst, contents[p("one-byte")])
		// A directory, with what is in it.
		if err := c.Rename(p("a"), p("a2")); err != nil {
			t.Fatal(err)
		}
		if fi, err := c.Stat(p("a2", "b", "c")); err != nil || !fi.IsDir() {
			t.Errorf("Stat(a2/b/c) after renaming a = %v, %v", fi, err)
		}
		// Into another directory.
		if err := c.Rename(dst, p("a2", "b", "moved")); err != nil {
			t.Fatal(err)
		}
		checkContent(t, c, p("a2", "b", "moved"), contents[p("one-byte")])
		// What cannot be renamed.
		if err := c.Rename(p("missing"), p("anything")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Rename(missing) = %v, want os.ErrNotExist", err)
		}
		if err := c.Rename(p("empty"), p("no-such-dir", "x")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Rename(into a missing directory) = %v, want os.ErrNotExist", err)
		}
	})

	t.Run("remove", func(t *testing.T) {
		if err := c.Remove(p("empty")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Stat(p("empty")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Stat(removed) = %v, want os.ErrNotExist", err)
		}
		if err := c.Remove(p("a2")); !errors.Is(err, syscall.ENOTEMPTY) {
			t.Errorf("Remove(non-empty directory) = %v, want ENOTEMPTY", err)
		}
		if err := c.RemoveAll(p("a2")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Stat(p("a2", "b", "moved")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Stat(in a removed tree) = %v, want os.ErrNotExist", err)
		}
		if err := c.Remove(p("empty")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Remove(missing) = %v, want os.ErrNotExist", err)
		}
		if err := c.RemoveAll(p("empty")); err != nil {
			t.Errorf("RemoveAll(missing) = %v, want nil", err)
		}
		// A name freed by a removal can be written again.
		writeFile(t, c, p("empty"), []byte("again"))
		checkContent(t, c, p("empty"), []byte("again"))
	})

	t.Run("missing", func(t *testing.T) {
		m := p("no", "such", "file")
		if _, err := c.Stat(m); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Stat = %v, want os.ErrNotExist", err)
		}
		if _, err := c.Open(m); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Open = %v, want os.ErrNotExist", err)
		}
		if _, err := c.ReadFile(m); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ReadFile = %v, want os.ErrNotExist", err)
		}
		if _, err := c.ReadDir(m); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ReadDir = %v, want os.ErrNotExist", err)
		}
		if _, err := c.GetContentSummary(m); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("GetContentSummary = %v, want os.ErrNotExist", err)
		}
	})

	t.Run("attributes", func(t *testing.T) {
		name := p("block-plus-one")
		if err := c.Chmod(name, 0o600); err != nil {
			t.Fatal(err)
		}
		mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
		if err := c.Chtimes(name, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		fi, err := c.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 || !fi.ModTime().Equal(mtime) {
			t.Errorf("after Chmod and Chtimes: mode %v, mtime %v", fi.Mode(), fi.ModTime())
		}
		cs, err := c.GetContentSummary(p("list"))
		if err != nil {
			t.Fatal(err)
		}
		if cs.FileCount() != 8 || cs.DirectoryCount() != 2 || cs.Size() != 280 {
			t.Errorf("GetContentSummary(list) = %d files, %d directories, %d bytes; want 8, 2, 280", cs.FileCount(), cs.DirectoryCount(), cs.Size())
		}
		if _, err := c.StatFs(); err != nil {
			t.Errorf("StatFs: %v", err)
		}
	})

	t.Run("file-checksum", func(t *testing.T) {
		data := contents[p("blocks-and-partial")]
		writeFile(t, c, p("copy"), data)
		sum := func(name string) []byte {
			f, err := c.Open(name)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			s, err := f.Checksum()
			if err != nil {
				t.Fatalf("Checksum(%s): %v", name, err)
			}
			return s
		}
		a, b, other := sum(p("blocks-and-partial")), sum(p("copy")), sum(p("block-plus-one"))
		if !bytes.Equal(a, b) || bytes.Equal(a, other) {
			t.Errorf("Checksum: copies %x and %x, another file %x", a, b, other)
		}
	})

	t.Run("corrupt-block", func(t *testing.T) {
		if tg.blockFiles == nil {
			t.Skip("the block files of a real cluster are out of reach")
		}
		name := p("corrupt")
		data := pattern(7, 2*suiteBlockSize+100)
		writeFile(t, c, name, data)
		files, err := tg.blockFiles(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(files) != 3 {
			t.Fatalf("%s: %d block files, want 3", name, len(files))
		}
		// Flip a byte in the middle of the second block, on disk.
		f, err := os.OpenFile(files[1], os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, 1000); err != nil {
			t.Fatal(err)
		}
		b[0] ^= 0xff
		if _, err := f.WriteAt(b, 1000); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if _, err := c.ReadFile(name); err == nil {
			t.Errorf("ReadFile of a file with a corrupted block succeeded")
		} else {
			t.Logf("ReadFile of a corrupted block: %v", err)
		}
		// The blocks that are intact still read.
		r, err := c.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		buf := make([]byte, 1000)
		if _, err := r.ReadAt(buf, 2*suiteBlockSize); err != nil && err != io.EOF || !bytes.Equal(buf[:100], data[2*suiteBlockSize:]) {
			t.Errorf("ReadAt in the intact third block: %v", err)
		}
	})
}

// testLogger logs to t, so that a failing test shows what the server saw.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// pattern returns n pseudo-random bytes, the same for the same seed.
func pattern(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeFile writes data to a new file, in writes of an odd size so that
// they straddle the client's packets and chunks.
func writeFile(t *testing.T, c *hdfs.Client, name string, data []byte) {
	t.Helper()
	writeFileBlocks(t, c, name, data, suiteBlockSize)
}

// writeFileBlocks is writeFile with the given block size.
func writeFileBlocks(t *testing.T, c *hdfs.Client, name string, data []byte, blockSize int64) {
	t.Helper()
	f, err := c.CreateFile(name, 1, blockSize, 0o644)
	if err != nil {
		t.Fatalf("CreateFile(%s): %v", name, err)
	}
	for rest := data; len(rest) > 0; {
		k := min(len(rest), 7919)
		if _, err := f.Write(rest[:k]); err != nil {
			t.Fatalf("Write(%s): %v", name, err)
		}
		rest = rest[k:]
	}
	for i := 0; ; i++ {
		err := f.Close()
		if err == nil {
			return
		}
		if !hdfs.IsErrReplicating(err) || i == 50 {
			t.Fatalf("Close(%s): %v", name, err)
		}
		time.Sleep(100 * time.Millisecond) // the namenode waits for the datanode to report the last block
	}
}

func checkContent(t *testing.T, c *hdfs.Client, name string, want []byte) {
	t.Helper()
	got, err := c.ReadFile(name)
	if err != nil {
		t.Errorf("ReadFile(%s): %v", name, err)
	} else if !bytes.Equal(got, want) {
		t.Errorf("ReadFile(%s): %d bytes, want %d; first difference at %d", name, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
