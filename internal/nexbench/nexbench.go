// Package nexbench runs a Nexmark query on Weir the way weir bench nexmark
// does, and measures it: in stream mode over events generated in the
// process (nexmark://, one split per worker), into discard://, with keyed
// state on Pebble and checkpoints into a temporary directory. It holds the
// flags of a run, their checks, and the printing of what was measured, so
// that weir bench nexmark and weir-bench nexmark --vs prism (in the bench
// module) run and report Weir the same way.
//
// Dependency direction: nexbench imports runner, state, examples/nexmark and
// io/nexmark/model; cmd/weir and the bench module's weir-bench import it.
package nexbench

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
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/weir-dev/weir/examples/nexmark"
	"github.com/weir-dev/weir/io/nexmark/model"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/state"
)

// Flags are the flags of a run; Register sets their defaults.
type Flags struct {
	Query         string
	Events        int64
	Rate          float64
	Seed          uint64
	OutOfOrderGrp int64
	Parallelism   int
	Checkpoints   bool
	Interval      time.Duration
	StateBackend  string
	StateDir      string
	Memory        string
	Format        string
	Header        bool
}

// Register adds the flags to fl, with their defaults.
func (f *Flags) Register(fl *pflag.FlagSet) {
	fl.StringVar(&f.Query, "query", "", "the query: "+strings.Join(nexmark.Names(), ", ")+" (required)")
	fl.Int64Var(&f.Events, "events", 10_000_000, "number of events to generate")
	fl.Float64Var(&f.Rate, "rate", model.DefaultRate, "events per second of event time")
	fl.Uint64Var(&f.Seed, "seed", 0, "seed of the generated events")
	fl.Int64Var(&f.OutOfOrderGrp, "out-of-order-group", 1, "permute event ids within groups of this many events")
	fl.IntVar(&f.Parallelism, "parallelism", runtime.NumCPU(), "workers per keyed stage, and generator splits")
	fl.BoolVar(&f.Checkpoints, "checkpoints", true, "take checkpoints (into a temporary directory)")
	fl.DurationVar(&f.Interval, "checkpoint-interval", 10*time.Second, "time between checkpoints")
	fl.StringVar(&f.StateBackend, "state-backend", "pebble", "state backend: pebble or memory")
	fl.StringVar(&f.StateDir, "state-dir", "", "where the state and checkpoints go (default: a temporary directory, removed after)")
	fl.StringVar(&f.Memory, "memory", "1GiB", "the job's memory budget, as a pipeline's --memory (state caches, Pebble's cache, the Go heap's soft limit); none for Go's defaults")
	fl.StringVar(&f.Format, "format", "text", "text, or markdown: one row of the table make bench writes")
	fl.BoolVar(&f.Header, "header", false, "with --format markdown, print the table's header first")
}

// Validate reports every flag that is wrong, in one error.
func (f *Flags) Validate() error {
	var bad []string
	if _, err := nexmark.Lookup(f.Query); err != nil {
		bad = append(bad, fmt.Sprintf("--query %q: want one of %s", f.Query, strings.Join(nexmark.Names(), ", ")))
	}
	if f.Events < 1 {
		bad = append(bad, fmt.Sprintf("--events is %d, want at least 1", f.Events))
	}
	if !(f.Rate > 0) {
		bad = append(bad, fmt.Sprintf("--rate is %v, want more than 0", f.Rate))
	}
	if f.OutOfOrderGrp < 1 {
		bad = append(bad, fmt.Sprintf("--out-of-order-group is %d, want at least 1", f.OutOfOrderGrp))
	}
	if f.Parallelism < 1 || f.Parallelism > state.DefaultKeyGroups {
		bad = append(bad, fmt.Sprintf("--parallelism is %d, want 1 to %d", f.Parallelism, state.DefaultKeyGroups))
	}
	if f.Format != "text" && f.Format != "markdown" {
		bad = append(bad, fmt.Sprintf("--format %q: want text or markdown", f.Format))
	}
	if f.Checkpoints && f.Interval <= 0 {
		bad = append(bad, fmt.Sprintf("--checkpoint-interval is %v, want more than 0", f.Interval))
	}
	if f.Memory != "none" {
		if _, err := runner.ParseSize(f.Memory); err != nil {
			bad = append(bad, fmt.Sprintf("--memory %q: %v", f.Memory, err))
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	return nil
}

// Generator is the configuration of the events a run reads.
func (f *Flags) Generator() model.Config {
	return model.Config{Events: f.Events, Rate: f.Rate, Seed: f.Seed, OutOfOrderGroupSize: f.OutOfOrderGrp}
}

// Result is what a run measured.
type Result struct {
	Flags       Flags // with Query in lower case
	Elapsed     time.Duration
	Read        int64
	Written     int64
	PeakRSS     int64 // bytes; 0 if unknown
	Checkpoints int64
}

// Run runs the query of f in stream mode over the nexmark:// source, into
// discard://. The run logs its warnings and errors to log, and everything
// when log is enabled for debug messages.
func Run(ctx context.Context, f Flags, log *slog.Logger) (*Result, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	q, _ := nexmark.Lookup(f.Query)
	f.Query = strings.ToLower(f.Query)
	p, err := q(nexmark.Config{})
	if err != nil {
		return nil, err
	}
	dir := f.StateDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "weir-bench-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
	}
	src := url.Values{}
	src.Set("events", strconv.FormatInt(f.Events, 10))
	src.Set("rate", strconv.FormatFloat(f.Rate, 'g', -1, 64))
	src.Set("seed", strconv.FormatUint(f.Seed, 10))
	src.Set("group", strconv.FormatInt(f.OutOfOrderGrp, 10))
	src.Set("splits", strconv.Itoa(f.Parallelism))
	opts := runner.Options{
		Mode:         runner.Stream,
		Bindings:     map[string]string{nexmark.Input: "nexmark://?" + src.Encode(), nexmark.Output: "discard://"},
		StateBackend: f.StateBackend,
		StateDir:     filepath.Join(dir, "state"),
		ResetState:   true,
		Parallelism:  f.Parallelism,
		Progress:     -1,
		Logger:       slog.New(MinLevel(log.Handler(), RunLogLevel(ctx, log))),
	}
	if f.StateBackend == "memory" {
		opts.StateDir = ""
	}
	if f.Memory != "none" {
		opts.Memory, _ = runner.ParseSize(f.Memory)
	}
	if f.Checkpoints {
		opts.CheckpointDir = filepath.Join(dir, "checkpoints")
		opts.CheckpointInterval = f.Interval
		// A finished job's directory cannot be reused: start afresh.
		if err := os.RemoveAll(opts.CheckpointDir); err != nil {
			return nil, err
		}
	}
	log.Debug("bench starting", "query", f.Query, "source", opts.Bindings[nexmark.Input], "dir", dir)
	start := time.Now()
	res, err := runner.Run(ctx, p, opts)
	elapsed := time.Since(start)
	if err != nil {
		return nil, err
	}
	if res.Stopped || res.Read[nexmark.Input] != f.Events {
		return nil, fmt.Errorf("stopped after %d of %d events", res.Read[nexmark.Input], f.Events)
	}
	return &Result{
		Flags:       f,
		Elapsed:     elapsed,
		Read:        res.Read[nexmark.Input],
		Written:     res.Written[nexmark.Output],
		PeakRSS:     PeakRSS(),
		Checkpoints: res.Checkpoints,
	}, nil
}

// TableHeader heads the rows of --format markdown.
const TableHeader = "| query | events | events/s | elapsed | peak RSS | results | parallelism | state | checkpoints | memory |\n|---|---:|---:|---:|---:|---:|---:|---|---|---|\n"

// PrintRow prints r as a row of the Markdown table under TableHeader.
func (r *Result) PrintRow(w io.Writer) error {
	ck := "off"
	if r.Flags.Checkpoints {
		ck = fmt.Sprintf("every %s (%d taken)", r.Flags.Interval, r.Checkpoints)
	}
	rss := "unknown"
	if r.PeakRSS > 0 {
		rss = fmt.Sprintf("%d MiB", r.PeakRSS>>20)
	}
	_, err := fmt.Fprintf(w, "| %s | %d | %.0f | %s | %s | %d | %d | %s | %s | %s |\n", r.Flags.Query, r.Read, float64(r.Read)/r.Elapsed.Seconds(),
		r.Elapsed.Round(time.Millisecond), rss, r.Written, r.Flags.Parallelism, r.Flags.StateBackend, ck, r.Flags.Memory)
	return err
}

// Print prints r as aligned text, a measure a line.
func (r *Result) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	row("query", "%s", r.Flags.Query)
	row("events", "%d", r.Read)
	row("elapsed", "%s", r.Elapsed.Round(time.Millisecond))
	row("events/s", "%.0f", float64(r.Read)/r.Elapsed.Seconds())
	if r.PeakRSS > 0 {
		row("peak RSS", "%d MiB", r.PeakRSS>>20)
	} else {
		row("peak RSS", "unknown")
	}
	row("results", "%d", r.Written)
	row("parallelism", "%d", r.Flags.Parallelism)
	row("state", "%s", r.Flags.StateBackend)
	if r.Flags.Checkpoints {
		row("checkpoints", "every %s (%d taken)", r.Flags.Interval, r.Checkpoints)
	} else {
		row("checkpoints", "off")
	}
	row("memory", "%s", r.Flags.Memory)
	return tw.Flush()
}

// PeakRSS is the process's peak resident set size in bytes (getrusage's
// maxrss: VmHWM of /proc/self/status on Linux), or 0 where the system does
// not say.
func PeakRSS() int64 {
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

// RunLogLevel is the least level of a run's logs that a bench shows:
// warnings, or everything when log is enabled for debug messages
// (--verbose).
func RunLogLevel(ctx context.Context, log *slog.Logger) slog.Level {
	if log.Enabled(ctx, slog.LevelDebug) {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// MinLevel returns a handler that passes the records of level min and above
// on to next: the runner's progress stays out of a bench's output.
func MinLevel(next slog.Handler, min slog.Level) slog.Handler {
	return &minLevelHandler{next: next, min: min}
}

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
