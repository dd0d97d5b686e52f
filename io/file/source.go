package file

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weir-dev/weir/io/codec"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/fsys"
	"github.com/weir-dev/weir/io/internal/filefmt"
	"github.com/weir-dev/weir/windowing"
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
	q := spec.URI.Query()
	emptyOK, err := emptyOption(where(fsy, p), q)
	if err != nil {
		return nil, err
	}
	files, err := listFiles(fsy, path.Clean(p), emptyOK)
	if err != nil {
		return nil, err
	}
	timeCol := q.Get("time")
	checked := map[codec.Format]bool{}
	s := &source{}
	var splits []*split
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
		sp := &split{fs: fsy, path: f, format: format, typ: spec.Type, columns: spec.Columns}
		if lo, hi, ok := partitionRange(f); ok {
			if spec.Range != nil && !spec.Range.Overlaps(lo, hi) {
				continue // a date=/hour= folder outside the range
			}
			sp.bounded, sp.min, sp.max = true, lo, hi
		}
		if format != codec.Parquet {
			if timeCol != "" {
				return nil, fmt.Errorf("%s: %s: ?time= prunes Parquet row groups; this file is %s: %w", prefix, where(fsy, f), format, connector.ErrUnsupported)
			}
			splits = append(splits, sp)
			continue
		}
		groups, err := rowGroups(fsy, f, timeCol)
		if err != nil {
			return nil, err
		}
		if len(groups) <= 1 {
			sp.rowGroup = -1 // the whole file, even one with no rows
		}
		for _, g := range groups {
			rs := *sp
			if len(groups) > 1 {
				rs.rowGroup = g.Index
			}
			if g.HasTime {
				lo, hi := windowing.Time(g.MinTime), windowing.Time(g.MaxTime)
				if spec.Range != nil && !spec.Range.Overlaps(lo, hi) {
					continue // skipped by its statistics
				}
				rs.bounded, rs.min, rs.max = true, lo, hi
			}
			splits = append(splits, &rs)
		}
		if len(groups) == 0 {
			splits = append(splits, sp)
		}
	}
	// With every split's times known, read them in time order: a backfill
	// then fires its windows as it goes.
	if len(splits) > 0 && !slices.ContainsFunc(splits, func(sp *split) bool { return !sp.bounded }) {
		slices.SortStableFunc(splits, func(a, b *split) int { return cmp.Compare(a.min, b.min) })
	}
	for _, sp := range splits {
		if sp.bounded {
			s.splits = append(s.splits, boundedSplit{sp})
		} else {
			s.splits = append(s.splits, sp)
		}
	}
	return s, nil
}

// rowGroups reads a Parquet file's footer.
func rowGroups(fsy fsys.FS, p, timeCol string) ([]codec.ParquetRowGroup, error) {
	f, err := fsy.Open(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	defer f.Close()
	groups, err := codec.ParquetRowGroups(f, f.Size(), where(fsy, p), timeCol)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	return groups, nil
}

// partitionRange returns the event times a Hive-style partition path
// covers: a date=YYYY-MM-DD (or dt=) folder is that day (UTC), with an
// hour=HH folder below it that hour.
func partitionRange(p string) (lo, hi windowing.Time, ok bool) {
	var day time.Time
	hour := -1
	for _, el := range strings.Split(p, "/") {
		k, v, found := strings.Cut(el, "=")
		if !found {
			continue
		}
		switch k {
		case "date", "dt":
			t, err := time.Parse(time.DateOnly, v)
			if err != nil {
				return 0, 0, false
			}
			day = t
		case "hour":
			h, err := strconv.Atoi(v)
			if err != nil || h < 0 || h > 23 {
				return 0, 0, false
			}
			hour = h
		}
	}
	if day.IsZero() {
		return 0, 0, false
	}
	start, span := day, 24*time.Hour
	if hour >= 0 {
		start, span = day.Add(time.Duration(hour)*time.Hour), time.Hour
	}
	return windowing.FromTime(start), windowing.FromTime(start.Add(span)) - 1, true
}

// emptyOption reads a source URI's ?empty= option: "ok" lets a directory
// with no data files, or a glob that matches none, be an empty input.
func emptyOption(at string, q url.Values) (bool, error) {
	switch v := q.Get("empty"); v {
	case "":
		return false, nil
	case "ok":
		return true, nil
	default:
		return false, fmt.Errorf("%s: %s: bad empty=%q (want empty=ok, to read no files as an empty input): %w", prefix, at, v, connector.ErrUnsupported)
	}
}

// listFiles resolves a source path to the sorted files it names: a file, a
// directory (its files, recursively) or a glob, whose wildcards do not
// match hidden or temporary names. A path that exists is never a glob.
//
// A directory with no data files (none at all, or only hidden, temporary
// or "_" names) and a glob that matches none are errors wrapping
// connector.ErrNotFound that name them, unless emptyOK: a backfill of a
// folder a job upstream failed to fill would otherwise succeed with no
// output and no word.
func listFiles(f fsys.FS, p string, emptyOK bool) ([]string, error) {
	fi, err := f.Stat(p)
	switch {
	case err == nil && fi.IsDir():
		files, err := walkDir(f, p)
		if err == nil && len(files) == 0 && !emptyOK {
			err = fmt.Errorf("%s: %s: the directory holds no data files (names starting with '.' or '_' and temporary ones are skipped; add ?empty=ok to read it as an empty input): %w",
				prefix, where(f, p), connector.ErrNotFound)
		}
		return files, err
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
		if emptyOK {
			return nil, nil
		}
		return nil, fmt.Errorf("%s: no file matches %s (add ?empty=ok to read none as an empty input): %w", prefix, where(f, p), connector.ErrNotFound)
	}
	slices.Sort(files)
	return slices.Compact(files), nil
}

// walkDir lists the regular files below dir, skipping hidden and temporary
// names (and everything below a hidden directory).
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

// split is one file, or one row group of a Parquet file.
type split struct {
	fs       fsys.FS
	path     string
	rowGroup int // Parquet: the row group it reads; -1: the whole file
	// bounded: min and max bound the split's event times.
	bounded  bool
	min, max windowing.Time
	format   codec.Format
	typ      reflect.Type
	columns  []string
}

func (s *split) ID() string {
	if s.format == codec.Parquet && s.rowGroup >= 0 {
		return where(s.fs, s.path) + "#rowgroup=" + strconv.Itoa(s.rowGroup)
	}
	return where(s.fs, s.path)
}

// boundedSplit is a split whose event times are known.
type boundedSplit struct{ *split }

func (b boundedSplit) EventTimeBounds() (windowing.Time, windowing.Time) { return b.min, b.max }

// OpenAt opens the split and skips the records before pos, a count of
// records read (Position): files are read again from their start, which is
// what makes a file split resumable for a stream run's checkpoints (a
// backfill-then-stream job's history).
func (s *split) OpenAt(ctx context.Context, pos []byte) (connector.Reader, error) {
	skip, err := strconv.ParseInt(string(pos), 10, 64)
	if err != nil || skip < 0 {
		return nil, fmt.Errorf("%s: %s: bad position %q", prefix, s.ID(), pos)
	}
	r, err := s.Open(ctx)
	if err != nil {
		return nil, err
	}
	cr := r.(*countingReader)
	buf := make([]connector.Record, 512)
	for cr.n < skip {
		_, err := cr.Read(ctx, buf[:min(int64(len(buf)), skip-cr.n)])
		if err != nil {
			cr.Close()
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%s: %s: position %d is past the end (%d records): the file changed", prefix, s.ID(), skip, cr.n)
			}
			return nil, err
		}
	}
	return cr, nil
}

// countingReader counts the records it returns: its Position.
type countingReader struct {
	connector.Reader
	n int64
}

func (r *countingReader) Read(ctx context.Context, buf []connector.Record) (int, error) {
	n, err := r.Reader.Read(ctx, buf)
	r.n += int64(n)
	return n, err
}

func (r *countingReader) Position() []byte { return strconv.AppendInt(nil, r.n, 10) }

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
		var groups []int
		if s.rowGroup >= 0 {
			groups = []int{s.rowGroup}
		}
		r, err = filefmt.NewParquetReader(prefix, where(s.fs, s.path), f, f.Size(), f, s.typ, s.columns, groups)
	default:
		r, err = filefmt.NewJSONLReader(prefix, s.ID(), f, f, s.typ)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return &countingReader{Reader: r}, nil
}
