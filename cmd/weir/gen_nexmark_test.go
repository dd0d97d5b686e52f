package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/weir-dev/weir/examples/nexmark"
	"github.com/weir-dev/weir/io/memory"
	"github.com/weir-dev/weir/io/nexmark/model"
	"github.com/weir-dev/weir/runner"
)

// weir gen nexmark writes the generator's events; a query reads them from
// Parquet or JSON Lines as it reads them from nexmark:// and gives the same
// answer.
func TestGenNexmark(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--events", "4000", "--rate", "400", "--seed", "3"}
	pq, jl := filepath.Join(dir, "ev.parquet"), filepath.Join(dir, "ev.jsonl")
	out := mustWeir(t, append([]string{"gen", "nexmark", "--out", pq}, args...)...)
	if !strings.HasPrefix(out, "wrote 4000 events (2015-07-15T00:00:00.000Z to 2015-07-15T00:00:09.997Z) to ") {
		t.Errorf("summary %q", out)
	}
	mustWeir(t, append([]string{"gen", "nexmark", "--out", jl}, args...)...)

	want, err := model.Generate(model.Config{Events: 4000, Rate: 400, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(jl)
	if err != nil {
		t.Fatal(err)
	}
	got := decodeLines[model.Event](t, string(b))
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s holds %d events, not the generator's %d", jl, len(got), len(want))
	}

	runs := 0
	q5 := func(source string) []string {
		p, err := nexmark.Q5(nexmark.Config{Window: 2e9, Period: 5e8})
		if err != nil {
			t.Fatal(err)
		}
		runs++
		name := fmt.Sprintf("%s-%d", t.Name(), runs)
		col := memory.NewCollector(name)
		_, err = runner.Run(context.Background(), p, runner.Options{
			Bindings:    map[string]string{"events": source, "results": "mem://" + name},
			Parallelism: 2, StateBackend: "memory", Progress: -1, Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatalf("%s: %v", source, err)
		}
		var rows []string
		for _, v := range col.Values() {
			b, _ := json.Marshal(v)
			rows = append(rows, string(b))
		}
		slices.Sort(rows)
		return rows
	}
	ref := q5("nexmark://?events=4000&rate=400&seed=3&splits=2")
	if len(ref) < 15 {
		t.Fatalf("only %d rows", len(ref))
	}
	for _, src := range []string{"file://" + pq, "file://" + jl} {
		if rows := q5(src); !slices.Equal(rows, ref) {
			t.Errorf("Q5 over %s: %d rows differ from the %d over nexmark://", src, len(rows), len(ref))
		}
	}
}

func TestGenNexmarkErrors(t *testing.T) {
	_, errs, code := weir(t, "gen", "nexmark", "--out", filepath.Join(t.TempDir(), "x.jsonl"), "--events", "0", "--rate", "-1", "--start", "soon")
	if code != 1 || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "weir: gen nexmark: --events is 0") ||
		!strings.Contains(errs, "--rate is -1") || !strings.Contains(errs, `--start "soon"`) {
		t.Errorf("exit %d: %q", code, errs)
	}
}
