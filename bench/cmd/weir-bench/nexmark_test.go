package main

import (
	"strconv"
	"strings"
	"testing"
)

// vsCells returns the cells of the Markdown rows of weir-bench nexmark --vs
// prism, header and rule left out.
func vsCells(t *testing.T, out string) [][]string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "| query | events | Weir events/s | prism events/s | Weir/prism |") {
		t.Fatalf("no table header in:\n%s", out)
	}
	var rows [][]string
	for _, l := range lines[2:] {
		cells := strings.Split(strings.Trim(l, "| "), " | ")
		if len(cells) != 7 {
			t.Fatalf("row %q: %d cells, want 7", l, len(cells))
		}
		rows = append(rows, cells)
	}
	return rows
}

func TestNexmarkVsPrism(t *testing.T) {
	out := mustWeirBench(t, "nexmark", "--vs", "prism", "--query", "q1,Q2", "--events", "20000",
		"--parallelism", "2", "--checkpoints=false", "--format", "markdown", "--header")
	rows := vsCells(t, out)
	if len(rows) != 2 || rows[0][0] != "q1" || rows[1][0] != "q2" {
		t.Fatalf("rows %q", rows)
	}
	for _, r := range rows {
		if r[1] != "20000" {
			t.Errorf("%s: events %q", r[0], r[1])
		}
		for _, c := range r[2:5] {
			if v, err := strconv.ParseFloat(c, 64); err != nil || v <= 0 {
				t.Errorf("%s: %q is not a positive rate or ratio", r[0], c)
			}
		}
		if r[5] != r[6] || r[5] == "0" {
			t.Errorf("%s: Weir has %s results, prism %s", r[0], r[5], r[6])
		}
	}

	// A prism run past its timeout is reported, not waited for.
	out = mustWeirBench(t, "nexmark", "--vs", "prism", "--query", "q0", "--events", "300000",
		"--parallelism", "2", "--checkpoints=false", "--prism-timeout", "50ms", "--format", "markdown", "--header")
	rows = vsCells(t, out)
	if len(rows) != 1 || rows[0][3] != "did not finish in 50ms" || !strings.HasPrefix(rows[0][4], "> ") || rows[0][6] != "-" {
		t.Errorf("rows %q", rows)
	}
}

func TestNexmarkVsPrismErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--vs", "flink", "--query", "q1"}, `--vs "flink": want prism`},
		{[]string{"--vs", "prism", "--query", "q1,q4"}, `--query "q4": want some of q0, q1,`},
		{[]string{"--vs", "prism", "--query", ","}, "no query given"},
		{[]string{"--vs", "prism", "--query", "q1", "--prism-timeout", "0s"}, "--prism-timeout is 0s"},
		{[]string{"--query", "q1"}, `required flag(s) "vs" not set`},
	} {
		_, errs, code := weirBench(t, append([]string{"nexmark", "--events", "1000"}, c.args...)...)
		if code != 1 || !strings.HasPrefix(errs, "weir-bench: nexmark: ") || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, c.want) {
			t.Errorf("%q: exit %d: %q, want %q", c.args, code, errs, c.want)
		}
	}
}
