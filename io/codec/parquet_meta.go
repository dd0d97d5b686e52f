package codec

import (
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

// ParquetRowGroup describes a row group of a Parquet file from its footer.
type ParquetRowGroup struct {
	Index int
	Rows  int64
	// HasTime says MinTime and MaxTime hold the range of the time column's
	// values in the row group, in epoch milliseconds (from the column's
	// statistics; a writer may leave them out).
	HasTime          bool
	MinTime, MaxTime int64
}

// ParquetRowGroups reads the footer of the Parquet file in r (size bytes)
// and describes its row groups. With timeColumn set, it also reads that
// column's statistics: an int64 column is taken as epoch milliseconds, a
// timestamp column in its unit. name names the file in errors.
func ParquetRowGroups(r io.ReaderAt, size int64, name, timeColumn string) ([]ParquetRowGroup, error) {
	pf, err := file.NewParquetReader(io.NewSectionReader(r, 0, size))
	if err != nil {
		return nil, fmt.Errorf("codec: %s: not a readable Parquet file: %w", name, err)
	}
	defer pf.Close()
	md := pf.MetaData()
	col, div := -1, int64(1)
	if timeColumn != "" {
		col = md.Schema.ColumnIndexByName(timeColumn)
		if col < 0 {
			return nil, fmt.Errorf("codec: %s: no column %q for event time", name, timeColumn)
		}
		c := md.Schema.Column(col)
		if c.PhysicalType() != parquet.Types.Int64 {
			return nil, fmt.Errorf("codec: %s: column %q holds %s, not epoch milliseconds or a timestamp", name, timeColumn, c.PhysicalType())
		}
		if ts, ok := c.LogicalType().(*schema.TimestampLogicalType); ok {
			switch ts.TimeUnit() {
			case schema.TimeUnitMicros:
				div = 1000
			case schema.TimeUnitNanos:
				div = 1000_000
			}
		}
	}
	out := make([]ParquetRowGroup, md.NumRowGroups())
	for i := range out {
		rg := md.RowGroup(i)
		out[i] = ParquetRowGroup{Index: i, Rows: rg.NumRows()}
		if col < 0 {
			continue
		}
		cc, err := rg.ColumnChunk(col)
		if err != nil {
			return nil, fmt.Errorf("codec: %s: row group %d: %w", name, i, err)
		}
		if ok, _ := cc.StatsSet(); !ok {
			continue
		}
		st, err := cc.Statistics()
		if err != nil || st == nil || !st.HasMinMax() {
			continue
		}
		if s, ok := st.(*metadata.Int64Statistics); ok {
			out[i].HasTime = true
			out[i].MinTime, out[i].MaxTime = floorDiv(s.Min(), div), floorDiv(s.Max(), div)
		}
	}
	return out, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
