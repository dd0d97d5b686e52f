package codec

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"testing"
	"time"
)

func BenchmarkJSONDecode(b *testing.B) {
	line := []byte(`{"id":7,"user":"ann","score":2.5,"tags":["a","b"],"at":"2024-05-01T12:30:00.123Z","where":{"x":1,"y":2}}`)
	d, _ := NewJSONDecoder(reflect.TypeFor[event]())
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := d.Decode(line); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONDecodeNulls decodes a line with nulls in fields that may
// hold them (a pointer, a slice): the check for nulls in fields that may
// not has to look at such lines more closely.
func BenchmarkJSONDecodeNulls(b *testing.B) {
	line := []byte(`{"id":7,"user":"ann","score":null,"tags":null,"at":"2024-05-01T12:30:00.123Z","where":{"x":1,"y":2}}`)
	d, _ := NewJSONDecoder(reflect.TypeFor[event]())
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := d.Decode(line); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParquetRead(b *testing.B) {
	const n = 10000
	values := make([]any, n)
	for i := range values {
		values[i] = row{ID: int64(i), User: "user", Tags: []string{"a"}, Where: point{i, i}}
	}
	var buf bytes.Buffer
	w, _ := NewParquetWriter(&buf, reflect.TypeFor[row](), ParquetWriterOptions{})
	if err := w.Write(values); err != nil {
		b.Fatal(err)
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewParquetReader(bytes.NewReader(data), int64(len(data)), "b.parquet", reflect.TypeFor[row](), ParquetReaderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		rows := 0
		for {
			batch, err := r.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			rows += len(batch.Values)
		}
		r.Close()
		if rows != n {
			b.Fatalf("read %d rows", rows)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
}

// row is event without its map field, which Parquet cannot hold.
type row struct {
	ID    int64
	User  string
	Score *float64
	Tags  []string
	At    time.Time
	Where point
}
