package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-dev/weir/examples/nexmark"
	"github.com/weir-dev/weir/io/nexmark/model"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/state"
)

func newBenchCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench SUITE",
		Short: "Run benchmarks (nexmark)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown benchmark suite %q (known: nexmark)", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newBenchNexmarkCmd(a))
	return cmd
}

// benchFlags are the flags of weir bench nexmark.
type benchFlags struct {
	query         string
	events        int64
	rate          float64
	seed          uint64
	parallelism   int
	checkpoints   bool
	interval      time.Duration
	stateBackend  string
	stateDir      string
	outOfOrderGrp int64
	format        string
	header        bool
	memory        string
	cpuProfile    string
}

func newBenchNexmarkCmd(a *app) *cobra.Command {
	var f benchFlags
	var v vsFlags
	cmd := &cobra.Command{
		Use:   "nexmark --query qN [--events N] [--parallelism N] [--checkpoints=false]",
		Short: "Run a Nexmark query in stream mode over generated events",
		Long: `Run one Nexmark query in stream mode, reading events generated in the
process (nexmark://, one split per worker) and discarding its output, with
keyed state on Pebble and checkpoints at the default interval into a
temporary directory; then print the events per second, the elapsed time
and the peak resident memory of the process. The run ends when the
generator has produced --events events.`,
		Example: `  weir bench nexmark --query q5 --events 10000000
  weir bench nexmark --query q7 --events 1000000 --parallelism 1 --checkpoints=false
  weir bench nexmark --vs prism --query q0,q1,q2,q5,q7,q8 --events 1000000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if v.against != "" {
				return benchVs(cmd, a, f, v)
			}
			if f.cpuProfile != "" {
				pf, err := os.Create(f.cpuProfile)
				if err != nil {
					return err
				}
				defer pf.Close()
				if err := pprof.StartCPUProfile(pf); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			r, err := benchNexmark(cmd.Context(), a, f)
			if err != nil {
				return err
			}
			if f.format == "markdown" {
				if f.header {
					fmt.Fprint(cmd.OutOrStdout(), benchTableHeader)
				}
				return r.printRow(cmd.OutOrStdout())
			}
			return r.print(cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.query, "query", "", "the query: "+strings.Join(nexmark.Names(), ", ")+" (required)")
	fl.Int64Var(&f.events, "events", 10_000_000, "number of events to generate")
	fl.Float64Var(&f.rate, "rate", model.DefaultRate, "events per second of event time")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the generated events")
	fl.Int64Var(&f.outOfOrderGrp, "out-of-order-group", 1, "permute event ids within groups of this many events")
	fl.IntVar(&f.parallelism, "parallelism", runtime.NumCPU(), "workers per keyed stage, and generator splits")
	fl.BoolVar(&f.checkpoints, "checkpoints", true, "take checkpoints (into a temporary directory)")
	fl.DurationVar(&f.interval, "checkpoint-interval", 10*time.Second, "time between checkpoints")
	fl.StringVar(&f.stateBackend, "state-backend", "pebble", "state backend: pebble or memory")
	fl.StringVar(&f.stateDir, "state-dir", "", "where the state and checkpoints go (default: a temporary directory, removed after)")
	fl.StringVar(&f.memory, "memory", "1GiB", "the job's memory budget, as a pipeline's --memory (state caches, Pebble's cache, the Go heap's soft limit); none for Go's defaults")
	fl.StringVar(&f.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof reads it)")
	fl.StringVar(&f.format, "format", "text", "text, or markdown: one row of the table make bench writes")
	fl.BoolVar(&f.header, "header", false, "with --format markdown, print the table's header first")
	v.register(fl)
	_ = cmd.MarkFlagRequired("query")
	return cmd
}

// benchResult is what weir bench nexmark measured.
type benchResult struct {
	f           benchFlags
	elapsed     time.Duration
	read        int64
	written     int64
	peakRSS     int64 // bytes; 0 if unknown
	checkpoints int64
}

func (f *benchFlags) validate() error {
	var bad []string
	if _, err := nexmark.Lookup(f.query); err != nil {
		bad = append(bad, fmt.Sprintf("--query %q: want one of %s", f.query, strings.Join(nexmark.Names(), ", ")))
	}
	if f.events < 1 {
		bad = append(bad, fmt.Sprintf("--events is %d, want at least 1", f.events))
	}
	if !(f.rate > 0) {
		bad = append(bad, fmt.Sprintf("--rate is %v, want more than 0", f.rate))
	}
	if f.outOfOrderGrp < 1 {
		bad = append(bad, fmt.Sprintf("--out-of-order-group is %d, want at least 1", f.outOfOrderGrp))
	}
	if f.parallelism < 1 || f.parallelism > state.DefaultKeyGroups {
		bad = append(bad, fmt.Sprintf("--parallelism is %d, want 1 to %d", f.parallelism, state.DefaultKeyGroups))
	}
	if f.format != "text" && f.format != "markdown" {
		bad = append(bad, fmt.Sprintf("--format %q: want text or markdown", f.format))
	}
	if f.checkpoints && f.interval <= 0 {
		bad = append(bad, fmt.Sprintf("--checkpoint-interval is %v, want more than 0", f.interval))
	}
	if f.memory != "none" {
		if _, err := runner.ParseSize(f.memory); err != nil {
			bad = append(bad, fmt.Sprintf("--memory %q: %v", f.memory, err))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// benchNexmark runs the query of f in stream mode over the nexmark://
// source, into discard://.
func benchNexmark(ctx context.Context, a *app, f benchFlags) (*benchResult, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	q, _ := nexmark.Lookup(f.query)
	f.query = strings.ToLower(f.query)
	p, err := q(nexmark.Config{})
	if err != nil {
		return nil, err
	}
	dir := f.stateDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "weir-bench-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	src := url.Values{}
	src.Set("events", strconv.FormatInt(f.events, 10))
	src.Set("rate", strconv.FormatFloat(f.rate, 'g', -1, 64))
	src.Set("seed", strconv.FormatUint(f.seed, 10))
	src.Set("group", strconv.FormatInt(f.outOfOrderGrp, 10))
	src.Set("splits", strconv.Itoa(f.parallelism))
	opts := runner.Options{
		Mode:         runner.Stream,
		Bindings:     map[string]string{nexmark.Input: "nexmark://?" + src.Encode(), nexmark.Output: "discard://"},
		StateBackend: f.stateBackend,
		StateDir:     filepath.Join(dir, "state"),
		ResetState:   true,
		Parallelism:  f.parallelism,
		Progress:     -1,
		Logger:       slog.New(&minLevelHandler{next: a.log.Handler(), min: logLevel(a)}),
	}
	if f.stateBackend == "memory" {
		opts.StateDir = ""
	}
	if f.memory != "none" {
		opts.Memory, _ = runner.ParseSize(f.memory)
	}
	if f.checkpoints {
		opts.CheckpointDir = filepath.Join(dir, "checkpoints")
		opts.CheckpointInterval = f.interval
		// A finished job's directory cannot be reused: start afresh.
		if err := os.RemoveAll(opts.CheckpointDir); err != nil {
			return nil, err
		}
	}
	a.log.Debug("bench starting", "query", f.query, "source", opts.Bindings[nexmark.Input], "dir", dir)
	start := time.Now()
	res, err := runner.Run(ctx, p, opts)
	elapsed := time.Since(start)
	if err != nil {
		return nil, err
	}
	if res.Stopped || res.Read[nexmark.Input] != f.events {
		return nil, fmt.Errorf("stopped after %d of %d events", res.Read[nexmark.Input], f.events)
	}
	return &benchResult{
		f:           f,
		elapsed:     elapsed,
		read:        res.Read[nexmark.Input],
		written:     res.Written[nexmark.Output],
		peakRSS:     peakRSS(),
		checkpoints: res.Checkpoints,
	}, nil
}

// benchTableHeader heads the rows of --format markdown.
const benchTableHeader = "| query | events | events/s | elapsed | peak RSS | results | parallelism | state | checkpoints | memory |\n|---|---:|---:|---:|---:|---:|---:|---|---|---|\n"

func (r *benchResult) printRow(w io.Writer) error {
	ck := "off"
	if r.f.checkpoints {
		ck = fmt.Sprintf("every %s (%d taken)", r.f.interval, r.checkpoints)
	}
	rss := "unknown"
	if r.peakRSS > 0 {
		rss = fmt.Sprintf("%d MiB", r.peakRSS>>20)
	}
	_, err := fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %d | %d | %s | %s | %s |\n", r.f.query, r.read, float64(r.read)/r.elapsed.Seconds(),
		r.elapsed.Round(time.Millisecond), rss, r.written, r.f.parallelism, r.f.stateBackend, ck, r.f.memory)
	return err
}

func (r *benchResult) print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	row("query", "%s", r.f.query)
	row("events", "%d", r.read)
	row("elapsed", "%s", r.elapsed.Round(time.Millisecond))
	row("events/s", "%.0f", float64(r.read)/r.elapsed.Seconds())
	if r.peakRSS > 0 {
		row("peak RSS", "%d MiB", r.peakRSS>>20)
	} else {
		row("peak RSS", "unknown")
	}
	row("results", "%d", r.written)
	row("parallelism", "%d", r.f.parallelism)
	row("state", "%s", r.f.stateBackend)
	if r.f.checkpoints {
		row("checkpoints", "every %s (%d taken)", r.f.interval, r.checkpoints)
	} else {
		row("checkpoints", "off")
	}
	row("memory", "%s", r.f.memory)
	return tw.Flush()
}

// peakRSS is the process's peak resident set size in bytes (getrusage's
// maxrss: VmHWM of /proc/self/status on Linux), or 0 where the system does
// not say.
func peakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	switch runtime.GOOS {
	case "linux", "freebsd", "netbsd", "openbsd":
		return int64(ru.Maxrss) << 10 // KiB
	case "darwin":
		return int64(ru.Maxrss) // bytes
	}
	return 0
}

// logLevel is the least level of the run's logs that weir bench shows:
// warnings, or everything with --verbose.
func logLevel(a *app) slog.Level {
	if a.verbose {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// minLevelHandler passes the records of level min and above on to next:
// the runner's progress stays out of the bench's output.
type minLevelHandler struct {
	next slog.Handler
	min  slog.Level
}

func (h *minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.next.Enabled(ctx, l)
}

func (h *minLevelHandler) Handle(ctx context.Context, r slog.Record) error {
	return h.next.Handle(ctx, r)
}

func (h *minLevelHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &minLevelHandler{next: h.next.WithAttrs(as), min: h.min}
}

func (h *minLevelHandler) WithGroup(name string) slog.Handler {
	return &minLevelHandler{next: h.next.WithGroup(name), min: h.min}
}
