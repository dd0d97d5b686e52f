// Package filefmt holds what file-like connectors (io/file, later io/hdfs)
// share once they have a byte stream: choosing a file's format, readers that
// turn a JSON Lines stream or a Parquet file into connector.Records, the
// encoders behind their sinks, and the rule for which files a directory
// listing skips.
//
// Errors name the file (and line) and carry the prefix the connector gives
// (Options.Prefix, "file" say), so that they read as the connector's own.
//
// Dependency direction: filefmt imports io/connector and io/codec; the
// file-like connectors import filefmt. It never imports the runner.
package filefmt

import (
	"fmt"
	"io"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/weir-dev/weir/io/codec"
	"github.com/weir-dev/weir/io/connector"
)

// Detect returns the format of the file at path: the URI's ?format= option
// when set, else the format its extension implies. prefix starts error
// messages. A file of no known format is an error wrapping
// connector.ErrUnsupported that names it.
func Detect(prefix, path string, query url.Values) (codec.Format, error) {
	if name := query.Get("format"); name != "" {
		f, err := codec.ParseFormat(name)
		if err != nil {
			return codec.Unknown, fmt.Errorf("%s: %s: %w", prefix, path, err)
		}
		return f, nil
	}
	if f := codec.FormatOf(path); f != codec.Unknown {
		return f, nil
	}
	return codec.Unknown, fmt.Errorf("%s: %s: cannot tell the format from the name (use .jsonl or .parquet, or ?format=jsonl|parquet): %w",
		prefix, path, connector.ErrUnsupported)
}

// CheckType reports whether values of t can be read from and written to
// files of format f, with an error wrapping connector.ErrUnsupported.
func CheckType(prefix, path string, f codec.Format, t reflect.Type, sink bool) error {
	var err error
	switch {
	case t == nil:
		err = fmt.Errorf("no Go type given: %w", connector.ErrUnsupported)
	case f == codec.JSONL:
		_, err = codec.NewJSONDecoder(t)
	case f == codec.Parquet && sink:
		_, err = codec.ArrowSchema(t)
	case f == codec.Parquet:
		if t.Kind() != reflect.Struct && t != reflect.TypeFor[map[string]any]() {
			err = fmt.Errorf("Parquet rows are read as a struct or map[string]any, not %s: %w", t, connector.ErrUnsupported)
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %s: %w", prefix, path, err)
	}
	return nil
}

// Hidden reports whether a directory listing skips a file or directory of
// this base name: hidden names (".x", and "_x" as Hadoop and Spark write
// for metadata such as _SUCCESS) and temporary files ("x~", "x.tmp",
// "x.swp", "x.partial"). Sinks write their temporary files under hidden
// names, so a listing never sees output that is not committed.
func Hidden(name string) bool {
	if name == "" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") {
		return true
	}
	for _, suf := range []string{"~", ".tmp", ".swp", ".partial"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// Encoder writes values to a file being written.
type Encoder interface {
	Write(values []any) error
	// Close finishes the file (a Parquet footer); it does not close the
	// underlying writer.
	Close() error
}

// NewEncoder returns the encoder of values of t in format f onto w. For
// Parquet, query options compression (zstd, snappy, gzip, none; default
// zstd) and rowgroup (rows per row group; default 65536) apply.
func NewEncoder(prefix, path string, w io.Writer, f codec.Format, t reflect.Type, query url.Values) (Encoder, error) {
	var (
		enc Encoder
		err error
	)
	switch f {
	case codec.JSONL:
		enc, err = codec.NewJSONWriter(w, t)
	case codec.Parquet:
		opts := codec.ParquetWriterOptions{Compression: query.Get("compression")}
		if s := query.Get("rowgroup"); s != "" {
			n, perr := strconv.Atoi(s)
			if perr != nil || n <= 0 {
				return nil, fmt.Errorf("%s: %s: bad rowgroup=%q (want a positive number of rows): %w", prefix, path, s, connector.ErrUnsupported)
			}
			opts.RowGroupRows = n
		}
		enc, err = codec.NewParquetWriter(w, t, opts)
	default:
		err = fmt.Errorf("format %s: %w", f, connector.ErrUnsupported)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", prefix, path, err)
	}
	return enc, nil
}
