// Package validate compares two outputs of a pipeline, such as the topic a
// stream run wrote and the Parquet files a backfill of the same input
// wrote, and reports which rows match, which are missing from the second or
// extra in it, and which differ and in which fields, in all and window by
// window. It is the check that a backfill and a stream agree (weir
// validate).
//
// Rows are records read generically: JSON objects, Parquet rows as
// map[string]any. They are normalized first, so that formats compare alike:
// numbers by value (3 and 3.0 match), a null field as an absent one, a
// timestamp as its RFC 3339 text and bytes as their base64 text (as
// encoding/json writes them).
//
// With Options.Key, rows with the same key on both sides are compared field
// by field, floating-point numbers within Options.Tolerance; a key with
// several rows on a side is reported as a duplicate, and its rows are
// paired up equal ones first. Without a key, whole rows are compared as
// multisets: a changed row is one missing and one extra.
//
// Memory: Compare holds A's rows in a map by key while it streams B
// against them. Besides A, it keeps only B's rows that matched none of A's
// rows with their key, the keys of B's rows that A does not have (to find
// duplicates; not without a key), the counts per window and a few examples.
// Give the smaller output as A.
//
// Dependency direction: validate imports only the standard library;
// cmd/weir imports it and feeds it the rows of sources it opens through
// io/connector.
package validate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"
)

// Errors of Compare, for errors.Is.
var (
	// ErrOptions is returned for Options that Validate rejects.
	ErrOptions = errors.New("validate: bad options")
	// ErrNoField is returned when a key field is in none of a side's rows,
	// or a window field named in Options.Window is in no row: a misspelled
	// name, most likely.
	ErrNoField = errors.New("validate: no such field")
)

// DefaultWindow are the window fields Compare looks for when
// Options.Window is empty: those Weir's example pipelines write.
var DefaultWindow = []string{"windowStart", "windowEnd"}

// Options configure Compare. The zero value compares whole rows and keeps
// no examples.
type Options struct {
	// Key names the fields that identify a row, such as profileId and
	// windowStart; a dotted name reaches into a nested record
	// ("profile.id"). Default: none, whole rows are compared.
	Key []string
	// Ignore names fields left out of every comparison, such as a
	// processing time; dotted names reach into nested records. Default:
	// none.
	Ignore []string
	// Window names the fields that say which window a row belongs to; the
	// report counts matching, missing, extra and differing rows per window.
	// Default: DefaultWindow, those of them that rows have.
	Window []string
	// Tolerance is how far apart two numbers may be, when either is a
	// floating-point number, and still match: |a-b| <= Tolerance, or
	// |a-b| <= Tolerance*max(|a|,|b|). It applies with a Key only; integers
	// compare exactly. Default: 0, equal values only.
	Tolerance float64
	// Examples is how many examples of each kind of difference the report
	// keeps, the first by key. Default: 0, none.
	Examples int
}

// Validate reports every problem with the options at once, in an error
// wrapping ErrOptions.
func (o *Options) Validate() error {
	var bad []string
	for _, l := range []struct {
		what  string
		names []string
	}{{"key", o.Key}, {"ignore", o.Ignore}, {"window", o.Window}} {
		if slices.Contains(l.names, "") {
			bad = append(bad, l.what+" has an empty field name")
		}
		seen := map[string]bool{}
		for _, n := range l.names {
			if seen[n] && n != "" {
				bad = append(bad, fmt.Sprintf("%s names %q twice", l.what, n))
			}
			seen[n] = true
		}
	}
	for _, n := range o.Ignore {
		switch {
		case n == "":
		case slices.Contains(o.Key, n):
			bad = append(bad, fmt.Sprintf("%q is both a key field and ignored", n))
		case slices.Contains(o.Window, n):
			bad = append(bad, fmt.Sprintf("%q is both a window field and ignored", n))
		}
	}
	if o.Tolerance < 0 || math.IsNaN(o.Tolerance) || math.IsInf(o.Tolerance, 0) {
		bad = append(bad, fmt.Sprintf("tolerance is %v, want a finite number >= 0", o.Tolerance))
	}
	if o.Examples < 0 {
		bad = append(bad, fmt.Sprintf("examples is %d, want >= 0", o.Examples))
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrOptions, strings.Join(bad, "; "))
	}
	return nil
}

// Counts count rows by how they compared.
type Counts struct {
	// Matching counts pairs of equal rows, one from each side.
	Matching int64
	// Missing counts rows of A that B does not have.
	Missing int64
	// Extra counts rows of B that A does not have.
	Extra int64
	// Differing counts pairs of rows with the same key that differ in
	// other fields.
	Differing int64
}

// Same reports whether no row was missing, extra or differing.
func (c Counts) Same() bool { return c.Missing == 0 && c.Extra == 0 && c.Differing == 0 }

func (c *Counts) add(k kind, n int64) {
	switch k {
	case matching:
		c.Matching += n
	case missing:
		c.Missing += n
	case extra:
		c.Extra += n
	case differing:
		c.Differing += n
	}
}

// Report is the result of Compare.
type Report struct {
	// Key is Options.Key; nil when whole rows were compared.
	Key []string
	// Window names the window fields that Windows are keyed by: those of
	// Options.Window, or of DefaultWindow that some row had. Nil when rows
	// had none.
	Window []string
	// RowsA and RowsB are the numbers of rows read from A and from B.
	RowsA, RowsB int64
	// Counts are the totals.
	Counts
	// DuplicateKeysA and DuplicateKeysB count the keys with more than one
	// row in A and in B. Always 0 without a Key.
	DuplicateKeysA, DuplicateKeysB int64
	duplicateKeys                  int64 // keys duplicated in A, B or both
	// Windows are the counts per window, ordered by window. A row's window
	// is A's row's for matching, missing and differing rows, B's for extra
	// ones.
	Windows []WindowCounts

	// Examples of each kind, at most Options.Examples of each, ordered by
	// key (by row without a Key).
	MissingExamples   []RowExample
	ExtraExamples     []RowExample
	DifferingExamples []DiffExample
	DuplicateExamples []DuplicateExample
}

// Same reports whether A and B hold the same rows: none missing, extra or
// differing. Duplicate keys alone do not make outputs differ.
func (r *Report) Same() bool { return r.Counts.Same() }

// DifferingWindows returns how many windows have rows missing, extra or
// differing.
func (r *Report) DifferingWindows() int {
	n := 0
	for _, w := range r.Windows {
		if !w.Same() {
			n++
		}
	}
	return n
}

// WindowCounts are the counts of one window.
type WindowCounts struct {
	// Window holds the values of the Report's Window fields, normalized;
	// nil for a field the rows lacked.
	Window []any
	Counts
}

// RowExample is a row missing from B or extra in it.
type RowExample struct {
	// Key holds the values of the key fields, normalized; nil without a
	// Key.
	Key []any
	// Row is the row, normalized, without ignored fields.
	Row map[string]any

	id string // orders examples with equal keys
}

// DiffExample is a pair of rows with the same key that differ.
type DiffExample struct {
	// Key holds the values of the key fields, normalized.
	Key []any
	// Fields are the fields that differ, by name.
	Fields []FieldDiff
}

// FieldDiff is one field that differs between a row of A and one of B.
type FieldDiff struct {
	// Field is the field's name; dotted for a field of a nested record.
	Field string
	// A and B are the field's values, normalized; nil when null or absent.
	A, B any
}

// DuplicateExample is a key with more than one row on a side.
type DuplicateExample struct {
	// Key holds the values of the key fields, normalized.
	Key []any
	// A and B are the numbers of rows with the key in A and in B.
	A, B int64
}

// kind is how a row compared.
type kind int

const (
	matching kind = iota
	missing
	extra
	differing
)

// side names A and B in errors.
type side int

const (
	sideA side = iota
	sideB
)

func (s side) String() string { return [...]string{"A", "B"}[s] }

// entry is what Compare holds for one key of A.
type entry struct {
	key  []any // key mode: the key's values
	a, b int64 // rows with the key in A and in B

	// Key mode: A's rows not matched yet, and B's rows that matched none of
	// A's; they are paired up at the end.
	rows, pending []map[string]any

	// Whole-row mode: the row.
	row map[string]any
}

// extraKey counts the rows of a key that B has and A lacks.
type extraKey struct {
	key []any
	n   int64
}

// comparer is the state of one Compare.
type comparer struct {
	opts      Options
	norm      normalizer
	keyed     bool
	windowF   []string // the window fields looked for
	explicitW bool     // windowF is Options.Window

	entries   map[string]*entry
	extraKeys map[string]*extraKey // key mode: the keys of B that A lacks
	seenKey   [2][]bool            // per side and key field: some row has it
	seenWin   []bool               // per window field: some row has it
	windows   map[string]*WindowCounts
	buf       []byte // the key of the row being read
	wbuf      []byte // scratch for windows

	r         Report
	missingEx examples[RowExample]
	extraEx   examples[RowExample]
	diffEx    examples[DiffExample]
	dupEx     examples[DuplicateExample]
}

// Compare reads every row of a, then every row of b, and compares them as
// opts say. An error from either sequence ends the comparison and is
// returned, wrapped, naming the side; so are bad options (ErrOptions) and a
// key or window field that no row has (ErrNoField). A difference between
// the sides is not an error: see Report.Same.
func Compare(ctx context.Context, a, b iter.Seq2[map[string]any, error], opts Options) (*Report, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	c := &comparer{
		opts:      opts,
		keyed:     len(opts.Key) > 0,
		windowF:   opts.Window,
		explicitW: len(opts.Window) > 0,
		entries:   map[string]*entry{},
		extraKeys: map[string]*extraKey{},
		windows:   map[string]*WindowCounts{},
	}
	if !c.explicitW {
		c.windowF = DefaultWindow
	}
	c.seenWin = make([]bool, len(c.windowF))
	c.seenKey = [2][]bool{make([]bool, len(opts.Key)), make([]bool, len(opts.Key))}
	if len(opts.Ignore) > 0 {
		c.norm.ignore = map[string]bool{}
		for _, n := range opts.Ignore {
			c.norm.ignore[n] = true
		}
	}
	c.r.Key = slices.Clone(opts.Key)
	rowOrder := func(x, y RowExample) int {
		if r := compareValues(x.Key, y.Key); r != 0 {
			return r
		}
		if x.id != "" || y.id != "" {
			return strings.Compare(x.id, y.id)
		}
		return compareValues(x.Row, y.Row)
	}
	c.missingEx = examples[RowExample]{n: opts.Examples, cmp: rowOrder}
	c.extraEx = examples[RowExample]{n: opts.Examples, cmp: rowOrder}
	c.diffEx = examples[DiffExample]{n: opts.Examples, cmp: func(x, y DiffExample) int {
		if r := compareValues(x.Key, y.Key); r != 0 {
			return r
		}
		return compareDiffs(x.Fields, y.Fields)
	}}
	c.dupEx = examples[DuplicateExample]{n: opts.Examples, cmp: func(x, y DuplicateExample) int {
		return compareValues(x.Key, y.Key)
	}}

	if err := c.read(ctx, a, sideA); err != nil {
		return nil, err
	}
	if err := c.read(ctx, b, sideB); err != nil {
		return nil, err
	}
	if err := c.checkFields(); err != nil {
		return nil, err
	}
	c.finish()
	return &c.r, nil
}

// read reads one side's rows.
func (c *comparer) read(ctx context.Context, rows iter.Seq2[map[string]any, error], s side) error {
	n := &c.r.RowsA
	if s == sideB {
		n = &c.r.RowsB
	}
	for row, err := range rows {
		if err != nil {
			return fmt.Errorf("validate: reading %s: %w", s, err)
		}
		if *n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("validate: reading %s: %w", s, err)
			}
		}
		*n++
		r := c.norm.row(row)
		key := c.keyOf(r, s)
		if s == sideA {
			c.addA(r, key)
		} else {
			c.addB(r, key)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("validate: reading %s: %w", s, err)
	}
	return nil
}

// keyOf returns the values of r's key fields (nil without a Key) and
// leaves their encoding, or the whole row's, in c.buf.
func (c *comparer) keyOf(r map[string]any, s side) []any {
	if !c.keyed {
		c.buf = appendKey(c.buf[:0], r)
		return nil
	}
	vals := make([]any, len(c.opts.Key))
	for i, f := range c.opts.Key {
		if v, ok := Lookup(r, f); ok {
			vals[i] = v
			c.seenKey[s][i] = true
		}
	}
	c.buf = appendKey(c.buf[:0], vals)
	return vals
}

func (c *comparer) addA(r map[string]any, key []any) {
	e := c.entries[string(c.buf)]
	if e == nil {
		e = &entry{key: key}
		if !c.keyed {
			e.row = r
		}
		c.entries[string(c.buf)] = e
	}
	e.a++
	if c.keyed {
		e.rows = append(e.rows, r)
	}
}

func (c *comparer) addB(r map[string]any, key []any) {
	e := c.entries[string(c.buf)]
	switch {
	case e == nil:
		if c.keyed {
			x := c.extraKeys[string(c.buf)]
			if x == nil {
				x = &extraKey{key: key}
				c.extraKeys[string(c.buf)] = x
			}
			x.n++
		}
		c.count(r, extra, 1)
		c.extraEx.add(RowExample{Key: key, Row: r, id: c.id()})
		return
	case !c.keyed:
		e.b++
		if e.b <= e.a {
			c.count(r, matching, 1)
		} else {
			c.count(r, extra, 1)
			c.extraEx.add(RowExample{Row: r, id: c.id()})
		}
		return
	}
	e.b++
	for i, ar := range e.rows {
		if equal(ar, r, c.opts.Tolerance) {
			c.count(ar, matching, 1)
			if e.rows = slices.Delete(e.rows, i, i+1); len(e.rows) == 0 {
				e.rows = nil
			}
			return
		}
	}
	e.pending = append(e.pending, r)
}

// id returns what orders an example row after its key: without a key, the
// row's encoding, in c.buf; with a key, nothing, and rows with equal keys
// are ordered by value.
func (c *comparer) id() string {
	if c.keyed || c.opts.Examples == 0 {
		return ""
	}
	return string(c.buf)
}

// count adds n rows of kind k, in the window of r.
func (c *comparer) count(r map[string]any, k kind, n int64) {
	c.r.Counts.add(k, n)
	vals := make([]any, len(c.windowF))
	found := false
	for i, f := range c.windowF {
		if v, ok := Lookup(r, f); ok {
			vals[i] = v
			c.seenWin[i] = true
			found = true
		}
	}
	if !found && !c.explicitW {
		return
	}
	c.wbuf = appendKey(c.wbuf[:0], vals)
	w := c.windows[string(c.wbuf)]
	if w == nil {
		w = &WindowCounts{Window: vals}
		c.windows[string(c.wbuf)] = w
	}
	w.add(k, n)
}

// checkFields reports key fields that a side's rows never had, and window
// fields named in Options.Window that no row had.
func (c *comparer) checkFields() error {
	var bad []string
	for s, rows := range [2]int64{c.r.RowsA, c.r.RowsB} {
		for i, f := range c.opts.Key {
			if rows > 0 && !c.seenKey[s][i] {
				bad = append(bad, fmt.Sprintf("key field %q is in none of the %d rows of %s", f, rows, side(s)))
			}
		}
	}
	if c.explicitW && c.r.RowsA+c.r.RowsB > 0 {
		for i, f := range c.windowF {
			if !c.seenWin[i] {
				bad = append(bad, fmt.Sprintf("window field %q is in no row", f))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s", ErrNoField, strings.Join(bad, "; "))
	}
	return nil
}

// finish classifies what is left of A, fills in the report's windows and
// examples.
func (c *comparer) finish() {
	for k, e := range c.entries {
		if !c.keyed {
			if e.a > e.b {
				c.count(e.row, missing, e.a-e.b)
				c.missingEx.add(RowExample{Row: e.row, id: k})
			}
			continue
		}
		if e.a > 1 {
			c.r.DuplicateKeysA++
		}
		if e.b > 1 {
			c.r.DuplicateKeysB++
		}
		if e.a > 1 || e.b > 1 {
			c.r.duplicateKeys++
			c.dupEx.add(DuplicateExample{Key: e.key, A: e.a, B: e.b})
		}
		n := min(len(e.rows), len(e.pending))
		for i := range n {
			c.count(e.rows[i], differing, 1)
			c.diffEx.add(DiffExample{Key: e.key, Fields: c.diff(e.rows[i], e.pending[i], "", nil)})
		}
		for _, r := range e.rows[n:] {
			c.count(r, missing, 1)
			c.missingEx.add(RowExample{Key: e.key, Row: r})
		}
		for _, r := range e.pending[n:] {
			c.count(r, extra, 1)
			c.extraEx.add(RowExample{Key: e.key, Row: r})
		}
	}
	for _, x := range c.extraKeys {
		if x.n > 1 {
			c.r.DuplicateKeysB++
			c.r.duplicateKeys++
			c.dupEx.add(DuplicateExample{Key: x.key, B: x.n})
		}
	}

	// Window fields that no row had are left out (of DefaultWindow only:
	// those of Options.Window are checked by checkFields).
	var keep []int
	for i, f := range c.windowF {
		if c.seenWin[i] || c.explicitW {
			keep = append(keep, i)
			c.r.Window = append(c.r.Window, f)
		}
	}
	if len(keep) > 0 {
		for _, w := range c.windows {
			vals := make([]any, len(keep))
			for j, i := range keep {
				vals[j] = w.Window[i]
			}
			c.r.Windows = append(c.r.Windows, WindowCounts{Window: vals, Counts: w.Counts})
		}
		slices.SortFunc(c.r.Windows, func(x, y WindowCounts) int { return compareValues(x.Window, y.Window) })
	}

	c.r.MissingExamples = c.missingEx.items
	c.r.ExtraExamples = c.extraEx.items
	c.r.DifferingExamples = c.diffEx.items
	c.r.DuplicateExamples = c.dupEx.items
}

// diff appends the fields in which a and b, rows or nested records at
// path, differ.
func (c *comparer) diff(a, b map[string]any, path string, out []FieldDiff) []FieldDiff {
	names := make([]string, 0, len(a)+len(b))
	for k := range a {
		names = append(names, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		p := k
		if path != "" {
			p = path + "." + k
		}
		va, vb := a[k], b[k]
		ma, aRec := va.(map[string]any)
		mb, bRec := vb.(map[string]any)
		switch {
		case aRec && bRec:
			out = c.diff(ma, mb, p, out)
		case !equal(va, vb, c.opts.Tolerance):
			out = append(out, FieldDiff{Field: p, A: va, B: vb})
		}
	}
	return out
}

// compareDiffs orders the differences of two pairs of rows with the same
// key.
func compareDiffs(x, y []FieldDiff) int {
	for i := range min(len(x), len(y)) {
		if r := strings.Compare(x[i].Field, y[i].Field); r != 0 {
			return r
		}
		if r := compareValues(x[i].A, y[i].A); r != 0 {
			return r
		}
		if r := compareValues(x[i].B, y[i].B); r != 0 {
			return r
		}
	}
	return cmp.Compare(len(x), len(y))
}

// examples keeps the first n distinct items offered, in the order cmp
// defines.
type examples[T any] struct {
	n     int
	cmp   func(x, y T) int
	items []T // sorted, at most n
}

func (s *examples[T]) add(x T) {
	i, found := slices.BinarySearchFunc(s.items, x, s.cmp)
	if found || i >= s.n {
		return // an example like one kept, or one after the first n
	}
	if len(s.items) == s.n {
		s.items = s.items[:s.n-1]
	}
	s.items = slices.Insert(s.items, i, x)
}
