package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"reflect"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weir-dev/weir/io/codec"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/fsys"
	"github.com/weir-dev/weir/io/kafka"
)

func newCpCmd(a *app) *cobra.Command {
	var (
		limit int64
		dead  string
	)
	cmd := &cobra.Command{
		Use:   "cp SRC DST [--limit N] [--dead-letter URI]",
		Short: "Copy records from one bound URI to another (files, Kafka topics)",
		Long: `Copy every record of SRC to DST, through the same connectors pipelines use.
JSON records are copied as they are; Parquet records are read as maps and
written as JSON. A source without an end (a Kafka topic without ?until=)
is copied until --limit records or Ctrl-C; DST is committed then. A
bounded topic copied whole into a directory (DST ending in /) leaves
_kafka-offsets.json there: the offsets that follow the copy, from which
--mode=backfill-then-stream --handover continues exactly. Records that
cannot be read are counted and the first is named; with --dead-letter
each goes there with its position and reason, as in a pipeline.`,
		Example: `  weir cp file://events.jsonl 'kafka://127.0.0.1:9092/pageviews?key=viewerId'
  weir cp 'kafka://127.0.0.1:9092/counts?until=latest' file://counts.jsonl`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := cp(cmd.Context(), a, args[0], args[1], dead, limit)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %d records from %s to %s\n", r.n, args[0], args[1])
			if r.bad > 0 {
				where := "skipped"
				if dead != "" {
					where = "written to " + dead
				}
				a.log.Warn("records that could not be read were "+where, "count", r.bad, "first", r.first.Position, "reason", r.first.Reason)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&limit, "limit", 0, "stop after this many records (0: no limit)")
	cmd.Flags().StringVar(&dead, "dead-letter", "", "URI where records that cannot be read go, with their position and reason (default: count them and name the first)")
	return cmd
}

// splitFolder makes a split's ID a folder name: "pageviews/3" is
// "pageviews-3".
func splitFolder(id string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '\\' || r == ':' || r == '#' || r == '?' {
			return '-'
		}
		return r
	}, strings.TrimPrefix(id, "/"))
}

// writeHandover writes h as kafka.HandoverFile in the directory du names.
func writeHandover(du *url.URL, h kafka.Handover) error {
	f, dir, err := fsys.Resolve(du)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	return fsys.WriteFile(f, path.Join(dir, kafka.HandoverFile), append(b, '\n'))
}

// isParquet reports whether a file URI names Parquet: ?format=parquet, or
// a name ending .parquet, on the local disk or HDFS.
func isParquet(u *url.URL) bool {
	if f := u.Query().Get("format"); f != "" {
		return f == "parquet"
	}
	return isFileURI(u) && codec.FormatOf(u.Path) == codec.Parquet
}

// isFileURI reports whether the file connector reads u (file:// or
// hdfs://; ParseURI gives a bare path the file scheme).
func isFileURI(u *url.URL) bool { return u.Scheme == "file" || u.Scheme == "hdfs" }

// readsParquet reports whether a source URI reads Parquet, so that its
// rows are read as maps (a Parquet file has no JSON to keep as it is): a
// Parquet name, or a directory or glob with a Parquet file among those it
// lists. weir cat reads every source as maps and needs no such test.
func readsParquet(u *url.URL) (bool, error) {
	if isParquet(u) || u.Query().Get("format") != "" || !isFileURI(u) {
		return isParquet(u), nil
	}
	f, p, err := fsys.Resolve(u)
	if err != nil {
		return false, err
	}
	var names []string
	if fsys.HasMeta(p) {
		names, err = fsys.Glob(f, p, hiddenName)
	} else if fi, serr := f.Stat(p); serr == nil && fi.IsDir() {
		names, err = fsys.Files(f, p, hiddenName)
	}
	if err != nil {
		return false, err
	}
	for _, n := range names {
		if codec.FormatOf(n) == codec.Parquet {
			return true, nil
		}
	}
	return false, nil
}

// hiddenName reports whether a listing skips a name: hidden files, and
// Hadoop's _SUCCESS and the like, as the file connector does.
func hiddenName(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// cpResult is what a copy did: the records copied, those that could not
// be read, and the first of those.
type cpResult struct {
	n, bad int64
	first  connector.DeadLetter
}

// cp copies records from src to dst; those it cannot read go to deadURI if
// it is set.
func cp(ctx context.Context, a *app, src, dst, deadURI string, limit int64) (res cpResult, err error) {
	n, bad, err := cpRecords(ctx, a, src, dst, deadURI, limit, &res.first)
	res.n, res.bad = n, bad
	return res, err
}

func cpRecords(ctx context.Context, a *app, src, dst, deadURI string, limit int64, first *connector.DeadLetter) (n, bad int64, err error) {
	su, err := connector.ParseURI(src)
	if err != nil {
		return 0, 0, err
	}
	du, err := connector.ParseURI(dst)
	if err != nil {
		return 0, 0, err
	}
	if isParquet(du) {
		return 0, 0, fmt.Errorf("copying into Parquet needs a schema: write Parquet from a pipeline (or weir gen), or copy to JSON Lines")
	}
	var dead connector.Sink
	if deadURI != "" {
		u, err := connector.ParseURI(deadURI)
		if err == nil {
			dead, err = connector.OpenSink(ctx, connector.SinkSpec{Binding: "dead-letter", URI: u, Type: reflect.TypeFor[connector.DeadLetter]()})
		}
		if err != nil {
			return 0, 0, fmt.Errorf("--dead-letter: %w", err)
		}
	}
	t := reflect.TypeFor[json.RawMessage]()
	if pq, err := readsParquet(su); err != nil {
		return 0, 0, err
	} else if pq {
		t = reflect.TypeFor[map[string]any]()
	}
	source, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: "source", URI: su, Type: t})
	if err != nil {
		return 0, 0, err
	}
	defer source.Close()
	splits, err := source.Splits(ctx)
	if err != nil {
		return 0, 0, err
	}
	// Into a directory, each split of several gets its own folder: a
	// split's records keep their order in their own file, so that reading
	// the copy back gives each the watermark it had (one file of
	// interleaved partitions would be disordered beyond any bound).
	perSplit := strings.HasSuffix(du.Path, "/") && len(splits) > 1
	sinks := make([]connector.Sink, len(splits))
	committed := false
	defer func() {
		if !committed {
			for i, s := range sinks {
				if s != nil && (i == 0 || perSplit) {
					s.Abort()
				}
			}
			if dead != nil {
				dead.Abort()
			}
		}
	}()
	for i, sp := range splits {
		if i > 0 && !perSplit {
			sinks[i] = sinks[0]
			continue
		}
		u := du
		if perSplit {
			c := *du
			c.Path = du.Path + splitFolder(sp.ID()) + "/"
			u = &c
		}
		if sinks[i], err = connector.OpenSink(ctx, connector.SinkSpec{Binding: "destination", URI: u, Type: t}); err != nil {
			return 0, 0, err
		}
	}
	if len(splits) == 0 {
		sink, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: "destination", URI: du, Type: t})
		if err != nil {
			return 0, 0, err
		}
		sinks = append(sinks, sink)
	}
	readers := make([]connector.Reader, len(splits))
	for i, sp := range splits {
		if readers[i], err = sp.Open(ctx); err != nil {
			return 0, 0, err
		}
		defer readers[i].Close()
	}
	buf := make([]connector.Record, 512)
	vals := make([]any, 0, len(buf))
	var deads []any
	open := len(readers)
	for open > 0 && (limit <= 0 || n < limit) && ctx.Err() == nil {
		for i, rd := range readers {
			if rd == nil {
				continue
			}
			want := len(buf)
			if limit > 0 && limit-n < int64(want) {
				want = int(limit - n)
			}
			k, rerr := rd.Read(ctx, buf[:want])
			vals, deads = vals[:0], deads[:0]
			for _, r := range buf[:k] {
				if r.Err != nil {
					d := connector.NewDeadLetter("source", r, r.Err.Error())
					if bad == 0 {
						*first = d
					}
					bad++
					a.log.Debug("unreadable record", "position", r.Pos, "reason", r.Err)
					deads = append(deads, d)
					continue
				}
				vals = append(vals, r.Value)
			}
			if dead != nil && len(deads) > 0 {
				if err := dead.Write(context.WithoutCancel(ctx), deads); err != nil {
					return n, bad, fmt.Errorf("--dead-letter: %w", err)
				}
			}
			if len(vals) > 0 {
				// Records already read are written even when Ctrl-C
				// came meanwhile.
				if err := sinks[i].Write(context.WithoutCancel(ctx), vals); err != nil {
					return n, bad, err
				}
				n += int64(len(vals))
			}
			switch {
			case errors.Is(rerr, io.EOF):
				readers[i] = nil
				open--
			case rerr != nil && ctx.Err() == nil:
				return n, bad, rerr
			}
			if limit > 0 && n >= limit {
				break
			}
		}
	}
	if ctx.Err() != nil && open > 0 && source.Bounded() {
		// A source with an end was not copied to it: the copy would look
		// complete and is not.
		return n, bad, fmt.Errorf("interrupted after %d records, before the end of %s: nothing written", n, src)
	}
	// An unbounded source's copy ends at --limit or Ctrl-C: keep what was
	// copied, with a context that is still live.
	for i, s := range sinks {
		if i > 0 && !perSplit {
			continue // the one sink, shared
		}
		if err := s.Commit(context.WithoutCancel(ctx)); err != nil {
			return n, bad, err
		}
	}
	if dead != nil {
		if err := dead.Commit(context.WithoutCancel(ctx)); err != nil {
			return n, bad, fmt.Errorf("--dead-letter: %w", err)
		}
	}
	committed = true
	// A whole bounded topic copied into a directory: say where the copy
	// ends, for a backfill that then streams from the topic.
	if h, ok := kafka.SourceHandover(source); ok && limit <= 0 && strings.HasSuffix(du.Path, "/") {
		if err := writeHandover(du, h); err != nil {
			return n, bad, fmt.Errorf("copied, but writing %s: %w", kafka.HandoverFile, err)
		}
	}
	return n, bad, nil
}
