package runner_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/weir-dev/weir/runner"
)

func parse(t *testing.T, args ...string) (runner.Options, error) {
	t.Helper()
	var f runner.Flags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f.Options()
}

func TestJobFileAndFlags(t *testing.T) {
	dir := t.TempDir()
	job := filepath.Join(dir, "job.yaml")
	os.WriteFile(job, []byte(`
mode: stream
parallelism: 3
state-dir: /tmp/state
dead-letter: file:///tmp/dead.jsonl
bind:
  pageviews: file:///data/views/
  counts: file:///out/counts.parquet
`), 0o644)
	o, err := parse(t, "--job", job, "--bind", "counts=discard://", "--parallelism", "2")
	if err != nil {
		t.Fatal(err)
	}
	if o.Mode != runner.Stream || o.Parallelism != 2 || o.StateDir != "/tmp/state" || o.DeadLetter != "file:///tmp/dead.jsonl" {
		t.Errorf("options %+v", o)
	}
	if o.Bindings["pageviews"] != "file:///data/views/" || o.Bindings["counts"] != "discard://" {
		t.Errorf("bindings %v: flags must override the job file", o.Bindings)
	}

	os.WriteFile(job, []byte("mode: stream\nparalelism: 3\n"), 0o644)
	if _, err := parse(t, "--job", job); !errors.Is(err, runner.ErrOptions) || !strings.Contains(err.Error(), "paralelism") {
		t.Errorf("a misspelt key: got %v, want an error naming it", err)
	}
	if _, err := parse(t, "--bind", "novalue"); !errors.Is(err, runner.ErrOptions) || !strings.Contains(err.Error(), `--bind "novalue": want NAME=URI`) {
		t.Errorf("bad --bind: got %v", err)
	}
}

func TestFromToFlags(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"2026-11-01", "2026-11-02T06:00:00+02:00", "2026-11-01T00:00:00Z 2026-11-02T04:00:00Z"},
		{"1700000000000", "", "2023-11-14T22:13:20Z 0001-01-01T00:00:00Z"},
	} {
		args := []string{"--from", tc.from}
		if tc.to != "" {
			args = append(args, "--to", tc.to)
		}
		o, err := parse(t, args...)
		if got := o.From.Format(time.RFC3339) + " " + o.To.Format(time.RFC3339); err != nil || got != tc.want {
			t.Errorf("--from %s --to %s: %s, %v; want %s", tc.from, tc.to, got, err, tc.want)
		}
	}
	if _, err := parse(t, "--from", "yesterday"); !errors.Is(err, runner.ErrOptions) || !strings.Contains(err.Error(), `--from "yesterday"`) {
		t.Errorf("a bad --from: %v", err)
	}
}

func TestMemoryFlag(t *testing.T) {
	o, err := parse(t, "--memory", "2G")
	if err != nil || o.Memory != 2<<30 {
		t.Fatalf("--memory 2G: %d, %v", o.Memory, err)
	}
	if _, err := parse(t, "--memory", "plenty"); !errors.Is(err, runner.ErrOptions) || !strings.Contains(err.Error(), "--memory") {
		t.Fatalf("--memory plenty: %v, want an error naming --memory", err)
	}
}

// The same name twice in one source (flags, a variable, a job file) is an
// error naming it, not the last one winning; a later source may override a
// name.
func TestRepeatedBindingName(t *testing.T) {
	var f runner.Flags
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	f.Register(fs)
	err := fs.Parse([]string{"--bind", "in=a.jsonl", "--bind", "out=o/", "--bind", "in=b.jsonl"})
	if err == nil || !strings.Contains(err.Error(), "in is given twice (in=a.jsonl, then in=b.jsonl)") {
		t.Errorf("flags: got %v, want the repeated name", err)
	}

	env := map[string]string{"WEIR_BIND": "in=a.jsonl in=b.jsonl"}
	g := runner.Flags{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	gs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	g.Register(gs)
	if err := gs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Options(); !errors.Is(err, runner.ErrOptions) || !strings.Contains(err.Error(), "WEIR_BIND: in is given twice") {
		t.Errorf("environment: got %v, want the repeated name", err)
	}

	job := filepath.Join(t.TempDir(), "job.yaml")
	os.WriteFile(job, []byte("bind:\n  in: a.jsonl\n  in: b.jsonl\nmode: stream\nmode: backfill\n"), 0o644)
	_, err = runner.ReadJobFile(job)
	if !errors.Is(err, runner.ErrOptions) || !strings.Contains(err.Error(), "job.yaml:3: bind: in is given twice") || !strings.Contains(err.Error(), "job.yaml:5: mode is given twice (first at line 4)") {
		t.Errorf("job file: got %v, want both repeated keys", err)
	}

	env = map[string]string{"WEIR_BIND": "in=a.jsonl out=o/"}
	h := runner.Flags{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	hs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	h.Register(hs)
	if err := hs.Parse([]string{"--bind", "in=b.jsonl"}); err != nil {
		t.Fatal(err)
	}
	o, err := h.Options()
	if err != nil || o.Bindings["in"] != "b.jsonl" || o.Bindings["out"] != "o/" {
		t.Errorf("a flag over the environment: %v, %v; want in=b.jsonl, out=o/", o.Bindings, err)
	}
}
