package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"reflect"
	"strings"

	"github.com/spf13/cobra"

	"github.com/weir-dev/weir/internal/validate"
	"github.com/weir-dev/weir/io/connector"
)

// validateFlags are the flags of weir validate.
type validateFlags struct {
	key, ignore, window []string
	tolerance           float64
	examples, windows   int
}

func newValidateCmd(a *app) *cobra.Command {
	var f validateFlags
	cmd := &cobra.Command{
		Use:   "validate A B [--key FIELD,...]",
		Short: "Compare two outputs row by row and window by window",
		Long: `Compare the records of two sources, such as a backfill's Parquet files and
the topic a stream run wrote, to check that they agree. A and B are any
URIs weir cat reads: files, directories or globs of part files, and
kafka://HOST:PORT/TOPIC?until=latest.

Rows with the same --key are compared field by field: numbers by value (3
and 3.0 match), floating-point ones within --tolerance, a null field as an
absent one. Without --key, whole rows are compared as multisets. The
report counts the rows matching, missing in B, extra in B and differing,
per window too when rows have windowStart and windowEnd (or the --window
fields), and shows --examples of each, the first by key.

A is held in memory by key while B is read: give the smaller output as A.

Exit status: 0 if A and B hold the same rows, 1 if they differ, 2 on a
usage error or when a source cannot be read, undecodable records included.`,
		Example: `  weir validate out/counts.parquet 'kafka://127.0.0.1:9092/counts?until=latest' --key profileId,windowStart
  weir validate backfill/ stream/ --key viewerId,sessionStart --window sessionStart,sessionEnd --tolerance 1e-9`,
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.ExactArgs(2)(cmd, args); err != nil {
				return &exitError{code: 2, err: err}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := compareSources(cmd.Context(), a, cmd.OutOrStdout(), args[0], args[1], f)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if !rep.Same() {
				return differError(rep)
			}
			return nil
		},
	}
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: 2, err: c.Root().FlagErrorFunc()(c, err)}
	})
	fl := cmd.Flags()
	fl.StringSliceVar(&f.key, "key", nil, "`fields` that identify a row (profileId,windowStart); none: compare whole rows")
	fl.StringSliceVar(&f.ignore, "ignore", nil, "`fields` to leave out of the comparison")
	fl.StringSliceVar(&f.window, "window", nil, "`fields` naming a row's window (default windowStart,windowEnd when rows have them)")
	fl.Float64Var(&f.tolerance, "tolerance", 0, "how far apart floating-point numbers may be and match, absolutely or relatively (with --key)")
	fl.IntVar(&f.examples, "examples", 5, "show at most `N` examples of each kind of difference")
	fl.IntVar(&f.windows, "windows", 20, "list at most `N` of the windows that differ")
	return cmd
}

// compareSources compares the sources at uriA and uriB and writes the
// report to out.
func compareSources(ctx context.Context, a *app, out io.Writer, uriA, uriB string, f validateFlags) (*validate.Report, error) {
	if f.windows < 0 {
		return nil, fmt.Errorf("--windows is %d, want >= 0", f.windows)
	}
	opts := validate.Options{Key: f.key, Ignore: f.ignore, Window: f.window, Tolerance: f.tolerance, Examples: f.examples}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	// Open both before reading either, so that a bad B fails at once.
	srcA, nameA, err := openRows(ctx, "A", uriA)
	if err != nil {
		return nil, err
	}
	defer srcA.Close()
	srcB, nameB, err := openRows(ctx, "B", uriB)
	if err != nil {
		return nil, err
	}
	defer srcB.Close()

	rep, err := validate.Compare(ctx, sourceRows(ctx, srcA, nameA), sourceRows(ctx, srcB, nameB), opts)
	if err != nil {
		return nil, err
	}
	a.log.Debug("compared", "rowsA", rep.RowsA, "rowsB", rep.RowsB, "windows", len(rep.Windows))
	if _, err := fmt.Fprintf(out, "A: %s\nB: %s\n", nameA, nameB); err != nil {
		return nil, err
	}
	if err := rep.WriteText(out, f.windows); err != nil {
		return nil, err
	}
	return rep, nil
}

// openRows opens a bounded source for reading rows as weir cp does: JSON
// records as they are (validate decodes their numbers exactly), Parquet
// rows as maps.
func openRows(ctx context.Context, binding, uri string) (connector.Source, string, error) {
	u, err := connector.ParseURI(uri)
	if err != nil {
		return nil, "", err
	}
	name := displayURI(uri, u)
	t := reflect.TypeFor[json.RawMessage]()
	if pq, err := readsParquet(u); err != nil {
		return nil, "", fmt.Errorf("%s: %w", binding, err)
	} else if pq {
		t = reflect.TypeFor[map[string]any]()
	}
	src, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: binding, URI: u, Type: t})
	if err != nil {
		return nil, "", err
	}
	if !src.Bounded() {
		src.Close()
		return nil, "", fmt.Errorf("%s: %s is unbounded: give it an end (?until=latest)", binding, name)
	}
	return src, name, nil
}

// sourceRows yields the rows of src. Records that cannot be decoded end
// the rows with an error naming the first, after the others.
func sourceRows(ctx context.Context, src connector.Source, name string) iter.Seq2[map[string]any, error] {
	return func(yield func(map[string]any, error) bool) {
		y := &yieldSink{yield: yield}
		rs, err := readSource(ctx, src, y)
		switch {
		case y.stopped:
		case err != nil:
			yield(nil, fmt.Errorf("%s: %w", name, err))
		case rs.dead > 0:
			what := "records"
			if rs.dead == 1 {
				what = "record"
			}
			yield(nil, fmt.Errorf("%s: %d undecodable %s (the first: %s)", name, rs.dead, what, rs.firstDead))
		}
	}
}

// yieldSink hands the rows readSource reads to an iterator's yield.
type yieldSink struct {
	yield   func(map[string]any, error) bool
	stopped bool // yield returned false
}

func (y *yieldSink) want() int {
	if y.stopped {
		return 0
	}
	return -1
}

func (y *yieldSink) offer(row map[string]any) {
	if !y.stopped && !y.yield(row, nil) {
		y.stopped = true
	}
}

// differError is the error weir validate ends with when A and B differ.
func differError(rep *validate.Report) error {
	var parts []string
	for _, c := range []struct {
		n    int64
		what string
	}{{rep.Missing, "missing in B"}, {rep.Extra, "extra in B"}, {rep.Differing, "differing"}} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", c.n, c.what))
		}
	}
	msg := "A and B differ: " + strings.Join(parts, ", ")
	if len(rep.Windows) > 0 {
		msg += fmt.Sprintf(", in %d of %d windows", rep.DifferingWindows(), len(rep.Windows))
	}
	return errors.New(msg)
}
