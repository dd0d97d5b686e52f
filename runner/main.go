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

	"github.com/weir-dev/weir/sdk"
)

// Flags are the runner's command-line flags: one per option (config.go),
// and --job and --print-job. Register them on a flag set, parse, then turn
// them into Options.
type Flags struct {
	// LookupEnv reads the WEIR_* environment variables; nil:
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)

	job      string
	printJob bool
	values   map[string]*flagValue // by option name
}

// flagValue holds what the command line gave an option, as text: Options
// parses it, so that a bad value is reported with the others.
type flagValue struct {
	opt  *option
	vals []string
}

func (v *flagValue) String() string {
	if v.opt.kind == kindMap || v.opt.kind == kindBool || v.opt.defFunc != nil {
		return "" // a machine's default is said in the usage
	}
	return v.opt.def
}

func (v *flagValue) Set(s string) error {
	if v.opt.kind == kindMap {
		if err := repeatedName(v.vals, s); err != nil {
			return err
		}
		v.vals = append(v.vals, s)
	} else {
		v.vals = []string{s}
	}
	return nil
}

func (v *flagValue) Type() string { return v.opt.kind.typeName() }

// Register adds the runner's flags to fs.
func (f *Flags) Register(fs *pflag.FlagSet) {
	fs.StringVar(&f.job, "job", "", "YAML job file of options (one key per option, named as its flag); the environment (WEIR_<OPTION>) overrides it, and flags override both")
	fs.BoolVar(&f.printJob, "print-job", false, "print the effective options as a job file and exit")
	f.values = map[string]*flagValue{}
	for _, opt := range options {
		v := &flagValue{opt: opt}
		f.values[opt.name] = v
		fl := fs.VarPF(v, opt.name, "", opt.usage)
		if opt.kind == kindBool {
			fl.NoOptDefVal = "true"
		}
	}
}

// Options turns the job file, the environment and the parsed flags, in
// that order, into Options. It reports every value that does not parse.
func (f *Flags) Options() (Options, error) {
	var o Options
	var errs []error
	if f.job != "" {
		if err := readJobFile(f.job, &o); err != nil {
			errs = append(errs, err)
		}
	}
	s := optionSetter{o: &o}
	lookup := f.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	s.fromEnv(lookup)
	for _, opt := range options {
		for _, v := range f.values[opt.name].vals {
			s.set(opt, "--"+opt.name, v)
		}
	}
	errs = append(errs, s.errs...)
	level, err := o.logLevel()
	if err != nil {
		errs = append(errs, err)
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
// second SIGINT or SIGTERM aborts. A run that has not ended --stop-timeout
// after the first signal, or 5s after the second, is abandoned: Main says
// what it abandoned and exits 1 (stop.go).
func Main(build func() (*sdk.Pipeline, error)) {
	var f Flags
	f.Register(pflag.CommandLine)
	pflag.Parse()
	os.Exit(runMain(build, &f, os.Stdout, os.Stderr))
}

func runMain(build func() (*sdk.Pipeline, error), f *Flags, stdout, stderr io.Writer) int {
	opts, err := f.Options()
	if err == nil {
		opts.EnsureDefaults()
		err = opts.Validate()
	}
	if err != nil {
		printErr(stderr, err)
		return 2
	}
	if f.printJob {
		b, err := opts.JobFile()
		if err != nil {
			printErr(stderr, err)
			return 1
		}
		stdout.Write(b)
		return 0
	}
	p, err := build()
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	act := newActivity()
	ctx = withActivity(ctx, act)
	stop := make(chan struct{})
	drain := make(chan struct{})
	opts.Stop, opts.Drain = stop, drain
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	giveUp := make(chan string, 1)
	ss := &stopSignals{log: opts.Logger, stopTimeout: max(opts.StopTimeout, 0), abortGrace: abortGrace,
		stop: stop, drain: drain, abort: cancel, giveUp: giveUp}
	done, watching := make(chan struct{}), make(chan struct{})
	go func() { defer close(watching); ss.watch(sigs, done) }()
	defer func() { close(done); <-watching }()

	type result struct {
		res *Result
		err error
	}
	ran := make(chan result, 1)
	go func() {
		res, err := Run(ctx, p, opts)
		ran <- result{res, err}
	}()
	var (
		failure error
		failed  <-chan time.Time // abortGrace after the failure
	)
	for {
		select {
		case r := <-ran:
			if r.res != nil {
				PrintSummary(stderr, r.res, r.err)
			}
			if r.err != nil {
				printErr(stderr, r.err)
				return 1
			}
			return 0
		case why := <-giveUp:
			// The run is stuck: it is left to die with the process.
			fmt.Fprintf(stderr, "weir: gave up on the run: %s: %s\n", why, act.abandoned())
			return 1
		case failure = <-act.failed:
			failed = time.After(abortGrace)
		case <-failed:
			fmt.Fprintf(stderr, "weir: gave up on the run, which did not end within %s of its failure: %v: %s\n", abortGrace, failure, act.abandoned())
			return 1
		}
	}
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
