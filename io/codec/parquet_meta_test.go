package codec

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"
)

type timed struct {
	ID int64     `json:"id"`
	Ms int64     `json:"ms"`
	At time.Time `json:"at"`
}

// TestParquetRowGroupsAndSelection writes 10 rows in row groups of 3 and
// reads the footer's statistics for an epoch-milliseconds column and a
// timestamp column, then reads chosen row groups only.
func TestParquetRowGroupsAndSelection(t *testing.T) {
	var vs []any
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < 10; i++ {
		at := base.Add(time.Duration(i) * time.Hour)
		vs = append(vs, timed{ID: int64(i), Ms: at.UnixMilli(), At: at})
	}
	data := writeParquet(t, reflect.TypeFor[timed](), vs, ParquetWriterOptions{RowGroupRows: 3})
	for _, col := range []string{"ms", "at"} {
		groups, err := ParquetRowGroups(bytes.NewReader(data), int64(len(data)), "t.parquet", col)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, g := range groups {
			got += fmt.Sprintf("[%d %d %v %d..%d]", g.Index, g.Rows, g.HasTime, (g.MinTime-base.UnixMilli())/3600000, (g.MaxTime-base.UnixMilli())/3600000)
		}
		if want := "[0 3 true 0..2][1 3 true 3..5][2 3 true 6..8][3 1 true 9..9]"; got != want {
			t.Errorf("%s: %s, want %s", col, got, want)
		}
	}
	if _, err := ParquetRowGroups(bytes.NewReader(data), int64(len(data)), "t.parquet", "nope"); err == nil {
		t.Error("a missing time column is not an error")
	}
	got, _, err := readParquet(t, data, reflect.TypeFor[timed](), ParquetReaderOptions{RowGroups: []int{2, 0}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for _, v := range got {
		ids = append(ids, v.(timed).ID)
	}
	if fmt.Sprint(ids) != "[6 7 8 0 1 2]" {
		t.Errorf("row groups 2 and 0: %v", ids)
	}
	if _, _, err := readParquet(t, data, reflect.TypeFor[timed](), ParquetReaderOptions{RowGroups: []int{4}}); err == nil {
		t.Error("reading a row group the file does not have is not an error")
	}
}
