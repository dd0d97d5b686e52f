// Package fsys is Weir's one filesystem seam: the local disk (file://) and
// HDFS (hdfs://namenode:port/path) behind one small interface, FS, which the
// file connector's JSON Lines and Parquet sources and sinks use, and
// checkpoint storage. Resolve turns a URI into an FS and a path on it.
//
// Paths are slash-separated and absolute on HDFS; on the local disk they
// are the operating system's (relative paths allowed).
//
// HDFS configuration comes from HADOOP_CONF_DIR when it is set, as Hadoop
// users expect: an hdfs:/// URI (no namenode) uses its fs.defaultFS, and
// its namenode addresses serve every URI of that nameservice. An HDFS file
// being written is durable once Close returns; Close retries while the
// namenode says the last block is still replicating. Every HDFS call has
// a deadline (HDFSTimeoutEnv, default 30s): a namenode or datanode that
// stops answering fails the call with a *TimeoutError naming it and the
// call, instead of hanging the job.
//
// Dependency direction: fsys imports the standard library, internal/fsutil
// and colinmarc/hdfs; io/file and the runner import it.
package fsys

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"slices"
	"strings"
)

// FS is a file system. Names are paths on it.
type FS interface {
	// Open opens a file for reading.
	Open(name string) (File, error)
	// Create creates a file for writing, replacing any file there; its
	// directory must exist. What is written is durable once Close returns.
	Create(name string) (Writer, error)
	// Stat describes a file or directory. A missing one is an error
	// wrapping fs.ErrNotExist.
	Stat(name string) (fs.FileInfo, error)
	// ReadDir lists a directory, sorted by name.
	ReadDir(name string) ([]fs.FileInfo, error)
	// MkdirAll creates a directory and its parents as needed.
	MkdirAll(name string) error
	// Rename moves a file or directory, replacing a file at to.
	Rename(from, to string) error
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes a file or a directory and everything in it; a
	// missing one is not an error.
	RemoveAll(name string) error
	// SyncDir makes the creations and renames in a directory durable (a
	// directory fsync on the local disk; HDFS's namenode already does).
	SyncDir(name string) error
	// String names the file system in messages: "file://" or
	// "hdfs://host:port".
	String() string
}

// File is a file open for reading.
type File interface {
	io.Reader
	io.ReaderAt
	io.Closer
	// Size is the file's length in bytes.
	Size() int64
}

// Writer is a file being written.
type Writer interface {
	io.Writer
	// Close makes what was written durable and closes the file.
	Close() error
}

// ErrUnsupported is wrapped by the error for a URI of no file system here.
var ErrUnsupported = errors.New("fsys: unsupported URI")

// Resolve returns the file system and the path a file:// or hdfs:// URI
// names. For file://, a host other than "localhost" is the first element of
// a relative path (file://data/x.jsonl is data/x.jsonl), and a URI without
// scheme is a path.
func Resolve(u *url.URL) (FS, string, error) {
	switch u.Scheme {
	case "", "file":
		p, err := localPath(u)
		if err != nil {
			return nil, "", err
		}
		return Local, p, nil
	case "hdfs":
		c, err := hdfsFor(u.Host)
		if err != nil {
			return nil, "", err
		}
		p := u.Path
		if p == "" {
			p = "/"
		}
		if strings.HasSuffix(p, "/") && p != "/" {
			return c, path.Clean(p) + "/", nil
		}
		return c, path.Clean(p), nil
	}
	return nil, "", fmt.Errorf("%w: %s (want file:// or hdfs://)", ErrUnsupported, u.Redacted())
}

func localPath(u *url.URL) (string, error) {
	var p string
	switch {
	case u.Opaque != "":
		var err error
		if p, err = url.PathUnescape(u.Opaque); err != nil {
			return "", fmt.Errorf("fsys: bad path in %s: %v", u.Redacted(), err)
		}
	case u.Host != "" && u.Host != "localhost":
		p = u.Host + u.Path
	default:
		p = u.Path
	}
	if p == "" {
		return "", fmt.Errorf("fsys: no path in URI %q", u.Redacted())
	}
	return p, nil
}

// HasMeta reports whether p has glob metacharacters.
func HasMeta(p string) bool { return strings.ContainsAny(p, "*?[") }

// Glob returns the names matching pattern (path.Match syntax in each
// element), sorted. skip drops names in an element matched by a wildcard
// (hidden and temporary files, say).
func Glob(f FS, pattern string, skip func(name string) bool) ([]string, error) {
	pattern = path.Clean(pattern)
	var dirs []string
	elems := strings.Split(pattern, "/")
	switch {
	case strings.HasPrefix(pattern, "/"):
		dirs, elems = []string{"/"}, elems[1:]
	default:
		dirs = []string{""}
	}
	for i, el := range elems {
		var next []string
		last := i == len(elems)-1
		for _, d := range dirs {
			if !HasMeta(el) {
				p := join(d, el)
				if _, err := f.Stat(p); err == nil {
					next = append(next, p)
				} else if !errors.Is(err, fs.ErrNotExist) {
					return nil, err
				}
				continue
			}
			if _, err := path.Match(el, ""); err != nil {
				return nil, fmt.Errorf("fsys: bad glob %q: %v", pattern, err)
			}
			dir := d
			if dir == "" {
				dir = "."
			}
			infos, err := f.ReadDir(dir)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for _, fi := range infos {
				if ok, _ := path.Match(el, fi.Name()); !ok || skip != nil && skip(fi.Name()) {
					continue
				}
				if last || fi.IsDir() {
					next = append(next, join(d, fi.Name()))
				}
			}
		}
		dirs = next
	}
	slices.Sort(dirs)
	return slices.Compact(dirs), nil
}

func join(dir, name string) string {
	switch dir {
	case "":
		return name
	case "/":
		return "/" + name
	}
	return dir + "/" + name
}

// Files lists the regular files below dir, sorted, skipping names skip
// says (and everything below a skipped directory). An empty directory has
// no files, which is not an error.
func Files(f FS, dir string, skip func(name string) bool) ([]string, error) {
	var out []string
	var walk func(d string) error
	walk = func(d string) error {
		infos, err := f.ReadDir(d)
		if err != nil {
			return err
		}
		for _, fi := range infos {
			if skip != nil && skip(fi.Name()) {
				continue
			}
			p := join(strings.TrimSuffix(d, "/"), fi.Name())
			if d == "/" {
				p = "/" + fi.Name()
			}
			switch {
			case fi.IsDir():
				if err := walk(p); err != nil {
					return err
				}
			case fi.Mode().IsRegular():
				out = append(out, p)
			case fi.Mode()&fs.ModeSymlink != 0:
				// A link to a regular file counts; links to
				// directories are not followed.
				if st, err := f.Stat(p); err == nil && st.Mode().IsRegular() {
					out = append(out, p)
				}
			}
		}
		return nil
	}
	if err := walk(dir); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}

// WriteFile writes b to name durably.
func WriteFile(f FS, name string, b []byte) error {
	w, err := f.Create(name)
	if err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// ReadFile reads a whole file.
func ReadFile(f FS, name string) ([]byte, error) {
	r, err := f.Open(name)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}
