package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"reflect"

	"github.com/spf13/cobra"

	"github.com/weir-dev/weir/io/codec"
	"github.com/weir-dev/weir/io/connector"
)

func newCpCmd(a *app) *cobra.Command {
	var limit int64
	cmd := &cobra.Command{
		Use:   "cp SRC DST [--limit N]",
		Short: "Copy records from one bound URI to another (files, Kafka topics)",
		Long: `Copy every record of SRC to DST, through the same connectors pipelines use.
JSON records are copied as they are; Parquet records are read as maps and
written as JSON. A source without an end (a Kafka topic without ?until=)
is copied until --limit records or Ctrl-C; DST is committed then.`,
		Example: `  weir cp file://events.jsonl 'kafka://127.0.0.1:9092/pageviews?key=viewerId'
  weir cp 'kafka://127.0.0.1:9092/counts?until=latest' file://counts.jsonl`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, bad, err := cp(cmd.Context(), a, args[0], args[1], limit)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "copied %d records from %s to %s\n", n, args[0], args[1])
			if bad > 0 {
				a.log.Warn("records that could not be read were skipped", "count", bad)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&limit, "limit", 0, "stop after this many records (0: no limit)")
	return cmd
}

func isParquet(u *url.URL) bool {
	if f := u.Query().Get("format"); f != "" {
		return f == "parquet"
	}
	return u.Scheme == "file" && codec.FormatOf(u.Path) == codec.Parquet
}

// cp copies records from src to dst and returns how many it copied and how
// many it could not read.
func cp(ctx context.Context, a *app, src, dst string, limit int64) (n, bad int64, err error) {
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
	t := reflect.TypeFor[json.RawMessage]()
	if isParquet(su) {
		t = reflect.TypeFor[map[string]any]()
	}
	source, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: "source", URI: su, Type: t})
	if err != nil {
		return 0, 0, err
	}
	defer source.Close()
	sink, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: "destination", URI: du, Type: t})
	if err != nil {
		return 0, 0, err
	}
	committed := false
	defer func() {
		if !committed {
			sink.Abort()
		}
	}()
	splits, err := source.Splits(ctx)
	if err != nil {
		return 0, 0, err
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
			vals = vals[:0]
			for _, r := range buf[:k] {
				if r.Err != nil {
					bad++
					a.log.Debug("unreadable record", "position", r.Pos, "reason", r.Err)
					continue
				}
				vals = append(vals, r.Value)
			}
			if len(vals) > 0 {
				// Records already read are written even when Ctrl-C
				// came meanwhile.
				if err := sink.Write(context.WithoutCancel(ctx), vals); err != nil {
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
	if err := sink.Commit(context.WithoutCancel(ctx)); err != nil {
		return n, bad, err
	}
	committed = true
	return n, bad, nil
}
