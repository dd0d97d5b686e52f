package runner

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/sdk"
)

// Every field of Options is an option of the table or a runtime field, and
// every option sets a field of a type its kind can hold: a field added
// without an option would have no flag, no job-file key and no variable.
func TestOptionTableCoversOptions(t *testing.T) {
	typ := reflect.TypeFor[Options]()
	seen := map[string]bool{}
	for _, opt := range options {
		f, ok := typ.FieldByName(opt.field)
		if !ok {
			t.Errorf("--%s sets Options.%s, which does not exist", opt.name, opt.field)
			continue
		}
		if seen[opt.field] {
			t.Errorf("Options.%s has two options", opt.field)
		}
		seen[opt.field] = true
		want := map[kind]reflect.Kind{kindString: reflect.String, kindInt: reflect.Int, kindBool: reflect.Bool, kindDuration: reflect.Int64,
			kindInterval: reflect.Int64, kindTime: reflect.Struct, kindSize: reflect.Int64, kindMap: reflect.Map}[opt.kind]
		if f.Type.Kind() != want {
			t.Errorf("--%s is a %s, but Options.%s is a %s", opt.name, opt.kind.typeName(), opt.field, f.Type)
		}
		if def := opt.defaultValue(); def != "" {
			var o Options
			if err := opt.set(&o, def); err != nil {
				t.Errorf("--%s: the default %q does not parse: %v", opt.name, def, err)
			}
		}
	}
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		if !seen[name] && !slices.Contains(runtimeFields, name) {
			t.Errorf("Options.%s has no option in the table (config.go) and is not a runtime field", name)
		}
	}
}

func parseArgs(t *testing.T, env map[string]string, args ...string) (*Flags, Options, error) {
	t.Helper()
	f := &Flags{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	o, err := f.Options()
	return f, o, err
}

// comparable returns the settings of o, without the runtime fields.
func settings(o Options) Options {
	o.Logger, o.Drain, o.Stop, o.Clock = nil, nil, nil, nil
	return o
}

// The job file, then the environment, then the flags: each overrides the
// one before, and the bindings merge by name.
func TestOptionSources(t *testing.T) {
	job := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(job, []byte(`
mode: stream
parallelism: 3
checkpoint-interval: 30s
reset-state: true
progress: off
group-session-timeout: 20s
group: g
checkpoint-dir: /ckpt
memory: 1GiB
table-topic:
  profiles: kafka://b:9092/profiles
bind:
  a: file:///job/a
  b: file:///job/b
  c: file:///job/c
`), 0o644)
	env := map[string]string{"WEIR_PARALLELISM": "5", "WEIR_BIND": "b=file:///env/b c=file:///env/c", "WEIR_MEMORY": "2GiB"}
	_, o, err := parseArgs(t, env, "--job", job, "--bind", "c=file:///flag/c", "--memory", "512MiB")
	if err != nil {
		t.Fatal(err)
	}
	want := Options{Mode: Stream, Parallelism: 5, CheckpointInterval: 30 * time.Second, ResetState: true, Progress: -1,
		GroupSessionTimeout: 20 * time.Second, Group: "g", CheckpointDir: "/ckpt", Memory: 512 << 20,
		TableTopics: map[string]string{"profiles": "kafka://b:9092/profiles"},
		Bindings:    map[string]string{"a": "file:///job/a", "b": "file:///env/b", "c": "file:///flag/c"}}
	if got := settings(o); !reflect.DeepEqual(got, want) {
		t.Errorf("options\n got %+v\nwant %+v", got, want)
	}
}

// Values that do not parse are all reported, each naming where it came
// from as the user wrote it.
func TestOptionSourceErrors(t *testing.T) {
	job := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(job, []byte("parallelism: many\nbind: file:///x\nparalelism: 3\n"), 0o644)
	_, _, err := parseArgs(t, map[string]string{"WEIR_CHECKPOINT_INTERVAL": "soon"}, "--job", job, "--memory", "plenty", "--reset-state=maybe")
	if !errors.Is(err, ErrOptions) {
		t.Fatalf("%v, want ErrOptions", err)
	}
	for _, want := range []string{
		`job.yaml:1: parallelism "many": want an integer`,
		`job.yaml:2: bind: want a mapping of NAME: URI`,
		`job.yaml:3: unknown key "paralelism"`,
		`WEIR_CHECKPOINT_INTERVAL "soon": want a duration`,
		`--memory "plenty": want a size`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}

// Validate's errors name the option two ways, for the command line and
// for programs that set Options.
func TestOptionErrorNamesTheField(t *testing.T) {
	o := Options{CheckpointInterval: -time.Second, Mode: Stream}
	o.EnsureDefaults()
	var oe *OptionError
	err := o.Validate()
	if !errors.As(err, &oe) || oe.Field != "CheckpointInterval" || oe.Option != "checkpoint-interval" || !errors.Is(err, ErrOptions) {
		t.Fatalf("%v: want an OptionError for CheckpointInterval", err)
	}
	if !strings.Contains(err.Error(), "--checkpoint-interval") || !strings.Contains(err.Error(), "Options.CheckpointInterval") {
		t.Errorf("%v: want the flag and the field named", err)
	}
}

// --print-job prints the effective options as a job file; a run from that
// file has the same options, and gives the same output as the command line
// it was printed from.
func TestPrintJobRoundTrips(t *testing.T) {
	dir := t.TempDir()
	memory.NewBounded("printjob-in", "a", "b", "a")
	args := []string{"--mode", "backfill", "--bind", "in=mem://printjob-in", "--bind", "out=" + filepath.Join(dir, "out.jsonl"),
		"--parallelism", "1", "--progress", "0", "--memory", "1536MiB",
		"--state-dir", filepath.Join(dir, "state-{job}"), "--job-id", "j1", "--log-level", "warn", "--batch-size", "64"}
	env := map[string]string{"WEIR_STATE_BACKEND": "memory", "WEIR_DEAD_LETTER": filepath.Join(dir, "dead.jsonl")}
	f, want, err := parseArgs(t, env, append(args, "--print-job")...)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := runMain(nil, f, &stdout, &stderr); code != 0 {
		t.Fatalf("--print-job exited %d: %s", code, stderr.String())
	}
	t.Logf("printed:\n%s", stdout.String())
	want.EnsureDefaults()
	job := filepath.Join(dir, "job.yaml")
	if err := os.WriteFile(job, stdout.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	f2, got, err := parseArgs(t, nil, "--job", job)
	if err != nil {
		t.Fatal(err)
	}
	got.EnsureDefaults()
	if !reflect.DeepEqual(settings(got), settings(want)) {
		t.Fatalf("from the printed job file\n got %+v\nwant %+v", settings(got), settings(want))
	}

	// The printed job runs as the command line it came from would.
	build := func() (*sdk.Pipeline, error) {
		p := sdk.NewPipeline()
		sdk.Write(sdk.Count(sdk.KeyBy(sdk.Read[string](p, "in"), func(s string) string { return s })), "out")
		return p, p.Validate()
	}
	stderr.Reset()
	if code := runMain(build, f2, io.Discard, &stderr); code != 0 {
		t.Fatalf("the printed job exited %d: %s", code, stderr.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "state-j1")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the memory backend from the environment was lost on the way: a state directory was made (%v)", err)
	}
	out, err := os.ReadFile(filepath.Join(dir, "out.jsonl"))
	if err != nil || strings.Count(string(out), "\n") != 2 {
		t.Errorf("output %q, %v: want two counts", out, err)
	}
}

// Every option, set to a value of its kind, survives a job file.
func TestJobFileRoundTripsEveryOption(t *testing.T) {
	sample := map[kind][]string{kindString: {"x: y # not a comment"}, kindInt: {"7"}, kindBool: {"true"}, kindDuration: {"1m30s"},
		kindInterval: {"off"}, kindTime: {"2026-11-02T06:00:00.5+02:00"}, kindSize: {"1537KiB"},
		kindMap: {"a=kafka://b:9092,c:9092/t?until=latest", "b=file:///x y/z"}}
	var want Options
	for _, opt := range options {
		for _, v := range sample[opt.kind] {
			if err := opt.set(&want, v); err != nil {
				t.Fatalf("--%s %q: %v", opt.name, v, err)
			}
		}
	}
	b, err := want.JobFile()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(path, b, 0o644)
	got, err := ReadJobFile(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back\n got %+v\nwant %+v\nfrom\n%s", got, want, b)
	}
}
