package file_test

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/windowing"
)

type hit struct {
	ID int64 `json:"id"`
	Ms int64 `json:"ms"`
}

var day0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

// writeHits writes hits at the given hours after day0, in row groups of 2.
func writeHits(t *testing.T, path string, hours ...int) {
	t.Helper()
	u, _ := connector.ParseURI("file://" + path + "?rowgroup=2")
	s, err := connector.OpenSink(context.Background(), connector.SinkSpec{Binding: "out", URI: u, Type: reflect.TypeFor[hit]()})
	if err != nil {
		t.Fatal(err)
	}
	var vs []any
	for _, h := range hours {
		vs = append(vs, hit{ID: int64(h), Ms: day0.Add(time.Duration(h) * time.Hour).UnixMilli()})
	}
	if err := s.Write(context.Background(), vs); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func hours(h int) windowing.Time { return windowing.FromTime(day0.Add(time.Duration(h) * time.Hour)) }

// TestParquetSplitsAndPruning: a Parquet file is a split per row group;
// with ?time= and a range, row groups and date=/hour= folders outside it
// are skipped, and splits whose times are known come in time order, with
// their bounds.
func TestParquetSplitsAndPruning(t *testing.T) {
	dir := t.TempDir()
	writeHits(t, filepath.Join(dir, "flat", "b.parquet"), 10, 11, 2, 3, 20, 21)
	writeHits(t, filepath.Join(dir, "flat", "a.parquet"), 30, 31)
	writeHits(t, filepath.Join(dir, "hive", "date=2026-11-01", "hour=05", "x.parquet"), 5, 5)
	writeHits(t, filepath.Join(dir, "hive", "date=2026-11-02", "hour=01", "x.parquet"), 25, 25)
	list := func(uri string, r *connector.TimeRange) string {
		t.Helper()
		u, _ := connector.ParseURI(uri)
		src, err := connector.OpenSource(context.Background(), connector.SourceSpec{Binding: "in", URI: u, Type: reflect.TypeFor[hit](), Range: r})
		if err != nil {
			t.Fatal(err)
		}
		splits, _ := src.Splits(context.Background())
		var out []string
		for _, sp := range splits {
			id := strings.TrimPrefix(sp.ID(), dir+"/")
			if tb, ok := sp.(connector.TimeBoundedSplit); ok {
				lo, hi := tb.EventTimeBounds()
				id += fmt.Sprintf("[%d..%d]", (lo-hours(0))/3600000, (hi-hours(0))/3600000)
			}
			out = append(out, id)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct {
		name, uri string
		r         *connector.TimeRange
		want      string
	}{
		{"a split per row group, by name", "file://" + dir + "/flat/", nil,
			"flat/a.parquet flat/b.parquet#rowgroup=0 flat/b.parquet#rowgroup=1 flat/b.parquet#rowgroup=2"},
		{"with times: in time order", "file://" + dir + "/flat/?time=ms", nil,
			"flat/b.parquet#rowgroup=1[2..3] flat/b.parquet#rowgroup=0[10..11] flat/b.parquet#rowgroup=2[20..21] flat/a.parquet[30..31]"},
		{"row groups outside the range skipped", "file://" + dir + "/flat/?time=ms", &connector.TimeRange{From: hours(3), To: hours(20)},
			"flat/b.parquet#rowgroup=1[2..3] flat/b.parquet#rowgroup=0[10..11]"},
		{"partition folders", "file://" + dir + "/hive/", nil,
			"hive/date=2026-11-01/hour=05/x.parquet[5..5] hive/date=2026-11-02/hour=01/x.parquet[25..25]"},
		{"partition folders outside the range skipped", "file://" + dir + "/hive/", &connector.TimeRange{From: hours(24), To: hours(48)},
			"hive/date=2026-11-02/hour=01/x.parquet[25..25]"},
	} {
		if got := list(tc.uri, tc.r); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	u, _ := connector.ParseURI("file://" + dir + "/flat/?time=nope")
	if _, err := connector.OpenSource(context.Background(), connector.SourceSpec{Binding: "in", URI: u, Type: reflect.TypeFor[hit]()}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("a missing time column: %v", err)
	}
}
