package file

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path"
	"strings"
	"sync"

	"github.com/weir-dev/weir/io/codec"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/fsys"
	"github.com/weir-dev/weir/io/internal/filefmt"
)

// partName is the file a sink writes in a directory (a URI ending in '/').
const partName = "part-00000"

// partStem starts the name of every part a task writes in a directory:
// "part-", or "part-<task>-" for one of several tasks (SinkSpec.Task).
func partStem(task string) string {
	if task == "" {
		return "part-"
	}
	return "part-" + task + "-"
}

// checkTask checks a SinkSpec.Task, which becomes part of file names in
// the sink at p.
func checkTask(p, task string) error {
	for _, c := range []byte(task) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%s: %s: bad task name %q: want letters, digits, '.', '_' and '-' only", prefix, p, task)
		}
	}
	return nil
}

// sink writes one file through a hidden temporary file.
type sink struct {
	fs   fsys.FS
	path string // the target
	tmp  string // the temporary file

	mu struct {
		sync.Mutex
		f    fsys.Writer // nil once committed or aborted
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
	fsy, p, err := resolve(spec.URI)
	if err != nil {
		return nil, err
	}
	if err := checkTask(where(fsy, p), spec.Task); err != nil {
		return nil, err
	}
	q := spec.URI.Query()
	var format codec.Format
	parts := strings.HasSuffix(p, "/")
	if !parts && spec.Task != "" {
		return nil, fmt.Errorf("%s: %s: task %q: a sink written by several tasks must be a directory (a URI ending in '/'): %w",
			prefix, where(fsy, path.Clean(p)), spec.Task, connector.ErrUnsupported)
	}
	if parts {
		format = codec.JSONL
		if name := q.Get("format"); name != "" {
			if format, err = codec.ParseFormat(name); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", prefix, p, err)
			}
		}
		p = path.Join(p, partStem(spec.Task)+"00000"+format.Ext())
	} else {
		p = path.Clean(p)
		if fi, err := fsy.Stat(p); err == nil && fi.IsDir() {
			return nil, fmt.Errorf("%s: %s is a directory (end the URI with / to write %s.jsonl in it): %w",
				prefix, where(fsy, p), partName, connector.ErrUnsupported)
		}
		if format, err = filefmt.Detect(prefix, p, q); err != nil {
			return nil, err
		}
	}
	if err := filefmt.CheckType(prefix, p, format, spec.Type, true); err != nil {
		return nil, err
	}
	if parts {
		ps := &partsSink{fs: fsy, dir: path.Dir(p), ext: format.Ext(), task: spec.Task, open: func() (*sink, error) { return openFile(fsy, p, format, spec, false) }}
		if err := fsy.MkdirAll(ps.dir); err != nil {
			return nil, fmt.Errorf("%s: creating %s: %w", prefix, where(fsy, ps.dir), err)
		}
		return ps, nil
	}
	log := spec.Logger
	if log == nil {
		log = slog.Default()
	}
	sweepTemps(fsy, p, log)
	return openFile(fsy, p, format, spec, true)
}

// openFile opens a sink of one file at p, written through a temporary file:
// one whose name carries this process's pid and host when owned (a
// single-file sink, see sweepTemps), else ".NAME.tmp-RAND" (the parts of a
// folder, which partsSink recovers by its own rules).
func openFile(fsy fsys.FS, p string, format codec.Format, spec connector.SinkSpec, owned bool) (*sink, error) {
	q := spec.URI.Query()
	var err error
	dir, base := path.Split(p)
	if dir == "" {
		dir = "."
	}
	if err := fsy.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("%s: creating the directory of %s: %w", prefix, where(fsy, p), err)
	}
	tmp := path.Join(dir, fmt.Sprintf(".%s.tmp-%d", base, rand.Uint64()))
	if owned {
		tmp = path.Join(dir, ownedTempName(base))
	}
	f, err := fsy.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("%s: creating a temporary file for %s: %w", prefix, where(fsy, p), err)
	}
	s := &sink{fs: fsy, path: p, tmp: tmp}
	s.mu.f = f
	s.mu.bw = bufio.NewWriterSize(f, 256<<10)
	s.mu.enc, err = filefmt.NewEncoder(prefix, where(fsy, p), s.mu.bw, format, spec.Type, q)
	if err != nil {
		f.Close()
		fsy.Remove(s.tmp)
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
		return fmt.Errorf("%s: %s: write after commit or abort", prefix, where(s.fs, s.path))
	}
	if s.mu.err != nil {
		return s.mu.err
	}
	if err := s.mu.enc.Write(values); err != nil {
		s.mu.err = fmt.Errorf("%s: writing %s: %w", prefix, where(s.fs, s.path), err)
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
		return fmt.Errorf("%s: %s: commit after commit or abort", prefix, where(s.fs, s.path))
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
	if err := s.fs.Rename(s.tmp, s.path); err != nil {
		s.fs.Remove(s.tmp)
		return fmt.Errorf("%s: committing %s: %w", prefix, where(s.fs, s.path), err)
	}
	if err := s.fs.SyncDir(path.Dir(s.path)); err != nil {
		return fmt.Errorf("%s: committing %s: %w", prefix, where(s.fs, s.path), err)
	}
	return nil
}

// finishLocked writes out the temporary file and closes it, durably.
func (s *sink) finishLocked() error {
	f := s.mu.f
	err := s.mu.enc.Close()
	if err == nil {
		err = s.mu.bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	s.mu.f = nil
	if err != nil {
		return fmt.Errorf("%s: finishing %s: %w", prefix, where(s.fs, s.path), err)
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
	if rerr := s.fs.Remove(s.tmp); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("%s: aborting %s: %w", prefix, where(s.fs, s.path), err)
	}
	return nil
}
