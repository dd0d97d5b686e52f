package filefmt

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"

	"github.com/weir-dev/weir/io/codec"
	"github.com/weir-dev/weir/io/connector"
)

const (
	// MaxLine is the longest JSON line read (16 MiB). A longer line becomes
	// a Record with Err, Raw holding its first RawLimit bytes and RawSize
	// its length.
	MaxLine = 16 << 20
	// RawLimit bounds the Raw bytes kept of a line too long to read.
	RawLimit = 4 << 10

	readBuffer = 256 << 10
	// ctxEvery is how many lines a Read call reads between checks of ctx.
	ctxEvery = 256
)

// jsonlReader reads JSON Lines.
type jsonlReader struct {
	prefix string
	name   string
	dec    *codec.JSONDecoder
	rc     io.Closer
	br     *bufio.Reader
	long   []byte // a line longer than the buffer, being assembled
	line   int    // number of the last line read, from 1
	size   int64  // length of the last line read, when too long
	err    error  // sticky: io.EOF or a read error
	maxLen int
}

// NewJSONLReader returns a reader of the JSON lines of r, decoded into
// values of t, closing c (if not nil) on Close. name names the file in
// Records' Pos ("name:LINE", lines from 1) and in errors, which start with
// prefix. Empty lines are skipped; a line that does not decode is a Record
// with Err and a copy of the line in Raw, never an error.
func NewJSONLReader(prefix, name string, r io.Reader, c io.Closer, t reflect.Type) (connector.Reader, error) {
	dec, err := codec.NewJSONDecoder(t)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", prefix, name, err)
	}
	return &jsonlReader{prefix: prefix, name: name, dec: dec, rc: c, br: bufio.NewReaderSize(r, readBuffer), maxLen: MaxLine}, nil
}

func (r *jsonlReader) Read(ctx context.Context, buf []connector.Record) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	for n < len(buf) {
		if r.err != nil {
			break
		}
		if r.line%ctxEvery == 0 && r.line > 0 {
			if err := ctx.Err(); err != nil {
				return n, err
			}
		}
		line, tooLong, err := r.readLine()
		if err != nil {
			r.err = err
			// At a read error the line is cut short: report the error,
			// not a bad record.
			if err != io.EOF || (len(line) == 0 && !tooLong) {
				break
			}
		}
		r.line++
		if tooLong {
			buf[n] = connector.Record{
				Err:     fmt.Errorf("%w: line longer than %d bytes", codec.ErrDecode, r.maxLen),
				Raw:     bytes.Clone(line),
				RawSize: r.size,
				Pos:     r.pos(),
			}
			n++
			continue
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		v, derr := r.dec.Decode(line)
		if derr != nil {
			buf[n] = connector.Record{Err: derr, Raw: bytes.Clone(line), Pos: r.pos()}
		} else {
			buf[n] = connector.Record{Value: v, Pos: r.pos()}
		}
		n++
	}
	if n > 0 {
		return n, nil
	}
	if r.err == io.EOF {
		return 0, io.EOF
	}
	if r.err != nil {
		return 0, fmt.Errorf("%s: %s:%d: %w", r.prefix, r.name, r.line+1, r.err)
	}
	return 0, nil
}

func (r *jsonlReader) pos() string { return r.name + ":" + strconv.Itoa(r.line) }

// readLine returns the next line without its newline; it is valid until the
// next call. A line longer than maxLen is skipped to its end and returned
// cut to RawLimit bytes with tooLong set and its length in r.size. At the
// end of the input err is io.EOF, possibly with a last line that lacked a
// newline.
func (r *jsonlReader) readLine() (line []byte, tooLong bool, err error) {
	if cap(r.long) > 4*readBuffer {
		r.long = nil // do not keep a huge line's buffer
	}
	r.long = r.long[:0]
	r.size = 0
	for {
		frag, err := r.br.ReadSlice('\n')
		r.size += int64(len(bytes.TrimSuffix(frag, []byte{'\n'})))
		if err != bufio.ErrBufferFull {
			if len(r.long) == 0 && !tooLong {
				line := bytes.TrimSuffix(frag, []byte{'\n'})
				if len(line) <= r.maxLen {
					return line, false, err
				}
				return line[:min(len(line), RawLimit)], true, err
			}
			if !tooLong {
				// frag may end in the newline, which is not the line's.
				if len(r.long)+len(bytes.TrimSuffix(frag, []byte{'\n'})) > r.maxLen {
					tooLong = true
				} else {
					r.long = append(r.long, frag...)
					return bytes.TrimSuffix(r.long, []byte{'\n'}), false, err
				}
			}
			return r.long[:min(len(r.long), RawLimit)], true, err
		}
		// The buffer is full: the line goes on.
		if !tooLong {
			if len(r.long)+len(frag) > r.maxLen {
				tooLong = true
				if len(r.long) < RawLimit {
					r.long = append(r.long, frag[:min(len(frag), RawLimit-len(r.long))]...)
				}
			} else {
				r.long = append(r.long, frag...)
			}
		}
	}
}

func (r *jsonlReader) Close() error {
	if r.rc == nil {
		return nil
	}
	c := r.rc
	r.rc = nil
	return c.Close()
}

// parquetReader reads a Parquet file.
type parquetReader struct {
	prefix  string
	name    string
	pr      *codec.ParquetReader
	c       io.Closer
	pending codec.Batch
	next    int // index in pending.Values
}

// NewParquetReader returns a reader of the rows of the Parquet file in ra
// (size bytes), as values of t, closing c (if not nil) on Close. columns
// limits the columns read (SourceSpec.Columns), rowGroups the row groups
// (nil: all). Records' Pos is "name:rowgroup R row N", both from 0. A
// schema that does not fit t is an error wrapping connector.ErrSchema; a
// row that cannot be read (codec.Batch.Bad) is a Record with Err and the
// row as JSON in Raw, never an error.
func NewParquetReader(prefix, name string, ra io.ReaderAt, size int64, c io.Closer, t reflect.Type, columns []string, rowGroups []int) (connector.Reader, error) {
	pr, err := codec.NewParquetReader(ra, size, name, t, codec.ParquetReaderOptions{Columns: columns, RowGroups: rowGroups})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	return &parquetReader{prefix: prefix, name: name, pr: pr, c: c}, nil
}

func (r *parquetReader) Read(ctx context.Context, buf []connector.Record) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if r.next >= len(r.pending.Values) {
		b, err := r.pr.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, io.EOF
			}
			return 0, fmt.Errorf("%s: %w", r.prefix, err)
		}
		r.pending, r.next = b, 0
	}
	n := 0
	for n < len(buf) && r.next < len(r.pending.Values) {
		row := r.pending.Row + int64(r.next)
		buf[n] = connector.Record{
			Value: r.pending.Values[r.next],
			Pos:   r.name + ":rowgroup " + strconv.Itoa(r.pending.RowGroup) + " row " + strconv.FormatInt(row, 10),
		}
		if bad, ok := r.pending.Bad[r.next]; ok {
			buf[n].Err, buf[n].Raw = bad.Err, bad.Raw
		}
		r.pending.Values[r.next] = nil
		r.next++
		n++
	}
	return n, nil
}

func (r *parquetReader) Close() error {
	err := r.pr.Close()
	if r.c != nil {
		c := r.c
		r.c = nil
		if cerr := c.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
