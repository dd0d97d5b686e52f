package fsys

import (
	"io/fs"
	"os"

	"github.com/weir-dev/weir/internal/fsutil"
)

// Local is the local disk.
var Local FS = localFS{}

type localFS struct{}

func (localFS) String() string { return "file://" }

func (localFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return localFile{f, fi.Size()}, nil
}

type localFile struct {
	*os.File
	size int64
}

func (f localFile) Size() int64 { return f.size }

func (localFS) Create(name string) (Writer, error) {
	f, err := os.Create(name)
	if err != nil {
		return nil, err
	}
	return localWriter{f}, nil
}

type localWriter struct{ *os.File }

// Close fsyncs the file and closes it.
func (w localWriter) Close() error {
	err := w.File.Sync()
	if cerr := w.File.Close(); err == nil {
		err = cerr
	}
	return err
}

func (localFS) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }

func (localFS) ReadDir(name string) ([]fs.FileInfo, error) {
	entries, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	out := make([]fs.FileInfo, 0, len(entries))
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, fi)
	}
	return out, nil
}

func (localFS) MkdirAll(name string) error   { return os.MkdirAll(name, 0o755) }
func (localFS) Rename(from, to string) error { return os.Rename(from, to) }
func (localFS) Remove(name string) error     { return os.Remove(name) }
func (localFS) RemoveAll(name string) error  { return os.RemoveAll(name) }
func (localFS) SyncDir(name string) error    { return fsutil.SyncDir(name) }
