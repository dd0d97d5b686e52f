package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"reflect"
	"slices"

	"github.com/weir-dev/weir/io/codec"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/fsys"
	"github.com/weir-dev/weir/io/internal/filefmt"
)

type source struct {
	splits []connector.Split
}

// skipName says which names listings skip: hidden and temporary ones.
func skipName(name string) bool { return filefmt.Hidden(name) }

func openSource(ctx context.Context, spec connector.SourceSpec) (connector.Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fsy, p, err := resolve(spec.URI)
	if err != nil {
		return nil, err
	}
	if spec.Type == nil {
		return nil, fmt.Errorf("%s: %s: no Go type given: %w", prefix, p, connector.ErrUnsupported)
	}
	files, err := listFiles(fsy, path.Clean(p))
	if err != nil {
		return nil, err
	}
	q := spec.URI.Query()
	checked := map[codec.Format]bool{}
	s := &source{}
	for _, f := range files {
		format, err := filefmt.Detect(prefix, f, q)
		if err != nil {
			return nil, err
		}
		if !checked[format] {
			if err := filefmt.CheckType(prefix, f, format, spec.Type, false); err != nil {
				return nil, err
			}
			checked[format] = true
		}
		s.splits = append(s.splits, &split{fs: fsy, path: f, format: format, typ: spec.Type, columns: spec.Columns})
	}
	return s, nil
}

// listFiles resolves a source path to the sorted files it names: a file, a
// directory (its files, recursively) or a glob, whose wildcards do not
// match hidden or temporary names. A path that exists is never a glob.
func listFiles(f fsys.FS, p string) ([]string, error) {
	fi, err := f.Stat(p)
	switch {
	case err == nil && fi.IsDir():
		return walkDir(f, p)
	case err == nil:
		return []string{p}, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: %w", prefix, err)
	case !fsys.HasMeta(p):
		return nil, fmt.Errorf("%s: %s: no such file or directory: %w", prefix, where(f, p), connector.ErrNotFound)
	}
	matches, err := fsys.Glob(f, p, skipName)
	if err != nil {
		return nil, fmt.Errorf("%s: %v: %w", prefix, err, connector.ErrUnsupported)
	}
	var files []string
	for _, m := range matches {
		fi, err := f.Stat(m)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // a dangling link or a file removed meanwhile
			}
			return nil, fmt.Errorf("%s: %w", prefix, err)
		}
		if fi.IsDir() {
			sub, err := walkDir(f, m)
			if err != nil {
				return nil, err
			}
			files = append(files, sub...)
		} else if fi.Mode().IsRegular() {
			files = append(files, m)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no file matches %s: %w", prefix, where(f, p), connector.ErrNotFound)
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// walkDir lists the regular files below dir, skipping hidden and temporary
// names (and everything below a hidden directory). An empty directory has
// no files, which is not an error: it is an empty input.
func walkDir(f fsys.FS, dir string) ([]string, error) {
	files, err := fsys.Files(f, dir, skipName)
	if err != nil {
		return nil, fmt.Errorf("%s: listing %s: %w", prefix, where(f, dir), err)
	}
	return files, nil
}

func (s *source) Splits(ctx context.Context) ([]connector.Split, error) {
	return slices.Clone(s.splits), ctx.Err()
}

func (s *source) Bounded() bool { return true }

func (s *source) Close() error { return nil }

// split is one file.
type split struct {
	fs      fsys.FS
	path    string
	format  codec.Format
	typ     reflect.Type
	columns []string
}

func (s *split) ID() string { return where(s.fs, s.path) }

func (s *split) Open(ctx context.Context) (connector.Reader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := s.fs.Open(s.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w: %w", prefix, err, connector.ErrNotFound)
		}
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	var r connector.Reader
	switch s.format {
	case codec.Parquet:
		r, err = filefmt.NewParquetReader(prefix, s.ID(), f, f.Size(), f, s.typ, s.columns)
	default:
		r, err = filefmt.NewJSONLReader(prefix, s.ID(), f, f, s.typ)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}
