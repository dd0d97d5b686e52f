package validate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// rowsOf yields rows, or a read error where a row is nil.
func rowsOf(rows []map[string]any, errs []error) iter.Seq2[map[string]any, error] {
	return func(yield func(map[string]any, error) bool) {
		for i, r := range rows {
			if errs[i] != nil {
				yield(nil, errs[i])
				return
			}
			if !yield(r, nil) {
				return
			}
		}
	}
}

// testSide is the rows of one side of a case, as the test reads them.
type testSide struct {
	rows []map[string]any
	errs []error
}

func (s *testSide) reversed() *testSide {
	r := &testSide{rows: slices.Clone(s.rows), errs: slices.Clone(s.errs)}
	slices.Reverse(r.rows)
	slices.Reverse(r.errs)
	return r
}

func TestCompareData(t *testing.T) {
	datadriven.RunTest(t, "testdata/compare", func(t *testing.T, d *datadriven.TestData) string {
		if d.Cmd != "compare" {
			d.Fatalf(t, "unknown command %q", d.Cmd)
		}
		opts := Options{Examples: 5}
		windows := 20
		for _, arg := range d.CmdArgs {
			val := strings.Join(arg.Vals, ",")
			var err error
			switch arg.Key {
			case "key":
				opts.Key = strings.Split(val, ",")
			case "ignore":
				opts.Ignore = strings.Split(val, ",")
			case "window":
				opts.Window = strings.Split(val, ",")
			case "tolerance":
				opts.Tolerance, err = strconv.ParseFloat(val, 64)
			case "examples":
				opts.Examples, err = strconv.Atoi(val)
			case "windows":
				windows, err = strconv.Atoi(val)
			default:
				d.Fatalf(t, "unknown argument %q", arg.Key)
			}
			if err != nil {
				d.Fatalf(t, "%s: %v", arg.Key, err)
			}
		}
		sides := map[string]*testSide{"a": {}, "b": {}}
		for _, line := range strings.Split(d.Input, "\n") {
			if line == "" {
				continue
			}
			name, rest, _ := strings.Cut(line, " ")
			s := sides[name]
			if s == nil {
				d.Fatalf(t, "line %q: want a or b first", line)
			}
			if msg, isErr := strings.CutPrefix(rest, "!"); isErr {
				s.rows, s.errs = append(s.rows, nil), append(s.errs, errors.New(msg))
				continue
			}
			dec := json.NewDecoder(strings.NewReader(rest))
			dec.UseNumber()
			var r map[string]any
			if err := dec.Decode(&r); err != nil {
				d.Fatalf(t, "line %q: %v", line, err)
			}
			s.rows, s.errs = append(s.rows, r), append(s.errs, nil)
		}
		run := func(a, b *testSide) (string, *Report) {
			rep, err := Compare(context.Background(), rowsOf(a.rows, a.errs), rowsOf(b.rows, b.errs), opts)
			if err != nil {
				return "error: " + err.Error() + "\n", nil
			}
			var buf bytes.Buffer
			if err := rep.WriteText(&buf, windows); err != nil {
				t.Fatal(err)
			}
			return buf.String(), rep
		}
		out, rep := run(sides["a"], sides["b"])
		// The report does not depend on the order of the rows, except for
		// how the rows of duplicate keys pair up.
		if rep != nil && rep.DuplicateKeysA+rep.DuplicateKeysB == 0 {
			if rev, _ := run(sides["a"].reversed(), sides["b"].reversed()); rev != out {
				t.Errorf("%s: with the rows reversed the report is\n%s", d.Pos, rev)
			}
		}
		return out
	})
}

func TestNormalizedValues(t *testing.T) {
	var n normalizer
	when := time.Date(2026, 11, 1, 10, 0, 0, 500e6, time.FixedZone("CET", 3600))
	big := uint64(math.MaxInt64) + 10
	seven := int32(7)
	type pair struct{ X int }
	for _, tc := range []struct {
		in   any
		want any
	}{
		{json.Number("3"), int64(3)},
		{json.Number("-0"), int64(0)},
		{json.Number("3.0"), 3.0},
		{json.Number("1e2"), 100.0},
		{json.Number("18446744073709551615"), uint64(math.MaxUint64)},
		{json.Number("18446744073709551616"), 18446744073709551616.0},
		{int8(-3), int64(-3)},
		{uint16(3), int64(3)},
		{big, big},
		{float32(0.5), 0.5},
		{&seven, int64(7)},
		{(*int)(nil), nil},
		{when, "2026-11-01T09:00:00.5Z"},
		{[]byte("hi"), "aGk="},
		{json.RawMessage(`{"a":1,"b":null}`), map[string]any{"a": int64(1)}},
		{map[string]any{"a": nil, "b": []any{nil, json.Number("2")}}, map[string]any{"b": []any{nil, int64(2)}}},
		{map[string]int{"a": 1}, map[string]any{"a": int64(1)}},
		{[]string{"x"}, []any{"x"}},
		{pair{X: 4}, map[string]any{"X": int64(4)}},
	} {
		got := n.value(tc.in, "")
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("value(%#v) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

// TestParquetRowEqualsJSONRow: a row as the Parquet reader returns it and
// the same row as a JSON sink writes it are equal, with the same key.
func TestParquetRowEqualsJSONRow(t *testing.T) {
	parquet := map[string]any{
		"profileId": int64(7),
		"mean":      2.0,
		"at":        time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC),
		"blob":      []byte{0, 1},
		"profile":   map[string]any{"location": "Paris", "skills": []any{"go"}, "title": nil},
		"note":      nil,
	}
	var j map[string]any
	dec := json.NewDecoder(strings.NewReader(`{"profileId":7,"mean":2,"at":"2026-11-01T10:00:00Z","blob":"AAE=","profile":{"location":"Paris","skills":["go"]}}`))
	dec.UseNumber()
	if err := dec.Decode(&j); err != nil {
		t.Fatal(err)
	}
	var n normalizer
	a, b := n.row(parquet), n.row(j)
	if !equal(a, b, 0) {
		t.Errorf("rows differ:\n%s\n%s", text(a), text(b))
	}
	if ka, kb := appendKey(nil, a), appendKey(nil, b); !bytes.Equal(ka, kb) {
		t.Errorf("keys differ:\n%s\n%s", ka, kb)
	}
	b["mean"] = 2.5
	if equal(a, b, 0) {
		t.Error("rows with means 2 and 2.5 are equal")
	}
}

func TestEqualNumbers(t *testing.T) {
	big := uint64(math.MaxInt64) + 1
	for _, tc := range []struct {
		a, b any
		tol  float64
		want bool
	}{
		{int64(3), 3.0, 0, true},
		{3.0, int64(3), 0, true},
		{int64(3), int64(4), 0, false},
		{int64(3), 3.5, 0, false},
		{int64(1000), int64(1001), 0.01, false}, // integers compare exactly
		{int64(1000), 1001.0, 0.01, true},       // a float is involved
		{0.1, 0.1000001, 1e-6, true},            // absolute
		{0.1, 0.1001, 1e-6, false},
		{1e12, 1e12 + 100, 1e-9, true}, // relative
		{1e12, 1e12 + 10000, 1e-9, false},
		{math.NaN(), math.NaN(), 0, true},
		{math.NaN(), 1.0, 1, false},
		{math.Inf(1), math.Inf(1), 0, true},
		{math.Inf(1), math.Inf(-1), 1, false},
		{big, float64(big), 0, true},
		{big, int64(math.MaxInt64), 0, false},
		{int64(1 << 53), float64(1<<53) + 2, 0, false},
		{int64(1<<53 + 1), float64(1 << 53), 0, false}, // the float is not that integer
	} {
		if got := equal(tc.a, tc.b, tc.tol); got != tc.want {
			t.Errorf("equal(%v, %v, %v) = %v, want %v", tc.a, tc.b, tc.tol, got, tc.want)
		}
		if got := equal(tc.b, tc.a, tc.tol); got != tc.want {
			t.Errorf("equal(%v, %v, %v) = %v, want %v (swapped)", tc.b, tc.a, tc.tol, got, tc.want)
		}
		// Keys encode equal numbers alike, whatever their types.
		if tc.tol == 0 {
			same := bytes.Equal(appendKey(nil, tc.a), appendKey(nil, tc.b))
			if same != tc.want {
				t.Errorf("keys of %v and %v equal: %v, want %v", tc.a, tc.b, same, tc.want)
			}
		}
	}
}

func TestKeyEncodingIsUnambiguous(t *testing.T) {
	vals := []any{nil, true, false, int64(1), 1.5, "1", "", "a,b", []any{"a", "b"}, []any{"a,b"},
		map[string]any{"a": "b"}, map[string]any{"a:b": nil}, []any{}, map[string]any{}, "n", "t"}
	seen := map[string]any{}
	for _, v := range vals {
		k := string(appendKey(nil, v))
		if prev, dup := seen[k]; dup {
			t.Errorf("%#v and %#v have one key %q", prev, v, k)
		}
		seen[k] = v
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{Key: []string{""}},
		{Key: []string{"a", "a"}},
		{Key: []string{"a"}, Ignore: []string{"a"}},
		{Window: []string{"w"}, Ignore: []string{"w"}},
		{Tolerance: -0.1},
		{Tolerance: math.NaN()},
		{Tolerance: math.Inf(1)},
		{Examples: -1},
	} {
		err := o.Validate()
		if !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: error %v, want ErrOptions", o, err)
		}
		if _, err := Compare(context.Background(), rowsOf(nil, nil), rowsOf(nil, nil), o); !errors.Is(err, ErrOptions) {
			t.Errorf("%+v: Compare error %v, want ErrOptions", o, err)
		}
	}
	if err := (&Options{Key: []string{"a"}, Ignore: []string{"b"}, Window: []string{"a"}, Tolerance: 1, Examples: 3}).Validate(); err != nil {
		t.Errorf("good options: %v", err)
	}
}

func TestCompareErrors(t *testing.T) {
	row := map[string]any{"id": int64(1)}
	boom := errors.New("boom")
	// A read error names the side and wraps the error; B is not read after
	// A fails.
	readB := false
	b := func(yield func(map[string]any, error) bool) { readB = true }
	_, err := Compare(context.Background(), rowsOf([]map[string]any{row, nil}, []error{nil, boom}), b, Options{})
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "validate: reading A: ") || readB {
		t.Errorf("error %v (B read: %v)", err, readB)
	}
	_, err = Compare(context.Background(), rowsOf(nil, nil), rowsOf([]map[string]any{nil}, []error{boom}), Options{})
	if !errors.Is(err, boom) || !strings.HasPrefix(err.Error(), "validate: reading B: ") {
		t.Errorf("error %v", err)
	}
	// A missing key field.
	_, err = Compare(context.Background(), rowsOf([]map[string]any{row}, []error{nil}), rowsOf(nil, nil), Options{Key: []string{"ID"}})
	if !errors.Is(err, ErrNoField) {
		t.Errorf("error %v, want ErrNoField", err)
	}
	// A cancelled context stops the comparison.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Compare(ctx, rowsOf([]map[string]any{row}, []error{nil}), rowsOf(nil, nil), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}

// TestCompareMany compares larger random outputs with known differences,
// and checks the counts and the per-window counts against them.
func TestCompareMany(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const windows, profiles = 24, 200
	var a, b []map[string]any
	wantPer := map[int64]Counts{}
	for w := range int64(windows) {
		for p := range int64(profiles) {
			start := 1793527200000 + w*3600000
			row := map[string]any{"profileId": p, "windowStart": start, "windowEnd": start + 3600000, "count": int64(r.IntN(50) + 1)}
			c := wantPer[start]
			switch x := r.IntN(100); {
			case x < 2:
				a = append(a, row)
				c.Missing++
			case x < 4:
				b = append(b, row)
				c.Extra++
			case x < 6:
				a = append(a, row)
				changed := maps.Clone(row)
				changed["count"] = row["count"].(int64) + 1
				b = append(b, changed)
				c.Differing++
			default:
				a = append(a, row)
				// As a JSON reader would see it.
				b = append(b, map[string]any{"profileId": json.Number(fmt.Sprint(p)), "windowStart": float64(start),
					"windowEnd": json.Number(fmt.Sprint(start + 3600000)), "count": json.Number(fmt.Sprintf("%d.0", row["count"]))})
				c.Matching++
			}
			wantPer[start] = c
		}
	}
	var want Counts
	for _, c := range wantPer {
		want.Matching += c.Matching
		want.Missing += c.Missing
		want.Extra += c.Extra
		want.Differing += c.Differing
	}
	r.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
	errs := func(n int) []error { return make([]error, n) }
	rep, err := Compare(context.Background(), rowsOf(a, errs(len(a))), rowsOf(b, errs(len(b))),
		Options{Key: []string{"profileId", "windowStart"}, Examples: 3})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Counts != want {
		t.Errorf("counts %+v, want %+v", rep.Counts, want)
	}
	if rep.Same() || want.Same() {
		t.Error("the outputs are the same")
	}
	if !slices.Equal(rep.Window, []string{"windowStart", "windowEnd"}) || len(rep.Windows) != windows {
		t.Fatalf("windows by %v: %d", rep.Window, len(rep.Windows))
	}
	for _, w := range rep.Windows {
		if c := wantPer[w.Window[0].(int64)]; w.Counts != c {
			t.Errorf("window %v: %+v, want %+v", w.Window, w.Counts, c)
		}
	}
	if len(rep.MissingExamples) != 3 || len(rep.ExtraExamples) != 3 || len(rep.DifferingExamples) != 3 {
		t.Errorf("examples: %d missing, %d extra, %d differing", len(rep.MissingExamples), len(rep.ExtraExamples), len(rep.DifferingExamples))
	}
	for _, d := range rep.DifferingExamples {
		if len(d.Fields) != 1 || d.Fields[0].Field != "count" || d.Fields[0].B.(int64) != d.Fields[0].A.(int64)+1 {
			t.Errorf("differing example %+v", d)
		}
	}
	if !slices.IsSortedFunc(rep.MissingExamples, func(x, y RowExample) int { return compareValues(x.Key, y.Key) }) {
		t.Error("missing examples are not in key order")
	}
}
