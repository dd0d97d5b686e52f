// Package file is the file:// connector: it reads JSON Lines and Parquet
// files on the local file system as bounded sources, and writes them as
// sinks that become visible atomically on Commit.
//
// URIs:
//
//	file:///abs/path/events.jsonl   an absolute path
//	file://data/events.jsonl        a relative path: a host other than
//	                                "localhost" is its first element
//	data/events.jsonl               a bare path (see connector.ParseURI)
//
// A source URI names a file, a directory (every regular file below it whose
// name is not hidden or temporary, see filefmt.Hidden; symbolic links to
// directories are not followed) or a glob with filepath.Match syntax ('*',
// '?', '[...]'; "**" is '*' twice, not a recursive match). A glob's '?'
// must be written %3F in a URI, where it would begin the query. A path that
// exists is never taken as a glob. Each file is one split, whose ID is its
// path.
//
// The format comes from the extension (.jsonl, .ndjson, .json: JSON Lines;
// .parquet, .pq: Parquet) unless ?format=jsonl|parquet says otherwise.
// Parquet sinks also take ?compression=zstd|snappy|gzip|none (default zstd)
// and ?rowgroup=ROWS (default 65536).
//
// A sink writes to a hidden temporary file beside its target
// (".counts.jsonl.tmp-123"), creating directories as needed; Commit flushes,
// fsyncs and renames it into place, replacing any file there, so that a run
// that dies never leaves output that looks complete. A sink URI ending in
// '/' names a directory, in which the sink writes part-00000.jsonl (or
// .parquet with ?format=parquet).
//
// Dependency direction: file imports io/connector, io/codec and
// io/internal/filefmt, and registers itself under "file" in init; the runner
// imports it for the side effect.
package file

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/weir-dev/weir/io/connector"
)

// Scheme is the URI scheme of this connector.
const Scheme = "file"

// prefix starts every error of the package.
const prefix = "file"

func init() { connector.Register(Scheme, fileConnector{}) }

type fileConnector struct{}

// Path returns the local path a file:// URI names (see the package doc).
func Path(u *url.URL) (string, error) {
	if u.Scheme != "" && u.Scheme != Scheme {
		return "", fmt.Errorf("%s: %s is not a file:// URI: %w", prefix, u.Redacted(), connector.ErrUnsupported)
	}
	var p string
	switch {
	case u.Opaque != "":
		var err error
		if p, err = url.PathUnescape(u.Opaque); err != nil {
			return "", fmt.Errorf("%s: bad path in %s: %v", prefix, u.Redacted(), err)
		}
	case u.Host != "" && u.Host != "localhost":
		p = u.Host + u.Path
	default:
		p = u.Path
	}
	if p == "" {
		return "", fmt.Errorf("%s: no path in URI %q", prefix, u.Redacted())
	}
	return p, nil
}

func (fileConnector) OpenSource(ctx context.Context, spec connector.SourceSpec) (connector.Source, error) {
	return openSource(ctx, spec)
}

func (fileConnector) OpenSink(ctx context.Context, spec connector.SinkSpec) (connector.Sink, error) {
	return openSink(ctx, spec)
}

func hasMeta(p string) bool { return strings.ContainsAny(p, "*?[") }
