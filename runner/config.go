package runner

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/weir-dev/weir/state"
)

// Configuration has one source of truth: the table of options below. Each
// option is one field of Options, and its name is the command-line flag
// (--NAME), the job file's key (NAME:) and the environment variable
// (WEIR_NAME, in capitals with underscores). Its default is written here
// once: EnsureDefaults applies it, --help shows it, and --print-job
// prints it. Flags (main.go) override the environment, which overrides the
// job file (jobfile.go), which overrides the defaults; the bindings and the
// other NAME=URI maps merge name by name in the same order.

// option is one setting of a run.
type option struct {
	// name is the flag without its dashes, the job file's key, and the
	// environment variable's name after WEIR_.
	name string
	// field is the Options field it sets.
	field string
	// def is the default, in the option's syntax; "" for none. defFunc
	// computes it where it depends on the machine.
	def     string
	defFunc func() string
	// when, if set, says whether the default applies to o (a group's
	// timeouts only with a group).
	when func(o *Options) bool
	// kind is how values are read and written.
	kind kind
	// usage is the help text.
	usage string
}

// kind is the syntax of an option's values.
type kind uint8

const (
	kindString   kind = iota + 1
	kindInt           // a decimal integer
	kindBool          // true or false
	kindDuration      // a Go duration: 10s, 1m30s
	kindInterval      // a duration, or off (0 or negative: none)
	kindTime          // RFC 3339, a date or epoch milliseconds
	kindSize          // 512MiB, 2GiB, 2G
	kindMap           // NAME=VALUE, repeatable
)

// typeName is the kind's name in --help.
func (k kind) typeName() string {
	return [...]string{kindString: "string", kindInt: "int", kindBool: "bool", kindDuration: "duration", kindInterval: "duration|off",
		kindTime: "time", kindSize: "size", kindMap: "NAME=URI"}[k]
}

// options is the table of every option, in the order --help and
// --print-job list them.
var options = []*option{
	{name: "mode", field: "Mode", kind: kindString, def: string(Backfill),
		usage: "backfill (bounded input, fire everything, exit), stream (run until stopped or drained), or backfill-then-stream (history from --bind, then live from --then, one state)"},
	{name: "bind", field: "Bindings", kind: kindMap,
		usage: "bind a logical source or sink to a URI: NAME=URI (repeatable)"},
	{name: "dead-letter", field: "DeadLetter", kind: kindString,
		usage: "URI of the sink for unreadable records (default: count and log them)"},
	{name: "job-id", field: "JobID", kind: kindString,
		usage: "the job's id: {job} in --bind, --state-dir, --checkpoint-dir, --changelog and --dead-letter becomes it, and the state and checkpoint directories are marked as this job's (a replay then cannot touch production's)"},
	{name: "from", field: "From", kind: kindTime,
		usage: "only event times at or after this: RFC 3339, a date (2026-11-01) or epoch milliseconds; sources skip files, partitions and Parquet row groups before it"},
	{name: "to", field: "To", kind: kindTime,
		usage: "only event times before this (same forms as --from)"},
	{name: "state-dir", field: "StateDir", kind: kindString,
		usage: "directory of the Pebble state backend (default: a temporary directory)"},
	{name: "state-backend", field: "StateBackend", kind: kindString, def: "pebble",
		usage: "pebble or memory"},
	{name: "reset-state", field: "ResetState", kind: kindBool,
		usage: "empty --state-dir first if it holds state from an earlier run"},
	{name: "parallelism", field: "Parallelism", kind: kindInt, defFunc: defaultParallelism,
		usage: "workers per keyed stage and readers per source (default: the number of CPUs)"},
	{name: "memory", field: "Memory", kind: kindSize,
		usage: "the memory the job may use, e.g. 2GiB: a quarter goes to the keyed workers' state caches, an eighth to Pebble's block cache, and the Go heap is held under the rest with a lazier garbage collector (unless GOMEMLIMIT or GOGC are set) (default: no budget; Go's defaults and 32 MiB of state cache per keyed worker)"},
	{name: "checkpoint-dir", field: "CheckpointDir", kind: kindString,
		usage: "stream mode: keep checkpoints here (a path, file:// or hdfs:// URI) and resume from the newest"},
	{name: "checkpoint-interval", field: "CheckpointInterval", kind: kindDuration, def: "10s", when: checkpointing,
		usage: "time between checkpoints"},
	{name: "changelog", field: "Changelog", kind: kindString,
		usage: "with --checkpoint-dir: also write every state change to Kafka, kafka://host:port/PREFIX (a compacted topic PREFIX-<transform>-changelog per keyed transform); checkpoints then keep no copy of the state, and a restart on another machine rebuilds it from the changelog"},
	{name: "table-topic", field: "TableTopics", kind: kindMap,
		usage: "a table bound to a snapshot also loads, then follows, a compacted topic: NAME=kafka://... (repeatable)"},
	{name: "then", field: "Then", kind: kindMap,
		usage: "backfill-then-stream: the live binding of a source once its history is read: NAME=kafka://... (repeatable)"},
	{name: "handover", field: "Handover", kind: kindString,
		usage: "backfill-then-stream: where the history ends: an event time, or the URI of a handover file (weir cp writes _kafka-offsets.json beside a topic it copies)"},
	{name: "group", field: "Group", kind: kindString,
		usage: "stream mode: scale the job out over this Kafka consumer group: every process started with it runs the tasks the group assigns it (task p reads partition p of each source topic, with its own state, checkpoints under a shared --checkpoint-dir, and transactions); a task that moves resumes from its latest checkpoint"},
	{name: "group-session-timeout", field: "GroupSessionTimeout", kind: kindDuration, def: "45s", when: grouped,
		usage: "with --group: how long the group waits for a process that stopped answering before its tasks move to the others"},
	{name: "group-rebalance-timeout", field: "GroupRebalanceTimeout", kind: kindDuration, def: "1m0s", when: grouped,
		usage: "with --group: how long a rebalance waits for the processes to stop their tasks with a final checkpoint and rejoin"},
	{name: "progress", field: "Progress", kind: kindInterval, def: "5s",
		usage: "interval between progress logs (off, 0 or negative: none)"},
	{name: "stop-timeout", field: "StopTimeout", kind: kindInterval, def: "1m0s",
		usage: "how long after a SIGINT, SIGTERM or SIGUSR1 a run that has not ended (stuck in I/O) is abandoned: the process exits 1 saying what it abandoned (off: wait however long; a second SIGINT or SIGTERM gives it 5s)"},
	{name: "log-level", field: "LogLevel", kind: kindString, def: "info",
		usage: "debug, info, warn or error"},
	{name: "batch-size", field: "BatchSize", kind: kindInt,
		usage: "elements per shuffle batch (default: the engine's)"},
	{name: "queue-length", field: "QueueLength", kind: kindInt,
		usage: "batches each worker's input queue holds before its senders wait (default: the engine's)"},
}

// runtimeFields are the Options fields that are not settings but a
// program's own: they have no flag, key or variable.
var runtimeFields = []string{"Logger", "Drain", "Stop", "Clock"}

func defaultParallelism() string {
	return strconv.Itoa(min(runtime.NumCPU(), state.DefaultKeyGroups))
}

func checkpointing(o *Options) bool { return o.CheckpointDir != "" }

func grouped(o *Options) bool { return o.Group != "" }

// lookupOption returns the option of that name, or nil.
func lookupOption(name string) *option {
	for _, opt := range options {
		if opt.name == name {
			return opt
		}
	}
	return nil
}

// envName is the option's environment variable.
func (opt *option) envName() string {
	return "WEIR_" + strings.ToUpper(strings.ReplaceAll(opt.name, "-", "_"))
}

// String names the option for errors: the flag, and the Options field
// that programs embedding Weir set.
func (opt *option) String() string { return "--" + opt.name + " (Options." + opt.field + ")" }

// defaultValue is the option's default, or "".
func (opt *option) defaultValue() string {
	if opt.defFunc != nil {
		return opt.defFunc()
	}
	return opt.def
}

func (opt *option) value(o *Options) reflect.Value {
	return reflect.ValueOf(o).Elem().FieldByName(opt.field)
}

// set parses s into the option's field of o. A map option's s is one
// NAME=VALUE, added to the map.
func (opt *option) set(o *Options, s string) error {
	v := opt.value(o)
	switch opt.kind {
	case kindString:
		v.SetString(s)
	case kindInt:
		n, err := strconv.Atoi(s)
		if err != nil {
			return errors.New("want an integer")
		}
		v.SetInt(int64(n))
	case kindBool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errors.New("want true or false")
		}
		v.SetBool(b)
	case kindDuration, kindInterval:
		if opt.kind == kindInterval && (s == "off" || s == "none") {
			v.SetInt(-1)
			return nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return errors.New("want a duration such as 10s or 1m30s")
		}
		if opt.kind == kindInterval && d <= 0 {
			d = -1 // none
		}
		v.SetInt(int64(d))
	case kindTime:
		t, err := parseTimeFlag(s)
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(t))
	case kindSize:
		n, err := ParseSize(s)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case kindMap:
		name, val, ok := strings.Cut(s, "=")
		if !ok || name == "" || val == "" {
			return errors.New("want NAME=URI")
		}
		if v.IsNil() {
			v.Set(reflect.ValueOf(map[string]string{}))
		}
		v.SetMapIndex(reflect.ValueOf(name), reflect.ValueOf(val))
	}
	return nil
}

// format returns the option's value in o in its own syntax (a map's as
// NAME=VALUE, sorted), and whether it is set (not the zero value).
func (opt *option) format(o *Options) ([]string, bool) {
	v := opt.value(o)
	if v.IsZero() {
		return nil, false
	}
	switch opt.kind {
	case kindInt:
		return []string{strconv.FormatInt(v.Int(), 10)}, true
	case kindBool:
		return []string{strconv.FormatBool(v.Bool())}, true
	case kindDuration, kindInterval:
		d := time.Duration(v.Int())
		if opt.kind == kindInterval && d < 0 {
			return []string{"off"}, true
		}
		return []string{d.String()}, true
	case kindTime:
		return []string{v.Interface().(time.Time).UTC().Format(time.RFC3339Nano)}, true
	case kindSize:
		return []string{formatSize(v.Int())}, true
	case kindMap:
		m := v.Interface().(map[string]string)
		var out []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			out = append(out, k+"="+m[k])
		}
		return out, len(out) > 0
	}
	return []string{v.String()}, true
}

// formatSize writes n bytes exactly, in the largest binary unit that
// divides it (2GiB, 1536KiB), so that ParseSize reads it back the same.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.name
		}
	}
	return strconv.FormatInt(n, 10)
}

// EnsureDefaults fills unset options with their defaults, and a nil Logger
// with slog.Default().
func (o *Options) EnsureDefaults() {
	for _, opt := range options {
		def := opt.defaultValue()
		if def == "" || !opt.value(o).IsZero() || (opt.when != nil && !opt.when(o)) {
			continue
		}
		if err := opt.set(o, def); err != nil {
			panic(fmt.Sprintf("runner: the default of --%s, %q, does not parse: %v", opt.name, def, err))
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// optionSetter sets options of o from values given as text, and gathers an
// error for every value that does not parse, naming where it came from
// (`--memory "plenty"`, `WEIR_MEMORY "plenty"`, `job file job.yaml: memory
// "plenty"`).
type optionSetter struct {
	o    *Options
	errs []error
}

// set sets opt from one value; where names it for errors.
func (s *optionSetter) set(opt *option, where, value string) {
	if err := opt.set(s.o, value); err != nil {
		s.errs = append(s.errs, fmt.Errorf("%w: %s %q: %v", ErrOptions, where, value, err))
	}
}

// fromEnv sets every option whose environment variable lookup finds. A
// map's variable holds NAME=VALUE pairs separated by spaces or newlines.
func (s *optionSetter) fromEnv(lookup func(string) (string, bool)) {
	for _, opt := range options {
		v, ok := lookup(opt.envName())
		if !ok {
			continue
		}
		if opt.kind != kindMap {
			s.set(opt, opt.envName(), v)
			continue
		}
		pairs := strings.Fields(v)
		for i, pair := range pairs {
			if err := repeatedName(pairs[:i], pair); err != nil {
				s.errs = append(s.errs, fmt.Errorf("%w: %s: %v", ErrOptions, opt.envName(), err))
				continue
			}
			s.set(opt, opt.envName(), pair)
		}
	}
}

func (s *optionSetter) err() error { return errors.Join(s.errs...) }

// repeatedName returns an error when pair (NAME=VALUE) names what one of
// the pairs before it, from the same source, names already: the last one
// would win without a word. A later source (flags over the job file) may
// override a name; one source may not give it twice.
func repeatedName(before []string, pair string) error {
	name, _, _ := strings.Cut(pair, "=")
	for _, prev := range before {
		if p, _, _ := strings.Cut(prev, "="); p == name {
			return fmt.Errorf("%s is given twice (%s, then %s)", name, prev, pair)
		}
	}
	return nil
}
