package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/weir-dev/weir/bench/beamnexmark"
	"github.com/weir-dev/weir/internal/nexbench"
)

func newNexmarkCmd(a *app) *cobra.Command {
	var f nexbench.Flags
	var v vsFlags
	cmd := &cobra.Command{
		Use:   "nexmark --vs prism --query qN[,qN...] [--events N] [--parallelism N]",
		Short: "Run Nexmark queries on Weir and on prism over the same events",
		Long: `Run each query on Weir as weir bench nexmark does (stream mode over events
generated in the process, Pebble state, checkpoints at the default
interval), then its Beam version on prism, Beam's local runner, in this
process, over the same events (same generator configuration, same
splits), and print both rates and their ratio. With several queries, the
later ones run in a process the earlier ones warmed: for figures to
compare, run one query per invocation.`,
		Example: `  weir-bench nexmark --vs prism --query q0,q1,q2,q5,q7,q8 --events 1000000
  weir-bench nexmark --vs prism --query q8 --events 10000000 --format markdown --header`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return benchVs(cmd, a, f, v)
		},
	}
	fl := cmd.Flags()
	f.Register(fl)
	fl.Lookup("query").Usage = "the queries, comma-separated: some of " + strings.Join(beamnexmark.Names(), ", ") + " (required)"
	v.register(fl)
	_ = cmd.MarkFlagRequired("query")
	_ = cmd.MarkFlagRequired("vs")
	return cmd
}

// vsFlags are the flags of weir-bench nexmark --vs prism: the same queries
// on the same events on Weir and on Beam's prism runner, in this process.
type vsFlags struct {
	against string
	timeout time.Duration
}

func (v *vsFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&v.against, "vs", "", "the runner to compare Weir with: prism (Beam's local runner, in this process), run after Weir (required)")
	fl.DurationVar(&v.timeout, "prism-timeout", 2*time.Minute, "how long a query may run on prism before it is cancelled")
}

// vsRow is one query's comparison.
type vsRow struct {
	query  string
	events int64
	weir   *nexbench.Result
	prism  beamnexmark.Result
	// timedOut: prism did not finish in the timeout.
	timedOut bool
}

// benchVs runs each query of f.Query (comma-separated) on Weir as weir
// bench nexmark does, then on prism over the same events (same generator
// configuration, same splits), and prints a table of both rates.
func benchVs(cmd *cobra.Command, a *app, f nexbench.Flags, v vsFlags) error {
	if v.against != "prism" {
		return fmt.Errorf("--vs %q: want prism", v.against)
	}
	if v.timeout <= 0 {
		return fmt.Errorf("--prism-timeout is %v, want more than 0", v.timeout)
	}
	var queries []string
	for q := range strings.SplitSeq(strings.ToLower(f.Query), ",") {
		if q = strings.TrimSpace(q); q == "" {
			continue
		}
		if _, ok := beamnexmark.Queries[q]; !ok {
			return fmt.Errorf("--query %q: want some of %s", q, strings.Join(beamnexmark.Names(), ", "))
		}
		queries = append(queries, q)
	}
	if len(queries) == 0 {
		return errors.New("--query: no query given")
	}
	g := f.Generator()
	ctx := cmd.Context()

	// Prism and the Beam SDK log through slog's default logger: only with
	// --verbose. Their errors come back from the run.
	prev := slog.Default()
	slog.SetDefault(slog.New(nexbench.MinLevel(a.log.Handler(), prismLogLevel(ctx, a))))
	defer slog.SetDefault(prev)

	var rows []vsRow
	for _, q := range queries {
		fq := f
		fq.Query = q
		w, err := nexbench.Run(ctx, fq, a.log)
		if err != nil {
			return fmt.Errorf("%s on Weir: %w", q, err)
		}
		row := vsRow{query: q, events: f.Events, weir: w}
		pctx, cancel := context.WithTimeout(ctx, v.timeout)
		row.prism, err = beamnexmark.Run(pctx, q, beamnexmark.Input{Generator: g, Splits: f.Parallelism}, beamnexmark.Config{}, beamnexmark.Options{})
		cancel()
		switch {
		case errors.Is(err, beamnexmark.ErrTimeout) && ctx.Err() == nil:
			row.timedOut = true
		case err != nil:
			return fmt.Errorf("%s on prism: %w", q, err)
		case row.prism.Events != f.Events:
			return fmt.Errorf("%s on prism: %d events generated, want %d", q, row.prism.Events, f.Events)
		}
		rows = append(rows, row)
		a.log.Debug("nexmark vs prism", "query", q, "weir", w.Elapsed, "prism", row.prism.Elapsed, "timed out", row.timedOut)
	}
	return printVs(cmd.OutOrStdout(), f, v, rows)
}

// prismLogLevel is the least level of prism's and the Beam SDK's logs that
// weir-bench shows: none, or everything with --verbose.
func prismLogLevel(ctx context.Context, a *app) slog.Level {
	if a.log.Enabled(ctx, slog.LevelDebug) {
		return slog.LevelDebug
	}
	return slog.LevelError + 4
}

// printVs prints the comparison as a table: aligned text, or Markdown with
// --format markdown.
func printVs(w io.Writer, f nexbench.Flags, v vsFlags, rows []vsRow) error {
	header := []string{"query", "events", "Weir events/s", "prism events/s", "Weir/prism", "Weir results", "prism results"}
	var cells [][]string
	for _, r := range rows {
		weirRate := float64(r.events) / r.weir.Elapsed.Seconds()
		c := []string{r.query, fmt.Sprint(r.events), fmt.Sprintf("%.0f", weirRate)}
		if r.timedOut {
			// Prism's rate was below events/timeout: the ratio is above
			// Weir's rate over that.
			c = append(c, "did not finish in "+v.timeout.String(), fmt.Sprintf("> %.1f", weirRate*v.timeout.Seconds()/float64(r.events)), fmt.Sprint(r.weir.Written), "-")
		} else {
			prismRate := float64(r.events) / r.prism.Elapsed.Seconds()
			res := fmt.Sprint(r.prism.Results)
			if r.prism.Results != r.weir.Written {
				res += " (differs)"
			}
			c = append(c, fmt.Sprintf("%.0f", prismRate), fmt.Sprintf("%.2f", weirRate/prismRate), fmt.Sprint(r.weir.Written), res)
		}
		cells = append(cells, c)
	}
	if f.Format == "markdown" {
		if f.Header {
			fmt.Fprintf(w, "| %s |\n|---|---:|---:|---:|---:|---:|---:|\n", strings.Join(header, " | "))
		}
		for _, c := range cells {
			fmt.Fprintf(w, "| %s |\n", strings.Join(c, " | "))
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%s\t\n", strings.Join(header, "\t"))
	for _, c := range cells {
		fmt.Fprintf(tw, "%s\t\n", strings.Join(c, "\t"))
	}
	return tw.Flush()
}
