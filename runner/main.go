package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/weir-dev/weir/sdk"
)

// Flags are the runner's command-line flags. Register them on a flag set
// with Flags.Register, parse, then turn them into Options.
type Flags struct {
	Mode               string
	Bind               []string
	Job                string
	StateDir           string
	StateBackend       string
	ResetState         bool
	Parallelism        int
	DeadLetter         string
	Progress           time.Duration
	LogLevel           string
	CheckpointDir      string
	CheckpointInterval time.Duration
	Changelog          string
	From, To           string
	Then               []string
	TableTopics        []string
	Handover           string
	JobID              string
	Memory             string
	Group              string
	GroupSession       time.Duration
	GroupRebalance     time.Duration
}

// Register adds the runner's flags to fs.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.Mode, "mode", "", "backfill (bounded input, fire everything, exit), stream (run until stopped or drained), or backfill-then-stream (history from --bind, then live from --then, one state) (default backfill)")
	fs.StringArrayVar(&f.Bind, "bind", nil, "bind a logical source or sink to a URI: NAME=URI (repeatable)")
	fs.StringVar(&f.Job, "job", "", "YAML job file with mode, bind, state-dir, parallelism, dead-letter; flags override it")
	fs.StringVar(&f.StateDir, "state-dir", "", "directory of the Pebble state backend (default: a temporary directory)")
	fs.StringVar(&f.StateBackend, "state-backend", "", "pebble or memory (default pebble)")
	fs.BoolVar(&f.ResetState, "reset-state", false, "empty --state-dir first if it holds state from an earlier run")
	fs.IntVar(&f.Parallelism, "parallelism", 0, "workers per keyed stage and readers per source (default: the number of CPUs)")
	fs.StringVar(&f.DeadLetter, "dead-letter", "", "URI of the sink for unreadable records (default: count and log them)")
	fs.DurationVar(&f.Progress, "progress", 5*time.Second, "interval between progress logs (0 or negative: none)")
	fs.StringVar(&f.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.CheckpointDir, "checkpoint-dir", "", "stream mode: keep checkpoints here (a path or file:// URI) and resume from the newest")
	fs.DurationVar(&f.CheckpointInterval, "checkpoint-interval", 10*time.Second, "time between checkpoints")
	fs.StringVar(&f.JobID, "job-id", "", "the job's id: {job} in --bind, --state-dir, --checkpoint-dir, --changelog and --dead-letter becomes it, and the state and checkpoint directories are marked as this job's (a replay then cannot touch production's)")
	fs.StringArrayVar(&f.TableTopics, "table-topic", nil, "a table bound to a snapshot also loads, then follows, a compacted topic: NAME=kafka://... (repeatable)")
	fs.StringArrayVar(&f.Then, "then", nil, "backfill-then-stream: the live binding of a source once its history is read: NAME=kafka://... (repeatable)")
	fs.StringVar(&f.Handover, "handover", "", "backfill-then-stream: where the history ends: an event time, or the URI of a handover file (weir cp writes _kafka-offsets.json beside a topic it copies)")
	fs.StringVar(&f.From, "from", "", "only event times at or after this: RFC 3339, a date (2026-11-01) or epoch milliseconds; sources skip files, partitions and Parquet row groups before it")
	fs.StringVar(&f.To, "to", "", "only event times before this (same forms as --from)")
	fs.StringVar(&f.Memory, "memory", "", "the memory the job may use, e.g. 2GiB: a quarter goes to the keyed workers' state caches, an eighth to Pebble's block cache, and the Go heap is held under the rest with a lazier garbage collector (unless GOMEMLIMIT or GOGC are set) (default: no budget; Go's defaults and 32 MiB of state cache per keyed worker)")
	fs.StringVar(&f.Group, "group", "", "stream mode: scale the job out over this Kafka consumer group: every process started with it runs the tasks the group assigns it (task p reads partition p of each source topic, with its own state, checkpoints under a shared --checkpoint-dir, and transactions); a task that moves resumes from its latest checkpoint")
	fs.DurationVar(&f.GroupSession, "group-session-timeout", 0, "with --group: how long the group waits for a process that stopped answering before its tasks move to the others (default 45s)")
	fs.DurationVar(&f.GroupRebalance, "group-rebalance-timeout", 0, "with --group: how long a rebalance waits for the processes to stop their tasks with a final checkpoint and rejoin (default 60s)")
	fs.StringVar(&f.Changelog, "changelog", "", "with --checkpoint-dir: also write every state change to Kafka, kafka://host:port/PREFIX (a compacted topic PREFIX-<transform>-changelog per keyed transform); checkpoints then keep no copy of the state, and a restart on another machine rebuilds it from the changelog")
}

// JobFile is the YAML form of the options.
type JobFile struct {
	Mode          string            `yaml:"mode"`
	Bind          map[string]string `yaml:"bind"`
	StateDir      string            `yaml:"state-dir"`
	StateBackend  string            `yaml:"state-backend"`
	Parallelism   int               `yaml:"parallelism"`
	DeadLetter    string            `yaml:"dead-letter"`
	CheckpointDir string            `yaml:"checkpoint-dir"`
	Changelog     string            `yaml:"changelog"`
	From          string            `yaml:"from"`
	To            string            `yaml:"to"`
	Then          map[string]string `yaml:"then"`
	Handover      string            `yaml:"handover"`
	JobID         string            `yaml:"job-id"`
	Memory        string            `yaml:"memory"`
	Group         string            `yaml:"group"`
}

// LoadJobFile reads a job file; unknown keys are errors, so a typo does not
// silently leave an option unset.
func LoadJobFile(path string) (*JobFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: job file: %v", ErrOptions, err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var j JobFile
	if err := dec.Decode(&j); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%w: job file %s: %v", ErrOptions, path, err)
	}
	return &j, nil
}

// Options turns parsed flags (and the job file they name) into Options.
func (f *Flags) Options() (Options, error) {
	var o Options
	o.Bindings = map[string]string{}
	if f.Job != "" {
		j, err := LoadJobFile(f.Job)
		if err != nil {
			return o, err
		}
		o.Mode, o.StateDir, o.StateBackend, o.Parallelism, o.DeadLetter = Mode(j.Mode), j.StateDir, j.StateBackend, j.Parallelism, j.DeadLetter
		o.CheckpointDir, o.Changelog, o.Handover, o.JobID, o.Group = j.CheckpointDir, j.Changelog, j.Handover, j.JobID, j.Group
		if f.Memory == "" {
			f.Memory = j.Memory
		}
		for k, v := range j.Then {
			if o.Then == nil {
				o.Then = map[string]string{}
			}
			o.Then[k] = v
		}
		if f.From == "" {
			f.From = j.From
		}
		if f.To == "" {
			f.To = j.To
		}
		for k, v := range j.Bind {
			o.Bindings[k] = v
		}
	}
	if f.Mode != "" {
		o.Mode = Mode(f.Mode)
	}
	if f.StateDir != "" {
		o.StateDir = f.StateDir
	}
	if f.StateBackend != "" {
		o.StateBackend = f.StateBackend
	}
	if f.Parallelism != 0 {
		o.Parallelism = f.Parallelism
	}
	if f.DeadLetter != "" {
		o.DeadLetter = f.DeadLetter
	}
	if f.CheckpointDir != "" {
		o.CheckpointDir = f.CheckpointDir
	}
	if f.Changelog != "" {
		o.Changelog = f.Changelog
	}
	o.CheckpointInterval = f.CheckpointInterval
	o.ResetState = f.ResetState
	o.Progress = f.Progress
	if o.Progress == 0 {
		o.Progress = -1
	}
	var errs []error
	for _, tv := range []struct {
		flag, v string
		dst     *time.Time
	}{{"--from", f.From, &o.From}, {"--to", f.To, &o.To}} {
		if tv.v == "" {
			continue
		}
		t, err := parseTimeFlag(tv.v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: %s %q: %v", ErrOptions, tv.flag, tv.v, err))
		}
		*tv.dst = t
	}
	if f.Memory != "" {
		m, err := ParseSize(f.Memory)
		if err != nil {
			errs = append(errs, fmt.Errorf("%w: --memory=%q: %v", ErrOptions, f.Memory, err))
		}
		o.Memory = m
	}
	if f.Handover != "" {
		o.Handover = f.Handover
	}
	if f.JobID != "" {
		o.JobID = f.JobID
	}
	if f.Group != "" {
		o.Group = f.Group
	}
	o.GroupSessionTimeout, o.GroupRebalanceTimeout = f.GroupSession, f.GroupRebalance
	for _, b := range f.TableTopics {
		name, uri, ok := strings.Cut(b, "=")
		if !ok || name == "" || uri == "" {
			errs = append(errs, fmt.Errorf("%w: --table-topic %q: want NAME=URI", ErrOptions, b))
			continue
		}
		if o.TableTopics == nil {
			o.TableTopics = map[string]string{}
		}
		o.TableTopics[name] = uri
	}
	for _, b := range f.Then {
		name, uri, ok := strings.Cut(b, "=")
		if !ok || name == "" || uri == "" {
			errs = append(errs, fmt.Errorf("%w: --then %q: want NAME=URI", ErrOptions, b))
			continue
		}
		if o.Then == nil {
			o.Then = map[string]string{}
		}
		o.Then[name] = uri
	}
	for _, b := range f.Bind {
		name, uri, ok := strings.Cut(b, "=")
		if !ok || name == "" || uri == "" {
			errs = append(errs, fmt.Errorf("%w: --bind %q: want NAME=URI", ErrOptions, b))
			continue
		}
		o.Bindings[name] = uri
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.LogLevel)); err != nil {
		errs = append(errs, fmt.Errorf("%w: --log-level=%q: want debug, info, warn or error", ErrOptions, f.LogLevel))
	}
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return o, errors.Join(errs...)
}

// Main is the main function of a pipeline program. It registers the runner's
// flags on pflag.CommandLine (next to the program's own), parses the command
// line, builds the pipeline with build, runs it, prints a summary to stderr
// and exits: 0 on success, 1 on failure (with a one-line error per problem),
// 2 on bad flags.
//
// In stream mode, SIGINT or SIGTERM stops the run and SIGUSR1 drains it; a
// second SIGINT or SIGTERM aborts.
func Main(build func() (*sdk.Pipeline, error)) {
	var f Flags
	f.Register(pflag.CommandLine)
	pflag.Parse()
	os.Exit(runMain(build, &f, os.Stderr))
}

func runMain(build func() (*sdk.Pipeline, error), f *Flags, stderr io.Writer) int {
	opts, err := f.Options()
	if err == nil {
		opts.EnsureDefaults()
		err = opts.Validate()
	}
	if err != nil {
		printErr(stderr, err)
		return 2
	}
	p, err := build()
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := make(chan struct{})
	drain := make(chan struct{})
	opts.Stop, opts.Drain = stop, drain
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	go func() {
		stopping, draining := false, false
		for s := range sigs {
			switch {
			case s == syscall.SIGUSR1 && !draining && !stopping:
				draining = true
				opts.Logger.Info("drain requested: stop reading, fire every window, flush sinks")
				close(drain)
			case s != syscall.SIGUSR1 && !stopping:
				stopping = true
				opts.Logger.Info("stop requested; send it again to abort")
				close(stop)
			case s != syscall.SIGUSR1:
				opts.Logger.Warn("aborting")
				cancel()
				return
			}
		}
	}()
	res, err := Run(ctx, p, opts)
	if res != nil {
		PrintSummary(stderr, res, err)
	}
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	return 0
}

// printErr prints each joined error on its own line, prefixed "weir: ".
func printErr(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.TrimSpace(line) != "" {
			fmt.Fprintf(w, "weir: %s\n", line)
		}
	}
}

// parseTimeFlag reads an RFC 3339 time, a date (midnight UTC) or epoch
// milliseconds.
func parseTimeFlag(s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, errors.New("want an RFC 3339 time, a date (2026-11-01) or epoch milliseconds")
}

// PrintSummary writes what a run read, wrote, dropped as late and
// dead-lettered.
func PrintSummary(w io.Writer, r *Result, err error) {
	status := "finished"
	switch {
	case err != nil && len(r.PartlyCommitted) > 0:
		status = "FAILED while committing (committed: " + strings.Join(r.PartlyCommitted, ", ") + ")"
	case err != nil:
		status = "FAILED (output not committed)"
	case r.Drained:
		status = "drained"
	case r.Stopped:
		status = "stopped"
	}
	fmt.Fprintf(w, "\n%s %s in %s\n", r.Mode, status, r.Elapsed.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	rate := func(n int64) string {
		s := r.Elapsed.Seconds()
		if s <= 0 {
			return ""
		}
		return fmt.Sprintf("%.0f/s", float64(n)/s)
	}
	for _, k := range sortedKeys(r.Read) {
		fmt.Fprintf(tw, "  read\t%s\t%d\t%s\t\n", k, r.Read[k], rate(r.Read[k]))
	}
	for _, k := range sortedKeys(r.Written) {
		if k == "dead-letter" {
			continue
		}
		fmt.Fprintf(tw, "  written\t%s\t%d\t\t\n", k, r.Written[k])
	}
	var late int64
	for _, k := range sortedKeys(r.Late) {
		if r.Late[k] > 0 {
			fmt.Fprintf(tw, "  late, dropped at\t%s\t%d\t\t\n", k, r.Late[k])
			late += r.Late[k]
		}
	}
	if late == 0 {
		fmt.Fprintf(tw, "  late, dropped\t\t0\t\t\n")
	}
	fmt.Fprintf(tw, "  dead-lettered\t\t%d\t\t\n", r.DeadLettered)
	if r.OutOfRange > 0 {
		fmt.Fprintf(tw, "  outside --from/--to\t\t%d\t\t\n", r.OutOfRange)
	}
	tw.Flush()
}

func sortedKeys(m map[string]int64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
