package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/nexmark/model"
)

// benchField returns the value of a row of weir bench's output.
func benchField(t *testing.T, out, name string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s{2,}(.+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no %q in:\n%s", name, out)
	}
	return m[1]
}

func TestBenchNexmark(t *testing.T) {
	evs, err := model.Generate(model.Config{Events: 5000})
	if err != nil {
		t.Fatal(err)
	}
	bids := 0
	for _, e := range evs {
		if e.Bid != nil {
			bids++
		}
	}
	out := mustWeir(t, "bench", "nexmark", "--query", "Q1", "--events", "5000", "--parallelism", "2", "--checkpoints=false")
	for name, want := range map[string]string{
		"query": "q1", "events": "5000", "results": strconv.Itoa(bids),
		"parallelism": "2", "state": "pebble", "checkpoints": "off",
	} {
		if got := benchField(t, out, name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if rate, err := strconv.ParseFloat(benchField(t, out, "events/s"), 64); err != nil || rate <= 0 {
		t.Errorf("events/s: %q", benchField(t, out, "events/s"))
	}
	if rss := benchField(t, out, "peak RSS"); !strings.HasSuffix(rss, " MiB") {
		t.Errorf("peak RSS: %q", rss)
	}

	// With checkpoints at the default interval, a run shorter than it takes
	// none and ends well.
	out = mustWeir(t, "bench", "nexmark", "--query", "q2", "--events", "2000", "--parallelism", "1")
	if got := benchField(t, out, "checkpoints"); got != "every 10s (0 taken)" {
		t.Errorf("checkpoints: %q", got)
	}

	// With checkpoints, at a short interval so that a small run takes some
	// (200k events: Q5 alone runs them in 0.15-0.3 s here, where 40k once took
	// long enough and now does not).
	out = mustWeir(t, "bench", "nexmark", "--query", "q5", "--events", "200000", "--parallelism", "2", "--checkpoint-interval", "20ms")
	m := regexp.MustCompile(`^every 20ms \((\d+) taken\)$`).FindStringSubmatch(benchField(t, out, "checkpoints"))
	if m == nil || m[1] == "0" {
		t.Errorf("checkpoints: %q, want some taken every 20ms", benchField(t, out, "checkpoints"))
	}
}

func TestBenchNexmarkErrors(t *testing.T) {
	_, errs, code := weir(t, "bench", "nexmark", "--query", "q99", "--events", "0", "--parallelism", "0")
	if code != 1 || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "weir: bench nexmark: --query \"q99\": want one of q0, ") ||
		!strings.Contains(errs, "--events is 0") || !strings.Contains(errs, "--parallelism is 0") {
		t.Errorf("exit %d: %q", code, errs)
	}
	if _, errs, code := weir(t, "bench", "tpch"); code != 1 || !strings.Contains(errs, `unknown benchmark suite "tpch"`) {
		t.Errorf("exit %d: %q", code, errs)
	}
	// The comparison with prism is weir-bench's (the bench module).
	if _, errs, code := weir(t, "bench", "nexmark", "--vs", "prism", "--query", "q1"); code != 1 || !strings.Contains(errs, "weir-bench nexmark --vs prism") {
		t.Errorf("exit %d: %q", code, errs)
	}
}
