package main

import (
	"bufio"
	"bytes"
	"cmp"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-dev/weir/internal/validate"
	"github.com/weir-dev/weir/io/connector"
)

// catFlags are the flags of weir cat.
type catFlags struct {
	limit   int
	sort    string
	format  string
	columns []string
}

func newCatCmd(a *app) *cobra.Command {
	var f catFlags
	cmd := &cobra.Command{
		Use:   "cat URI",
		Short: "Print the records of a source",
		Long: `Print the records of any source URI (a path, a glob or a file:// URI of
.jsonl or .parquet files), all splits, as a table or as JSON Lines.

Columns are the sorted union of the records' fields unless --columns names
them; a column or --sort field may name a nested field as a.b. Records that
cannot be decoded are skipped and counted on stderr.`,
		Example: `  weir cat out/counts.jsonl --sort -count --limit 10
  weir cat data/pageviews.parquet --columns timestamp,viewerId,pageKey --format jsonl`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cat(cmd.Context(), a, cmd.OutOrStdout(), args[0], f)
		},
	}
	fl := cmd.Flags()
	fl.IntVarP(&f.limit, "limit", "n", 0, "print at most this many records, after sorting (0: all)")
	fl.StringVar(&f.sort, "sort", "", "sort by this `field`, descending with a leading - (-count)")
	fl.StringVar(&f.format, "format", "table", "output format: table or jsonl")
	fl.StringSliceVar(&f.columns, "columns", nil, "`names` of the columns to print, in this order (a,b,c)")
	return cmd
}

func cat(ctx context.Context, a *app, out io.Writer, uri string, f catFlags) error {
	var bad []string
	if f.format != "table" && f.format != "jsonl" {
		bad = append(bad, fmt.Sprintf("--format %q: want table or jsonl", f.format))
	}
	if f.limit < 0 {
		bad = append(bad, fmt.Sprintf("--limit is %d, want >= 0", f.limit))
	}
	sortField, desc := strings.CutPrefix(f.sort, "-")
	if f.sort != "" && sortField == "" {
		bad = append(bad, "--sort needs a field name")
	}
	for _, c := range f.columns {
		if c == "" {
			bad = append(bad, "--columns has an empty name")
			break
		}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}

	u, err := connector.ParseURI(uri)
	if err != nil {
		return err
	}
	// Columnar formats need read only the top-level fields printed or
	// sorted on: a name's first element, or the whole name (see lookup).
	var need []string
	for _, c := range f.columns {
		top, _, _ := strings.Cut(c, ".")
		need = append(need, top, c)
	}
	if len(need) > 0 && sortField != "" {
		top, _, _ := strings.Cut(sortField, ".")
		need = append(need, top, sortField)
	}
	slices.Sort(need)
	src, err := connector.OpenSource(ctx, connector.SourceSpec{
		Binding: "input",
		URI:     u,
		Type:    reflect.TypeFor[map[string]any](),
		Columns: slices.Compact(need),
	})
	if err != nil {
		return err
	}
	defer src.Close()

	var order func(x, y map[string]any) int
	if sortField != "" {
		order = func(x, y map[string]any) int {
			vx, _ := validate.Lookup(x, sortField)
			vy, _ := validate.Lookup(y, sortField)
			if desc {
				return compareValues(vy, vx)
			}
			return compareValues(vx, vy)
		}
	}
	c := &collector{limit: f.limit, order: order}
	if !src.Bounded() && c.want() < 0 {
		return fmt.Errorf("%s is unbounded: give --limit (and no --sort)", displayURI(uri, u))
	}
	rs, err := readSource(ctx, src, c)
	if err != nil {
		return err
	}
	if rs.dead > 0 {
		a.log.Warn("skipped undecodable records", "uri", displayURI(uri, u), "count", rs.dead, "first", rs.firstDead)
	}
	a.log.Debug("read source", "uri", displayURI(uri, u), "splits", rs.splits, "records", c.n)

	rows := c.rows()
	columns := f.columns
	if len(columns) == 0 {
		set := map[string]bool{}
		for _, r := range rows {
			for k := range r {
				set[k] = true
			}
		}
		columns = slices.Sorted(maps.Keys(set))
	}
	bw := bufio.NewWriter(out)
	if f.format == "jsonl" {
		err = writeJSONL(bw, rows, f.columns)
	} else {
		err = writeTable(bw, rows, columns)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// collector keeps the records that cat prints: the first limit records
// (all if limit is 0) in the given order, or in input order if order is nil.
// With an order and a limit it holds only limit records.
type collector struct {
	limit int
	order func(x, y map[string]any) int
	n     int      // records offered
	kept  []ranked // in input order; with an order and a limit, a heap whose root is the last of them
}

type ranked struct {
	row map[string]any
	seq int // input position, to keep the sort stable
}

func (c *collector) less(a, b ranked) bool {
	if r := c.order(a.row, b.row); r != 0 {
		return r < 0
	}
	return a.seq < b.seq
}

// want returns how many more records are wanted, or -1 for all of them.
func (c *collector) want() int {
	if c.order != nil || c.limit == 0 {
		return -1
	}
	return c.limit - len(c.kept)
}

func (c *collector) offer(row map[string]any) {
	r := ranked{row: row, seq: c.n}
	c.n++
	switch {
	case c.order == nil || c.limit == 0 || len(c.kept) < c.limit:
		c.kept = append(c.kept, r)
		if c.order != nil && c.limit > 0 {
			heap.Fix((*worstFirst)(c), len(c.kept)-1)
		}
	case c.less(r, c.kept[0]):
		c.kept[0] = r
		heap.Fix((*worstFirst)(c), 0)
	}
}

// rows returns the records to print, in order.
func (c *collector) rows() []map[string]any {
	if c.order != nil {
		slices.SortFunc(c.kept, func(a, b ranked) int {
			if c.less(a, b) {
				return -1
			}
			return 1
		})
	}
	rows := make([]map[string]any, len(c.kept))
	for i, r := range c.kept {
		rows[i] = r.row
	}
	return rows
}

// worstFirst is a collector's kept records as a heap.Interface whose root is
// the last in order. The collector adds and replaces records itself and
// restores the heap with heap.Fix, so Push and Pop are never called.
type worstFirst collector

func (h *worstFirst) Len() int           { return len(h.kept) }
func (h *worstFirst) Less(i, j int) bool { return (*collector)(h).less(h.kept[j], h.kept[i]) }
func (h *worstFirst) Swap(i, j int)      { h.kept[i], h.kept[j] = h.kept[j], h.kept[i] }
func (h *worstFirst) Push(any)           { panic("weir: worstFirst.Push") }
func (h *worstFirst) Pop() any           { panic("weir: worstFirst.Pop") }

type readResult struct {
	dead      int
	firstDead string // position and reason of the first undecodable record
	splits    int
}

// rowSink receives the records readSource reads, as rows.
type rowSink interface {
	// want returns how many more rows are wanted, or -1 for all of them.
	want() int
	offer(row map[string]any)
}

// readSource reads the source's splits into c, a bounded source's one after
// the other and an unbounded source's in turn, until c wants no more.
// Records must be map[string]any, or json.RawMessage holding a JSON object,
// which is decoded with numbers as json.Number; other JSON is an
// undecodable record.
func readSource(ctx context.Context, src connector.Source, c rowSink) (*readResult, error) {
	splits, err := src.Splits(ctx)
	if err != nil {
		return nil, err
	}
	res := &readResult{splits: len(splits)}
	buf := make([]connector.Record, 256)
	// take reads from r once; it reports whether r has ended.
	take := func(r connector.Reader) (bool, error) {
		want := len(buf)
		if w := c.want(); w >= 0 {
			want = min(want, w)
		}
		n, err := r.Read(ctx, buf[:want])
		for _, rec := range buf[:n] {
			var m map[string]any
			if rec.Err == nil {
				switch v := rec.Value.(type) {
				case map[string]any:
					m = v
				case json.RawMessage:
					m, rec.Err = decodeObject(v)
				default:
					return false, fmt.Errorf("%s: record of type %T, want map[string]any", rec.Pos, rec.Value)
				}
			}
			if rec.Err != nil {
				if res.dead == 0 {
					res.firstDead = rec.Pos + ": " + rec.Err.Error()
				}
				res.dead++
				continue
			}
			c.offer(m)
		}
		clear(buf[:n])
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		return false, err
	}
	full := func() bool { return c.want() == 0 }

	if src.Bounded() {
		for _, s := range splits {
			if full() {
				break
			}
			r, err := s.Open(ctx)
			if err != nil {
				return nil, fmt.Errorf("split %s: %w", s.ID(), err)
			}
			for !full() {
				end, err := take(r)
				if err != nil {
					r.Close()
					return nil, fmt.Errorf("split %s: %w", s.ID(), err)
				}
				if end {
					break
				}
			}
			if err := r.Close(); err != nil {
				return nil, fmt.Errorf("split %s: %w", s.ID(), err)
			}
		}
		return res, nil
	}

	readers := make([]connector.Reader, 0, len(splits))
	defer func() {
		for _, r := range readers {
			if r != nil {
				r.Close()
			}
		}
	}()
	for _, s := range splits {
		r, err := s.Open(ctx)
		if err != nil {
			return nil, fmt.Errorf("split %s: %w", s.ID(), err)
		}
		readers = append(readers, r)
	}
	for live := len(readers); live > 0 && !full(); {
		for i, r := range readers {
			if r == nil || full() {
				continue
			}
			end, err := take(r)
			if err != nil {
				return nil, fmt.Errorf("split %s: %w", splits[i].ID(), err)
			}
			if end {
				r.Close()
				readers[i] = nil
				live--
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// decodeObject decodes a JSON object with its numbers as json.Number, so
// that integers keep every digit.
func decodeObject(b json.RawMessage) (map[string]any, error) {
	if b = bytes.TrimSpace(b); len(b) == 0 || b[0] != '{' {
		return nil, errors.New("not a JSON object")
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// kind orders values of different types: missing and null first, then
// booleans, numbers, strings and everything else.
func kind(v any) int {
	switch v.(type) {
	case nil:
		return 0
	case bool:
		return 1
	case string:
		return 3
	case time.Time:
		return 4
	}
	if _, _, _, ok := number(v); ok {
		return 2
	}
	return 5
}

// number returns v as a float64 and, when it is an integer that fits, as an
// int64 (isInt); ok is false if v is not a number.
func number(v any) (i int64, isInt bool, f float64, ok bool) {
	if n, isNum := v.(json.Number); isNum {
		if i, err := n.Int64(); err == nil {
			return i, true, float64(i), true
		}
		f, err := n.Float64()
		return 0, false, f, err == nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), true, float64(rv.Int()), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		return int64(u), u <= math.MaxInt64, float64(u), true
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
			return int64(f), true, f, true
		}
		return 0, false, f, true
	}
	return 0, false, 0, false
}

// compareValues orders two field values for --sort.
func compareValues(a, b any) int {
	if c := cmp.Compare(kind(a), kind(b)); c != 0 {
		return c
	}
	switch a := a.(type) {
	case nil:
		return 0
	case bool:
		b := b.(bool)
		switch {
		case a == b:
			return 0
		case !a:
			return -1
		}
		return 1
	case string:
		return strings.Compare(a, b.(string))
	case time.Time:
		return a.Compare(b.(time.Time))
	}
	ia, aInt, fa, _ := number(a)
	ib, bInt, fb, isNum := number(b)
	switch {
	case !isNum:
		return strings.Compare(formatValue(a), formatValue(b))
	case aInt && bInt:
		return cmp.Compare(ia, ib)
	}
	return cmp.Compare(fa, fb)
}

// formatValue formats a field value for a table cell.
func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		if strings.ContainsFunc(v, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return strconv.Quote(v)
		}
		return v
	case bool:
		return strconv.FormatBool(v)
	case json.Number:
		return v.String()
	case time.Time:
		return v.UTC().Format(time.RFC3339Nano)
	case float32:
		return formatFloat(float64(v), 32)
	case float64:
		return formatFloat(v, 64)
	case []byte:
		return strconv.Quote(string(v))
	}
	if i, isInt, f, ok := number(v); ok {
		if isInt {
			return strconv.FormatInt(i, 10)
		}
		return formatFloat(f, 64)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// formatFloat prints integral values without an exponent, so that epoch
// milliseconds read from JSON print as written.
func formatFloat(f float64, bits int) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e18 {
		return strconv.FormatFloat(f, 'f', -1, bits)
	}
	return strconv.FormatFloat(f, 'g', -1, bits)
}

func writeTable(w io.Writer, rows []map[string]any, columns []string) error {
	if len(columns) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(&trimWriter{w: w}, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns, "\t"))
	cells := make([]string, len(columns))
	for _, r := range rows {
		for i, c := range columns {
			cells[i] = ""
			if v, ok := validate.Lookup(r, c); ok {
				cells[i] = formatValue(v)
			}
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// trimWriter drops the spaces at the ends of the lines written through it,
// which tabwriter leaves when the last cells of a row are empty.
type trimWriter struct {
	w       io.Writer
	pending int // spaces held back
}

func (t *trimWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexFunc(p, func(r rune) bool { return r != ' ' })
		if i < 0 {
			t.pending += len(p)
			break
		}
		if p[i] != '\n' && t.pending+i > 0 {
			if _, err := t.w.Write(bytes.Repeat([]byte{' '}, t.pending+i)); err != nil {
				return 0, err
			}
		}
		t.pending = 0
		j := bytes.IndexByte(p[i:], ' ')
		if j < 0 {
			j = len(p) - i
		}
		if _, err := t.w.Write(p[i : i+j]); err != nil {
			return 0, err
		}
		p = p[i+j:]
	}
	return n, nil
}

// writeJSONL writes the rows as JSON Lines, only the given fields if any.
func writeJSONL(w io.Writer, rows []map[string]any, columns []string) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, r := range rows {
		if len(columns) > 0 {
			sel := make(map[string]any, len(columns))
			for _, c := range columns {
				if v, ok := validate.Lookup(r, c); ok {
					sel[c] = v
				}
			}
			r = sel
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}
