package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/weir-dev/weir/internal/fsutil"
	"github.com/weir-dev/weir/io/codec"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/internal/filefmt"
)

// partName is the file a sink writes in a directory (a URI ending in '/').
const partName = "part-00000"

// sink writes one file through a hidden temporary file.
type sink struct {
	path string // the target
	tmp  string // the temporary file

	mu struct {
		sync.Mutex
		f    *os.File // nil once committed or aborted
		bw   *bufio.Writer
		enc  filefmt.Encoder
		err  error // sticky write error
		done bool  // committed or aborted
	}
}

func openSink(ctx context.Context, spec connector.SinkSpec) (connector.Sink, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := Path(spec.URI)
	if err != nil {
		return nil, err
	}
	q := spec.URI.Query()
	var format codec.Format
	parts := strings.HasSuffix(p, "/")
	if parts {
		format = codec.JSONL
		if name := q.Get("format"); name != "" {
			if format, err = codec.ParseFormat(name); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", prefix, p, err)
			}
		}
		p = filepath.Join(p, partName+format.Ext())
	} else {
		p = filepath.Clean(p)
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("%s: %s is a directory (end the URI with / to write %s.jsonl in it): %w",
				prefix, p, partName, connector.ErrUnsupported)
		}
		if format, err = filefmt.Detect(prefix, p, q); err != nil {
			return nil, err
		}
	}
	if err := filefmt.CheckType(prefix, p, format, spec.Type, true); err != nil {
		return nil, err
	}
	if parts {
		ps := &partsSink{dir: filepath.Dir(p), ext: format.Ext(), open: func() (*sink, error) { return openFile(p, format, spec) }}
		if err := os.MkdirAll(ps.dir, 0o755); err != nil {
			return nil, fmt.Errorf("%s: creating %s: %w", prefix, ps.dir, err)
		}
		return ps, nil
	}
	return openFile(p, format, spec)
}

// openFile opens a sink of one file at p, written through a temporary file.
func openFile(p string, format codec.Format, spec connector.SinkSpec) (*sink, error) {
	q := spec.URI.Query()
	var err error
	dir, base := filepath.Split(p)
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s: creating the directory of %s: %w", prefix, p, err)
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("%s: creating a temporary file for %s: %w", prefix, p, err)
	}
	s := &sink{path: p, tmp: f.Name()}
	s.mu.f = f
	s.mu.bw = bufio.NewWriterSize(f, 256<<10)
	s.mu.enc, err = filefmt.NewEncoder(prefix, p, s.mu.bw, format, spec.Type, q)
	if err != nil {
		f.Close()
		os.Remove(s.tmp)
		return nil, err
	}
	return s, nil
}

func (s *sink) Write(ctx context.Context, values []any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.done {
		return fmt.Errorf("%s: %s: write after commit or abort", prefix, s.path)
	}
	if s.mu.err != nil {
		return s.mu.err
	}
	if err := s.mu.enc.Write(values); err != nil {
		s.mu.err = fmt.Errorf("%s: writing %s: %w", prefix, s.path, err)
		return s.mu.err
	}
	return nil
}

// Commit finishes the file, fsyncs it, renames it into place and fsyncs its
// directory. On failure the temporary file is removed; either way the sink
// is closed.
func (s *sink) Commit(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.done {
		return fmt.Errorf("%s: %s: commit after commit or abort", prefix, s.path)
	}
	err := s.mu.err
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = s.finishLocked()
	}
	if err != nil {
		s.abortLocked()
		return err
	}
	s.mu.done, s.mu.f = true, nil
	if err := os.Rename(s.tmp, s.path); err != nil {
		os.Remove(s.tmp)
		return fmt.Errorf("%s: committing %s: %w", prefix, s.path, err)
	}
	if err := fsutil.SyncDir(filepath.Dir(s.path)); err != nil {
		return fmt.Errorf("%s: committing %s: %w", prefix, s.path, err)
	}
	return nil
}

// finishLocked writes out and closes the temporary file.
func (s *sink) finishLocked() error {
	f := s.mu.f
	err := s.mu.enc.Close()
	if err == nil {
		err = s.mu.bw.Flush()
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	s.mu.f = nil
	if err != nil {
		return fmt.Errorf("%s: finishing %s: %w", prefix, s.path, err)
	}
	return nil
}

func (s *sink) Abort() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.done {
		return nil
	}
	return s.abortLocked()
}

func (s *sink) abortLocked() error {
	s.mu.done = true
	var err error
	if s.mu.f != nil {
		err = s.mu.f.Close()
		s.mu.f = nil
	}
	if rerr := os.Remove(s.tmp); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("%s: aborting %s: %w", prefix, s.path, err)
	}
	return nil
}
