package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/connector"
)

// countRow is a row of a windowed count, as the profileviews example
// writes it, with a float field.
type countRow struct {
	ProfileID   int64   `json:"profileId"`
	WindowStart int64   `json:"windowStart"`
	WindowEnd   int64   `json:"windowEnd"`
	Count       int64   `json:"count"`
	Mean        float64 `json:"mean"`
}

const hour = 3600000

// counts returns two hourly windows of counts for three profiles.
func counts() []countRow {
	var rows []countRow
	for w := range int64(2) {
		for p := range int64(3) {
			start := 1793527200000 + w*hour
			rows = append(rows, countRow{ProfileID: p + 1, WindowStart: start, WindowEnd: start + hour, Count: 3*w + p + 1, Mean: 0.1 * float64(p+1)})
		}
	}
	return rows
}

// writeRows writes rows to uri through its connector's sink.
func writeRows[T any](t *testing.T, uri string, rows []T) {
	t.Helper()
	u, err := connector.ParseURI(uri)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: "test", URI: u, Type: reflect.TypeFor[T]()})
	if err != nil {
		t.Fatal(err)
	}
	vals := make([]any, len(rows))
	for i, r := range rows {
		vals[i] = r
	}
	if err := s.Write(ctx, vals); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// writeLines writes JSON lines to a file.
func writeLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// countLines returns rows as JSON lines written by hand, with every number
// as a float ("count":3.0), to check that numbers compare by value.
func countLines(rows []countRow) []string {
	var lines []string
	for _, r := range rows {
		lines = append(lines, fmt.Sprintf(`{"windowEnd":%d.0,"count":%d.0,"profileId":%d,"windowStart":%de0,"mean":%v}`,
			r.WindowEnd, r.Count, r.ProfileID, r.WindowStart, r.Mean))
	}
	return lines
}

// validateOK runs weir validate and fails unless A and B are the same.
func validateOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := weir(t, append([]string{"validate"}, args...)...)
	if code != 0 || errs != "" {
		t.Fatalf("weir validate %s: exit %d, stderr %q, stdout:\n%s", strings.Join(args, " "), code, errs, out)
	}
	return out
}

func TestValidateGeneratedJSONLAndParquet(t *testing.T) {
	dir := t.TempDir()
	for _, ext := range []string{".jsonl", ".parquet"} {
		mustWeir(t, append([]string{"gen", "pageviews", "--pageviews", filepath.Join(dir, "pv"+ext),
			"--profiles-out", filepath.Join(dir, "prof"+ext)}, genArgs...)...)
	}
	pvJSON, pvParquet := filepath.Join(dir, "pv.jsonl"), filepath.Join(dir, "pv.parquet")
	out := validateOK(t, pvJSON, pvParquet)
	want := "A: " + pvJSON + "\nB: " + pvParquet + "\n" +
		"key: none, whole rows compared (a changed row is missing and extra)\n" +
		"rows: 3000 in A, 3000 in B\nmatching: 3000\nmissing in B: 0\nextra in B: 0\ndiffering: 0\n"
	if out != want {
		t.Errorf("report\n%s\nwant\n%s", out, want)
	}
	// Profile edits have a nested record (a Parquet struct, a JSON object).
	out = validateOK(t, filepath.Join(dir, "prof.parquet"), filepath.Join(dir, "prof.jsonl"))
	if !strings.Contains(out, "\nmatching: 150\n") {
		t.Errorf("report\n%s", out)
	}
	// Page views are not profile edits.
	out, errs, code := weir(t, "validate", pvParquet, filepath.Join(dir, "prof.jsonl"))
	if code != 1 || !strings.Contains(out, "\nmissing in B: 3000\nextra in B: 150\n") ||
		errs != "weir: validate: A and B differ: 3000 missing in B, 150 extra in B\n" {
		t.Errorf("exit %d, stderr %q, report\n%s", code, errs, out)
	}
}

func TestValidateCounts(t *testing.T) {
	dir := t.TempDir()
	rows := counts()
	parquet := filepath.Join(dir, "counts.parquet")
	writeRows(t, parquet, rows)
	writeRows(t, filepath.Join(dir, "counts.jsonl"), rows)
	key := []string{"--key", "profileId,windowStart"}

	// The same rows as Parquet, as JSON Lines from the sink, and as JSON
	// Lines written by hand with floats for integers.
	writeLines(t, filepath.Join(dir, "floats.jsonl"), countLines(rows)...)
	for _, b := range []string{"counts.jsonl", "floats.jsonl"} {
		out := validateOK(t, append([]string{parquet, filepath.Join(dir, b)}, key...)...)
		for _, line := range []string{"key: profileId, windowStart", "matching: 6", "differing: 0",
			"duplicate keys: 0 in A, 0 in B", "windows by windowStart, windowEnd: 2, all match"} {
			if !strings.Contains(out, "\n"+line+"\n") {
				t.Errorf("%s: report lacks %q:\n%s", b, line, out)
			}
		}
	}

	// One count changed, one row missing, one extra, one mean off by a
	// little.
	changed := counts()
	changed[4].Count++
	changed[0].Mean += 1e-9
	extra := changed[5]
	extra.ProfileID = 9
	changed = append(changed[:2], changed[3:]...)
	changed = append(changed, extra)
	writeLines(t, filepath.Join(dir, "changed.jsonl"), countLines(changed)...)
	args := append([]string{parquet, filepath.Join(dir, "changed.jsonl")}, key...)
	out, errs, code := weir(t, append([]string{"validate"}, args...)...)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if want := "weir: validate: A and B differ: 1 missing in B, 1 extra in B, 2 differing, in 2 of 2 windows\n"; errs != want {
		t.Errorf("stderr %q, want %q", errs, want)
	}
	for _, want := range []string{
		"\nrows: 6 in A, 6 in B\nmatching: 3\nmissing in B: 1\nextra in B: 1\ndiffering: 2\n",
		"\nwindows by windowStart, windowEnd: 2, 2 differ\n",
		"\n  2026-11-01T10:00:00Z  2026-11-01T11:00:00Z  1         1        0      1\n",
		"\n  2026-11-01T11:00:00Z  2026-11-01T12:00:00Z  2         0        1      1\n",
		"\nmissing in B (1 of 1):\n  profileId=3 windowStart=1793527200000  {\"count\":3,\"mean\":0.30000000000000004,",
		"\nextra in B (1 of 1):\n  profileId=9 windowStart=1793530800000  {",
		"\ndiffering (2 of 2):\n" +
			"  profileId=1 windowStart=1793527200000: mean: A 0.1, B 0.100000001\n" +
			"  profileId=2 windowStart=1793530800000: count: A 5, B 6\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	// Within a tolerance the mean matches; the count never does.
	out, errs, code = weir(t, append([]string{"validate", "--tolerance", "1e-6", "--examples", "0"}, args...)...)
	if code != 1 || !strings.Contains(out, "\ndiffering: 1\n") || strings.Contains(out, "differing (") ||
		!strings.Contains(errs, "1 differing") {
		t.Errorf("--tolerance 1e-6: exit %d, stderr %q, report\n%s", code, errs, out)
	}
	// Ignoring the count and the mean leaves the missing and extra rows.
	out, _, code = weir(t, append([]string{"validate", "--ignore", "count,mean"}, args...)...)
	if code != 1 || !strings.Contains(out, "\nmatching: 5\nmissing in B: 1\nextra in B: 1\ndiffering: 0\n") {
		t.Errorf("--ignore: exit %d, report\n%s", code, out)
	}
}

func TestValidateDirectoryAndGlob(t *testing.T) {
	dir := t.TempDir()
	rows := counts()
	writeRows(t, filepath.Join(dir, "counts.parquet"), rows)
	// Part files in a directory, as a stream run's sink writes them.
	writeRows(t, "file://"+filepath.Join(dir, "parts")+"/", rows[:4])
	writeLines(t, filepath.Join(dir, "parts", "part-00001.jsonl"), countLines(rows[4:])...)
	for _, b := range []string{"file://" + filepath.Join(dir, "parts"), filepath.Join(dir, "parts", "part-*.jsonl")} {
		out := validateOK(t, filepath.Join(dir, "counts.parquet"), b, "--key", "profileId,windowStart")
		if !strings.Contains(out, "\nmatching: 6\n") {
			t.Errorf("%s: report\n%s", b, out)
		}
	}
}

func TestValidateErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "counts.jsonl")
	writeRows(t, good, counts())
	bad := filepath.Join(dir, "bad.jsonl")
	writeLines(t, bad, countLines(counts()[:1])[0], "not json", "[1]", countLines(counts()[1:2])[0])
	missing := filepath.Join(dir, "missing.jsonl")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{good}, "weir: validate: accepts 2 arg(s), received 1"},
		{[]string{good, good, good}, "weir: validate: accepts 2 arg(s), received 3"},
		{[]string{good, good, "--bogus"}, "weir: validate: unknown flag: --bogus (see 'weir validate --help')"},
		{[]string{good, good, "--tolerance", "small"}, `weir: validate: invalid argument "small" for "--tolerance" flag`},
		{[]string{good, good, "--tolerance", "-1", "--examples", "-1"},
			"weir: validate: bad options: tolerance is -1, want a finite number >= 0; examples is -1, want >= 0"},
		{[]string{good, good, "--key", "profileId", "--ignore", "profileId"}, `"profileId" is both a key field and ignored`},
		{[]string{good, good, "--windows", "-1"}, "weir: validate: --windows is -1, want >= 0"},
		{[]string{missing, good}, `weir: validate: binding "A": file: ` + missing + `: no such file or directory: connector: not found`},
		{[]string{good, missing}, `weir: validate: binding "B": file: ` + missing},
		{[]string{good, "weirtest-live://topic"}, "weir: validate: B: weirtest-live://topic is unbounded: give it an end (?until=latest)"},
		{[]string{good, good, "--key", "profileid"}, `weir: validate: no such field: key field "profileid" is in none of the 6 rows of A; key field "profileid" is in none of the 6 rows of B`},
		{[]string{good, good, "--window", "start"}, `weir: validate: no such field: window field "start" is in no row`},
		{[]string{good, bad}, "weir: validate: reading B: " + bad + ": 2 undecodable records (the first: " + bad + ":2: "},
		{[]string{bad, good}, "weir: validate: reading A: " + bad + ": 2 undecodable records"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errs, code := weir(t, append([]string{"validate"}, tc.args...)...)
			if code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want none", out)
			}
			if strings.Count(errs, "\n") != 1 || !strings.HasSuffix(errs, "\n") {
				t.Errorf("stderr %q is not one line", errs)
			}
			if !strings.Contains(errs, tc.want) {
				t.Errorf("stderr %q does not contain %q", errs, tc.want)
			}
		})
	}
	// The record that is not an object is counted with the others.
	_, errs, _ := weir(t, "validate", good, bad)
	if !regexp.MustCompile(`the first: \S+bad.jsonl:2: .*\)$`).MatchString(strings.TrimSpace(errs)) {
		t.Errorf("stderr %q", errs)
	}
}

func TestValidateHelp(t *testing.T) {
	out := mustWeir(t, "validate", "--help")
	for _, flag := range []string{"--key", "--ignore", "--window", "--tolerance", "--examples", "--windows"} {
		if !strings.Contains(out, flag+" ") {
			t.Errorf("help lacks %s", flag)
		}
	}
	if !strings.Contains(mustWeir(t, "--help"), "validate") {
		t.Error("weir --help does not list validate")
	}
}

// TestValidateLargeIntegers: JSON integers keep every digit, so ids above
// 2^53 that a float64 cannot tell apart are different keys.
func TestValidateLargeIntegers(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.jsonl"), filepath.Join(dir, "b.jsonl")
	writeLines(t, a, `{"id":9007199254740993,"n":1}`, `{"id":1,"n":9007199254740993}`)
	writeLines(t, b, `{"id":9007199254740992,"n":1}`, `{"id":1,"n":9007199254740992}`)
	out, _, code := weir(t, "validate", a, b, "--key", "id")
	if code != 1 || !strings.Contains(out, "\nmatching: 0\nmissing in B: 1\nextra in B: 1\ndiffering: 1\n") ||
		!strings.Contains(out, "  id=1: n: A 9007199254740993, B 9007199254740992\n") {
		t.Errorf("exit %d, report\n%s", code, out)
	}
}
