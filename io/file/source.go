package file

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/weir-dev/weir/io/codec"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/internal/filefmt"
)

type source struct {
	splits []connector.Split
}

func openSource(ctx context.Context, spec connector.SourceSpec) (connector.Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := Path(spec.URI)
	if err != nil {
		return nil, err
	}
	if spec.Type == nil {
		return nil, fmt.Errorf("%s: %s: no Go type given: %w", prefix, p, connector.ErrUnsupported)
	}
	files, err := listFiles(filepath.Clean(p))
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
		s.splits = append(s.splits, &split{path: f, format: format, typ: spec.Type, columns: spec.Columns})
	}
	return s, nil
}

// listFiles resolves a source path to the sorted files it names.
func listFiles(p string) ([]string, error) {
	fi, err := os.Stat(p)
	switch {
	case err == nil && fi.IsDir():
		return walkDir(p)
	case err == nil:
		return []string{p}, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: %w", prefix, err)
	case !hasMeta(p):
		return nil, fmt.Errorf("%s: %s: no such file or directory: %w", prefix, p, connector.ErrNotFound)
	}
	matches, err := filepath.Glob(p)
	if err != nil {
		return nil, fmt.Errorf("%s: bad glob %q: %v: %w", prefix, p, err, connector.ErrUnsupported)
	}
	var files []string
	for _, m := range matches {
		if hiddenMatch(p, m) {
			continue
		}
		fi, err := os.Stat(m)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // a dangling link or a file removed meanwhile
			}
			return nil, fmt.Errorf("%s: %w", prefix, err)
		}
		if fi.IsDir() {
			sub, err := walkDir(m)
			if err != nil {
				return nil, err
			}
			files = append(files, sub...)
		} else if fi.Mode().IsRegular() {
			files = append(files, m)
		}
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%s: no file matches %s: %w", prefix, p, connector.ErrNotFound)
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// hiddenMatch reports whether a glob matched a hidden or temporary name
// with a wildcard: "dir/*" does not match "dir/.tmp-x" nor "dir/.h/x" for
// "dir/*/x", but "dir/.h/*" matches what is in .h.
func hiddenMatch(pattern, match string) bool {
	pe := strings.Split(filepath.Clean(pattern), string(filepath.Separator))
	me := strings.Split(filepath.Clean(match), string(filepath.Separator))
	if len(pe) != len(me) {
		return filefmt.Hidden(filepath.Base(match))
	}
	for i := range pe {
		if hasMeta(pe[i]) && filefmt.Hidden(me[i]) {
			return true
		}
	}
	return false
}

// walkDir lists the regular files below dir, skipping hidden and temporary
// names (and everything below a hidden directory). An empty directory has
// no files, which is not an error: it is an empty input.
func walkDir(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		if filefmt.Hidden(d.Name()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case d.Type().IsRegular():
			files = append(files, p)
		case d.Type()&fs.ModeSymlink != 0:
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: listing %s: %w", prefix, dir, err)
	}
	slices.Sort(files)
	return files, nil
}

func (s *source) Splits(ctx context.Context) ([]connector.Split, error) {
	return slices.Clone(s.splits), ctx.Err()
}

func (s *source) Bounded() bool { return true }

func (s *source) Close() error { return nil }

// split is one file.
type split struct {
	path    string
	format  codec.Format
	typ     reflect.Type
	columns []string
}

func (s *split) ID() string { return s.path }

func (s *split) Open(ctx context.Context) (connector.Reader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(s.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w: %w", prefix, err, connector.ErrNotFound)
		}
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	var r connector.Reader
	switch s.format {
	case codec.Parquet:
		var fi os.FileInfo
		if fi, err = f.Stat(); err == nil {
			r, err = filefmt.NewParquetReader(prefix, s.path, f, fi.Size(), f, s.typ, s.columns)
		}
	default:
		r, err = filefmt.NewJSONLReader(prefix, s.path, f, f, s.typ)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}
