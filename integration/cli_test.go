package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/io/connector"
)

// bin holds the binaries built once for the CLI tests.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "weir-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command("go", "build", "-o", dir+"/", "github.com/weir-dev/weir/cmd/weir", "github.com/weir-dev/weir/examples/profileviews")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(1)
	}
	bin = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type cliResult struct {
	code           int
	stdout, stderr string
}

func runCLI(t *testing.T, name string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return cliResult{code, out.String(), errb.String()}
}

// weirLines returns the stderr lines that are errors ("weir: ...").
func weirLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "weir: ") {
			out = append(out, l)
		}
	}
	return out
}

func TestCLIEndToEnd(t *testing.T) {
	dir := t.TempDir()
	views := filepath.Join(dir, "views.parquet")
	r := runCLI(t, "weir", "gen", "pageviews", "--pageviews", views, "--events", "20000", "--profiles", "200", "--span", "12h", "--seed", "3")
	if r.code != 0 {
		t.Fatalf("weir gen: %d %s", r.code, r.stderr)
	}
	want, wantLate := refProfileViews(readParquet[events.PageViewEvent](t, views), pipelines.ProfileViewsConfig{Window: 30 * time.Minute, OutOfOrderness: 5 * time.Minute})
	for _, mode := range []string{"backfill", "stream"} {
		t.Run(mode, func(t *testing.T) {
			counts := filepath.Join(dir, mode+"-counts.jsonl")
			late := filepath.Join(dir, mode+"-late.parquet")
			r := runCLI(t, "profileviews", "--mode", mode, "--window", "30m", "--parallelism", "2", "--progress", "0",
				"--bind", "pageviews=file://"+views, "--bind", "counts="+counts, "--bind", "late="+late)
			if r.code != 0 {
				t.Fatalf("profileviews: exit %d: %s", r.code, r.stderr)
			}
			for _, s := range []string{"read  pageviews  20000", "written     counts"} {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("summary lacks %q:\n%s", s, r.stderr)
				}
			}
			sameRows(t, "counts", readJSONL[pipelines.ProfileViewCount](t, counts), want)
			sameRows(t, "late", readParquet[events.PageViewEvent](t, late), wantLate)
		})
	}
	r = runCLI(t, "weir", "cat", filepath.Join(dir, "backfill-counts.jsonl"), "--sort", "-count", "--limit", "3")
	if r.code != 0 || len(strings.Split(strings.TrimSpace(r.stdout), "\n")) != 4 || !strings.Contains(r.stdout, "profileId") {
		t.Errorf("weir cat: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestCLIBadInput(t *testing.T) {
	dir := t.TempDir()
	good := `{"eventType":"PageViewEvent","timestamp":1413215518000,"viewerId":1,"sessionId":"s","pageKey":"profile-view","viewedProfileId":4321,"trackingKey":"t"}`
	in := filepath.Join(dir, "views.jsonl")
	os.WriteFile(in, []byte(strings.Join([]string{
		good,
		`{"eventType":"PageViewEvent","timestamp":`,
		`{"eventType":"PageViewEvent","timestamp":1413215518000,"viewerId":"one"}`,
		`{"eventType":"PageViewEvent","viewerId":1,"pageKey":"profile-view","viewedProfileId":4321}`,
		good,
	}, "\n")), 0o644)
	out := func(n string) string { return "--bind=" + n + "=file://" + filepath.Join(dir, n+".jsonl") }

	t.Run("malformed records go to the dead-letter sink", func(t *testing.T) {
		dead := filepath.Join(dir, "dead.jsonl")
		r := runCLI(t, "profileviews", "--bind", "pageviews="+in, out("counts"), out("late"), "--dead-letter", dead, "--progress", "0")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		b, _ := os.ReadFile(dead)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 3 || !strings.Contains(lines[0], "views.jsonl:2") || !strings.Contains(lines[1], `viewerId`) || !strings.Contains(lines[2], "missing timestamp") {
			t.Errorf("dead letters:\n%s", b)
		}
		if !regexp.MustCompile(`dead-lettered\s+3`).MatchString(r.stderr) {
			t.Errorf("summary does not count the dead letters:\n%s", r.stderr)
		}
		if c := readJSONL[pipelines.ProfileViewCount](t, filepath.Join(dir, "counts.jsonl")); len(c) != 1 || c[0].Count != 2 {
			t.Errorf("counts: %+v, want one row of 2", c)
		}
	})

	// A Parquet file whose viewerId column is a string.
	type wrongView struct {
		EventType string `json:"eventType"`
		Timestamp int64  `json:"timestamp"`
		ViewerID  string `json:"viewerId"`
	}
	wrong := filepath.Join(dir, "wrong.parquet")
	u, _ := connector.ParseURI("file://" + wrong)
	s, err := connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "x", URI: u, Type: reflect.TypeFor[wrongView]()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(context.Background(), []any{wrongView{"PageViewEvent", 1, "x"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing file", []string{"--bind", "pageviews=" + filepath.Join(dir, "nope.jsonl"), out("counts"), out("late")}, 1, `weir: runner: binding "pageviews": file: `},
		{"unknown scheme", []string{"--bind", "pageviews=s4://bucket/views", out("counts"), out("late")}, 1, `weir: runner: binding "pageviews": connector: unknown scheme "s4"`},
		{"schema mismatch", []string{"--bind", "pageviews=" + wrong, out("counts"), out("late")}, 1, `column "viewerId" is utf8 in the file`},
		{"unbound read", []string{out("counts"), out("late")}, 1, `weir: runner: binding "pageviews": the pipeline reads it`},
		{"binding for nothing", []string{"--bind", "pageviews=" + in, out("counts"), out("late"), out("typo")}, 1, `weir: runner: binding "typo": the pipeline has no source or sink of that name`},
		{"bad flag value", []string{"--mode", "batch", "--bind", "pageviews=" + in, out("counts"), out("late")}, 2, `weir: runner: invalid options: --mode="batch": want backfill, stream or backfill-then-stream`},
		{"unbounded needs stream", []string{"--bind", "pageviews=" + in, "--bind", "counts=mem://nothing", out("late")}, 1, `weir: runner: binding "counts"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runCLI(t, "profileviews", append(c.args, "--progress", "0")...)
			lines := weirLines(r.stderr)
			if r.code != c.code || len(lines) != 1 || !strings.Contains(lines[0], c.want) {
				t.Errorf("exit %d (want %d), error lines %q, want one with %q\nstderr:\n%s", r.code, c.code, lines, c.want, r.stderr)
			}
		})
	}
}

// TestCLIInterruptedRunLeavesNoOutput kills a backfill midway: its sinks
// must not be visible under their names.
func TestCLIInterruptedRunLeavesNoOutput(t *testing.T) {
	dir := t.TempDir()
	views := filepath.Join(dir, "views.jsonl")
	if r := runCLI(t, "weir", "gen", "pageviews", "--pageviews", views, "--events", "400000"); r.code != 0 {
		t.Fatal(r.stderr)
	}
	counts := filepath.Join(dir, "counts.jsonl")
	cmd := exec.Command(filepath.Join(bin, "profileviews"), "--bind", "pageviews="+views, "--bind", "counts="+counts, "--bind", "late=discard://", "--progress", "0", "--parallelism", "2")
	// A killed run cannot remove its temporary state directory: keep it
	// inside the test's directory.
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the run has begun writing (a temporary file exists).
	deadline := time.Now().Add(time.Minute)
	for {
		entries, _ := os.ReadDir(dir)
		started := false
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".counts.jsonl.tmp") {
				started = true
			}
		}
		if started || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if _, err := os.Stat(counts); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an interrupted run left %s (stat: %v); stderr:\n%s", counts, err, errb.String())
	}
}
