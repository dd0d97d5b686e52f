// Package file is the file:// and hdfs:// connector: it reads JSON Lines
// and Parquet files on the local file system or HDFS (through io/fsys) as
// bounded sources, and writes them as sinks that become visible atomically
// on Commit.
//
// URIs:
//
//	file:///abs/path/events.jsonl   an absolute path
//	file://data/events.jsonl        a relative path: a host other than
//	                                "localhost" is its first element
//	data/events.jsonl               a bare path (see connector.ParseURI)
//	hdfs://namenode:8020/events/    a path on HDFS (hdfs:///path: the
//	                                namenode of HADOOP_CONF_DIR)
//
// A source URI names a file, a directory (every regular file below it whose
// name is not hidden or temporary, see filefmt.Hidden; symbolic links to
// directories are not followed) or a glob with filepath.Match syntax ('*',
// '?', '[...]'; "**" is '*' twice, not a recursive match). A glob's '?'
// must be written %3F in a URI, where it would begin the query. A path that
// exists is never taken as a glob. Each file is one split, whose ID is its
// path. A directory with no data files (none, or only hidden ones) and a
// glob that matches none are errors wrapping connector.ErrNotFound, so that
// a folder left empty upstream is not read as "no data" without a word;
// ?empty=ok makes them an empty input.
//
// The format comes from the extension (.jsonl, .ndjson, .json: JSON Lines;
// .parquet, .pq: Parquet) unless ?format=jsonl|parquet says otherwise.
// Parquet sinks also take ?compression=zstd|snappy|gzip|none (default zstd)
// and ?rowgroup=ROWS (default 65536).
//
// A sink writes to a hidden temporary file beside its target
// (".counts.jsonl.tmp-4242@host-123": the writer's pid and host, and a
// random number), creating directories as needed; Commit flushes, fsyncs
// and renames it into place, replacing any file there, so that a run that
// dies never leaves output that looks complete. Opening a single-file sink
// removes, and logs, the temporary files of the same target that a killed
// run left on this host (see sweepTemps). A sink URI ending in
// '/' names a directory, in which the sink writes part-00000.jsonl (or
// .parquet with ?format=parquet). A sink written by one of several tasks of
// a job (connector.SinkSpec.Task) must be a directory; every file it writes
// there carries the task's name (part-<task>-00000.jsonl), and its
// checkpoints and recovery touch only its own files.
//
// Dependency direction: file imports io/connector, io/codec, io/fsys and
// io/internal/filefmt, and registers itself under "file" and "hdfs" in init;
// the runner imports it for the side effect.
package file

import (
	"context"
	"fmt"
	"net/url"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/fsys"
)

// Scheme is the URI scheme of this connector; it also serves HDFSScheme.
const Scheme = "file"

// HDFSScheme is the scheme of files on HDFS.
const HDFSScheme = "hdfs"

// prefix starts every error of the package.
const prefix = "file"

func init() {
	connector.Register(Scheme, fileConnector{})
	connector.Register(HDFSScheme, fileConnector{})
}

type fileConnector struct{}

// resolve returns the file system and the path a URI names (see the
// package doc).
func resolve(u *url.URL) (fsys.FS, string, error) {
	f, p, err := fsys.Resolve(u)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", prefix, err)
	}
	return f, p, nil
}

func (fileConnector) OpenSource(ctx context.Context, spec connector.SourceSpec) (connector.Source, error) {
	return openSource(ctx, spec)
}

func (fileConnector) OpenSink(ctx context.Context, spec connector.SinkSpec) (connector.Sink, error) {
	return openSink(ctx, spec)
}

// where names a path on f in messages: the path alone on the local disk.
func where(f fsys.FS, p string) string {
	if f == fsys.Local {
		return p
	}
	return f.String() + p
}
