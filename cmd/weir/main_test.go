package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/weir-dev/weir/examples/events"
)

// weir runs the command in-process and returns its stdout, stderr and exit
// code.
func weir(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

// mustWeir runs the command and fails the test unless it succeeds.
func mustWeir(t *testing.T, args ...string) string {
	t.Helper()
	out, errs, code := weir(t, args...)
	if code != 0 {
		t.Fatalf("weir %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// genConfig is the configuration of genArgs.
var genConfig = events.GenConfig{Seed: 7, PageViews: 3000, Profiles: 50}

var genArgs = []string{"--seed", "7", "--events", "3000", "--profiles", "50"}

func decodeLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var rows []T
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var v T
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		rows = append(rows, v)
	}
	return rows
}

// tableRows splits a table printed by cat into its cells.
func tableRows(out string) [][]string {
	var rows [][]string
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		rows = append(rows, strings.Fields(l))
	}
	return rows
}

func TestGenAndCat(t *testing.T) {
	wantViews, wantEdits, err := events.Generate(genConfig)
	if err != nil {
		t.Fatal(err)
	}
	byTime := slices.Clone(wantViews)
	slices.SortStableFunc(byTime, func(a, b events.PageViewEvent) int { return cmp.Compare(a.Timestamp, b.Timestamp) })

	for _, ext := range []string{".jsonl", ".parquet"} {
		t.Run(ext, func(t *testing.T) {
			dir := t.TempDir()
			pv := filepath.Join(dir, "pageviews"+ext)
			prof := filepath.Join(dir, "profiles"+ext)
			out := mustWeir(t, append([]string{"gen", "pageviews", "--pageviews", pv, "--profiles-out", prof}, genArgs...)...)
			summary := regexp.MustCompile(`^wrote 3000 page views \(2026-11-01T\S+Z to 2026-11-01T\S+Z\) to (\S+) and 150 profile edits \(\S+ to \S+\) to (\S+)\n$`)
			if m := summary.FindStringSubmatch(out); m == nil || m[1] != pv || m[2] != prof {
				t.Errorf("summary %q", out)
			}

			// The first records, in arrival order, are those generated.
			got := decodeLines[events.PageViewEvent](t, mustWeir(t, "cat", pv, "--limit", "4", "--format", "jsonl"))
			if !slices.Equal(got, wantViews[:4]) {
				t.Errorf("first views\n got %+v\nwant %+v", got, wantViews[:4])
			}
			edits := decodeLines[events.ProfileEditEvent](t, mustWeir(t, "cat", prof, "--format", "jsonl"))
			if !slices.Equal(edits, wantEdits) {
				t.Errorf("cat of %s differs from the generated edits", prof)
			}

			// Sorted descending and limited.
			rows := decodeLines[map[string]any](t, mustWeir(t, "cat", pv, "--sort", "-timestamp", "--limit", "5", "--format", "jsonl"))
			if len(rows) != 5 {
				t.Fatalf("%d rows, want 5", len(rows))
			}
			for i, r := range rows {
				if keys := slices.Sorted(maps.Keys(r)); !slices.Equal(keys, []string{"eventType", "pageKey", "sessionId", "timestamp", "trackingKey", "viewedProfileId", "viewerId"}) {
					t.Errorf("row %d has fields %v", i, keys)
				}
				if want := byTime[len(byTime)-1-i].Timestamp; r["timestamp"] != float64(want) {
					t.Errorf("row %d: timestamp %v, want %d", i, r["timestamp"], want)
				}
			}

			// A table of chosen columns, sorted ascending.
			table := tableRows(mustWeir(t, "cat", pv, "--sort", "timestamp", "--limit", "3", "--columns", "viewerId,timestamp,pageKey"))
			if len(table) != 4 || !slices.Equal(table[0], []string{"viewerId", "timestamp", "pageKey"}) {
				t.Fatalf("table %q", table)
			}
			for i, row := range table[1:] {
				v := byTime[i]
				if want := []string{itoa(v.ViewerID), itoa(v.Timestamp), v.PageKey}; !slices.Equal(row, want) {
					t.Errorf("table row %d is %q, want %q", i, row, want)
				}
			}

			// Nested fields, in the default table.
			table = tableRows(mustWeir(t, "cat", prof, "--sort", "-profile.location", "--columns", "profile.location", "--limit", "2"))
			if len(table) != 3 || table[0][0] != "profile.location" || table[1][0] == "" {
				t.Errorf("table %q", table)
			}
			table = tableRows(mustWeir(t, "cat", prof, "--limit", "1"))
			if !slices.Equal(table[0], []string{"eventType", "profile", "profileId", "timestamp"}) || !strings.HasPrefix(table[1][1], `{"industry":`) {
				t.Errorf("table %q", table)
			}
		})
	}
}

func itoa(i int64) string {
	b, _ := json.Marshal(i)
	return string(b)
}

func TestGenIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	read := func(name string, seed string) []byte {
		p := filepath.Join(dir, name)
		mustWeir(t, "gen", "pageviews", "--pageviews", p, "--events", "500", "--seed", seed)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b, c := read("a.jsonl", "3"), read("b.jsonl", "3"), read("c.jsonl", "4")
	if !bytes.Equal(a, b) {
		t.Error("one seed gave two outputs")
	}
	if bytes.Equal(a, c) {
		t.Error("two seeds gave one output")
	}
}

func TestGenZeroMeansNone(t *testing.T) {
	dir := t.TempDir()
	pv, prof := filepath.Join(dir, "pv.jsonl"), filepath.Join(dir, "prof.jsonl")
	out := mustWeir(t, "gen", "pageviews", "--pageviews", pv, "--profiles-out", prof, "--events", "2000",
		"--disorder", "0", "--late-fraction", "0", "--profile-edits", "0", "--profile-view-fraction", "0")
	if !strings.Contains(out, "and 0 profile edits to "+prof) {
		t.Errorf("summary %q", out)
	}
	views := decodeLines[events.PageViewEvent](t, mustWeir(t, "cat", pv, "--format", "jsonl"))
	if len(views) != 2000 {
		t.Fatalf("%d views", len(views))
	}
	if !slices.IsSortedFunc(views, func(a, b events.PageViewEvent) int { return cmp.Compare(a.Timestamp, b.Timestamp) }) {
		t.Error("views with no disorder and no late views are not in event-time order")
	}
	for _, v := range views {
		if v.PageKey == events.PageKeyProfileView {
			t.Fatalf("profile view with --profile-view-fraction 0: %+v", v)
		}
	}
}

func TestCatReportsUndecodableRecords(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mixed.jsonl")
	data := "{\"a\":1,\"b\":\"x\\ty\"}\nnot json\n{\"a\":2.5,\"c\":{\"d\":[1,2]}}\n[1]\n{\"a\":null}\n"
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := weir(t, "cat", p, "--sort", "-a")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	want := "a     b       c\n" +
		"2.5           {\"d\":[1,2]}\n" +
		"1     \"x\\ty\"\n" +
		"null\n"
	if out != want {
		t.Errorf("table\n%s\nwant\n%s", out, want)
	}
	if !strings.Contains(errs, "count=2") || !strings.Contains(errs, "mixed.jsonl:2") || strings.Count(errs, "\n") != 1 {
		t.Errorf("stderr %q does not report the 2 undecodable records in one line", errs)
	}
}

func TestBadArguments(t *testing.T) {
	dir := t.TempDir()
	pv := filepath.Join(dir, "pv.jsonl")
	existing := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(existing, []byte("{\"a\":1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"gen", "pageviews"}, `gen pageviews: required flag(s) "pageviews" not set`},
		{[]string{"gen", "pageviews", "--pageviews", pv, "--events", "many"}, `gen pageviews: invalid argument "many" for "--events" flag`},
		{[]string{"gen", "pageviews", "--pageviews", pv, "--events", "0"}, "--events is 0, want at least 1"},
		{[]string{"gen", "pageviews", "--pageviews", pv, "--span", "soon"}, `invalid argument "soon" for "--span" flag`},
		{[]string{"gen", "pageviews", "--pageviews", pv, "--late-fraction", "1.5", "--profiles", "-2", "--disorder", "-1m"},
			"--profiles is -2, want at least 1; --late-fraction is 1.5, want it in [0, 1]; --disorder is negative"},
		{[]string{"gen", "pageviews", "--pageviews", pv, "--span", "2h"}, "--span is 2h0m0s, want more than --late-by plus --disorder"},
		{[]string{"gen", "pageviews", "--pageviews", pv, "--start", "tomorrow"}, `--start "tomorrow" is not an RFC 3339 time`},
		{[]string{"gen", "pageviews", "--pageviews", filepath.Join(dir, "pv.csv")}, "cannot tell the format"},
		{[]string{"gen", "pageviews", "--pageviews", "nosuch://x"}, `binding "pageviews": connector: unknown scheme "nosuch"`},
		{[]string{"gen", "pageviews", "--pageviews", pv, "--profiles-out", filepath.Join(dir, "prof.txt")}, `binding "profiles"`},
		{[]string{"gen", "pageviews", "--pageviews", pv, "extra"}, `gen pageviews: unknown command "extra"`},
		{[]string{"gen", "clicks"}, `gen: unknown data set "clicks"`},
		{[]string{"frobnicate"}, `unknown command "frobnicate" for "weir"`},
		{[]string{"cat"}, "cat: accepts 1 arg(s), received 0"},
		{[]string{"cat", filepath.Join(dir, "missing.jsonl")}, "connector: not found"},
		{[]string{"cat", existing, "--format", "csv", "--limit", "-1"}, `cat: --format "csv": want table or jsonl; --limit is -1, want >= 0`},
		{[]string{"cat", existing, "--sort", "-"}, "--sort needs a field name"},
		{[]string{"cat", existing, "--limit", "ten"}, `cat: invalid argument "ten" for "-n, --limit" flag`},
		{[]string{"cat", existing, "--bogus"}, "cat: unknown flag: --bogus (see 'weir cat --help')"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, errs, code := weir(t, tc.args...)
			if code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
			if out != "" {
				t.Errorf("stdout %q, want none", out)
			}
			if !strings.HasPrefix(errs, "weir: ") || strings.Count(errs, "\n") != 1 || !strings.HasSuffix(errs, "\n") {
				t.Errorf("stderr %q is not one line prefixed with weir:", errs)
			}
			if !strings.Contains(errs, tc.want) {
				t.Errorf("stderr %q does not contain %q", errs, tc.want)
			}
		})
	}
	// Failed runs leave no output, not even temporary files.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "in.jsonl" {
			t.Errorf("failed runs left %s", e.Name())
		}
	}
}

func TestVersion(t *testing.T) {
	out := mustWeir(t, "version")
	if !regexp.MustCompile(`^weir \S+ go\S+ \w+/\w+\n$`).MatchString(out) {
		t.Errorf("version %q", out)
	}
	if v := mustWeir(t, "--version"); v != out {
		t.Errorf("--version %q, want %q", v, out)
	}
}

func TestHelp(t *testing.T) {
	out := mustWeir(t, "gen", "pageviews", "--help")
	for _, flag := range []string{"--pageviews", "--profiles-out", "--seed", "--events", "--profiles", "--profile-edits",
		"--start", "--span", "--disorder", "--late-fraction", "--late-by", "--profile-view-fraction"} {
		if !strings.Contains(out, flag+" ") {
			t.Errorf("help lacks %s", flag)
		}
	}
	if out := mustWeir(t); !strings.Contains(out, "Available Commands") {
		t.Errorf("weir with no arguments prints %q", out)
	}
}

func TestCompareValues(t *testing.T) {
	ordered := []any{nil, false, true, -3, 1.5, int64(2), json.Number("2.5"), uint8(3), float64(1 << 60), "", "a", "b"}
	for i := range ordered {
		for j := range ordered {
			if got, want := compareValues(ordered[i], ordered[j]), cmp.Compare(i, j); got != want {
				t.Errorf("compareValues(%#v, %#v) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
}

func TestFormatValue(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{nil, "null"},
		{1413215518000.0, "1413215518000"},
		{0.25, "0.25"},
		{1e21, "1e+21"},
		{int32(-7), "-7"},
		{"plain text", "plain text"},
		{"tab\there", `"tab\there"`},
		{map[string]any{"b": 1, "a": "x"}, `{"a":"x","b":1}`},
		{[]any{1, "two"}, `[1,"two"]`},
		{true, "true"},
	} {
		if got := formatValue(tc.v); got != tc.want {
			t.Errorf("formatValue(%#v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestTrimWriter(t *testing.T) {
	in := "a  b   \n  c d  \n\n   \nend  "
	want := "a  b\n  c d\n\n\nend"
	for _, chunk := range []int{1, 2, 3, len(in)} {
		var out bytes.Buffer
		tw := &trimWriter{w: &out}
		for s := in; s != ""; {
			n := min(chunk, len(s))
			if _, err := tw.Write([]byte(s[:n])); err != nil {
				t.Fatal(err)
			}
			s = s[n:]
		}
		if out.String() != want {
			t.Errorf("chunks of %d: %q, want %q", chunk, out.String(), want)
		}
	}
}

func TestCollector(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var in []map[string]any
	for i := range 500 {
		in = append(in, map[string]any{"k": float64(r.IntN(20)), "i": i})
	}
	byK := func(x, y map[string]any) int { return compareValues(x["k"], y["k"]) }
	desc := func(x, y map[string]any) int { return -byK(x, y) }
	for _, tc := range []struct {
		limit int
		order func(x, y map[string]any) int
	}{{0, nil}, {7, nil}, {0, byK}, {1, byK}, {25, byK}, {25, desc}, {499, desc}, {600, byK}} {
		want := slices.Clone(in)
		if tc.order != nil {
			slices.SortStableFunc(want, tc.order)
		}
		if tc.limit > 0 && len(want) > tc.limit {
			want = want[:tc.limit]
		}
		c := &collector{limit: tc.limit, order: tc.order}
		for _, row := range in {
			if c.want() == 0 {
				break
			}
			c.offer(row)
		}
		got := c.rows()
		if len(got) != len(want) {
			t.Fatalf("limit %d: %d rows, want %d", tc.limit, len(got), len(want))
		}
		for i := range got {
			if got[i]["i"] != want[i]["i"] {
				t.Fatalf("limit %d: row %d is %v, want %v", tc.limit, i, got[i], want[i])
			}
		}
	}
}

// TestCpUnreadableRecords: weir cp copies what it can read, names the
// first record it cannot read and how many it could not, and with
// --dead-letter writes each of those there with its position and reason.
func TestCpUnreadableRecords(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.jsonl")
	if err := os.WriteFile(in, []byte("{\"a\":1}\nnot json\n{\"a\":2}\n{\"a\":\n{\"a\":3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errs, code := weir(t, "cp", "file://"+in, "file://"+filepath.Join(dir, "out.jsonl"))
	if code != 0 || !strings.HasPrefix(out, "copied 3 records") {
		t.Fatalf("exit %d, %q", code, out)
	}
	if !strings.Contains(errs, "count=2") || !strings.Contains(errs, "in.jsonl:2") {
		t.Errorf("stderr %q does not name the first unreadable record and the count", errs)
	}
	dead := filepath.Join(dir, "dead.jsonl")
	_, errs, code = weir(t, "cp", "file://"+in, "file://"+filepath.Join(dir, "out2.jsonl"), "--dead-letter", "file://"+dead)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	b, err := os.ReadFile(dead)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"position":"`) || !strings.Contains(lines[0], "in.jsonl:2") || !strings.Contains(lines[1], "in.jsonl:4") || !strings.Contains(lines[0], `"reason":"`) {
		t.Errorf("dead letters:\n%s", b)
	}
}
