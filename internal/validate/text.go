package validate

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes the report for a person: a line per count, the windows
// that differ (at most maxWindows of them, the first by window), then the
// examples of each kind of difference. For example:
//
//	key: profileId, windowStart
//	rows: 4 in A, 4 in B
//	matching: 2
//	missing in B: 1
//	extra in B: 1
//	differing: 1
//	duplicate keys: 0 in A, 0 in B
//	windows by windowStart: 2, 1 differs
//	  windowStart           matching  missing  extra  differing
//	  2026-11-01T11:00:00Z  0         1        1      1
//
//	missing in B (1 of 1):
//	  profileId=3 windowStart=1793530800000  {"count":2,"profileId":3,"windowStart":1793530800000}
//	...
//	differing (1 of 1):
//	  profileId=2 windowStart=1793530800000: count: A 5, B 6
//
// Window values that look like epoch milliseconds (from 1973 to 5138) are
// shown as RFC 3339 times.
func (r *Report) WriteText(w io.Writer, maxWindows int) error {
	bw := bufio.NewWriter(w)
	if r.Key != nil {
		fmt.Fprintf(bw, "key: %s\n", strings.Join(r.Key, ", "))
	} else {
		fmt.Fprintf(bw, "key: none, whole rows compared (a changed row is missing and extra)\n")
	}
	fmt.Fprintf(bw, "rows: %d in A, %d in B\n", r.RowsA, r.RowsB)
	fmt.Fprintf(bw, "matching: %d\nmissing in B: %d\nextra in B: %d\ndiffering: %d\n",
		r.Matching, r.Missing, r.Extra, r.Differing)
	if r.Key != nil {
		fmt.Fprintf(bw, "duplicate keys: %d in A, %d in B\n", r.DuplicateKeysA, r.DuplicateKeysB)
	}
	if r.Window != nil {
		r.writeWindows(bw, maxWindows)
	}

	writeRows := func(title string, n int64, ex []RowExample) {
		if len(ex) == 0 {
			return
		}
		fmt.Fprintf(bw, "\n%s (%d of %d):\n", title, len(ex), n)
		for _, e := range ex {
			bw.WriteString("  ")
			if e.Key != nil {
				bw.WriteString(r.keyText(e.Key))
				bw.WriteString("  ")
			}
			bw.Write(appendText(nil, e.Row))
			bw.WriteByte('\n')
		}
	}
	writeRows("missing in B", r.Missing, r.MissingExamples)
	writeRows("extra in B", r.Extra, r.ExtraExamples)
	if len(r.DifferingExamples) > 0 {
		fmt.Fprintf(bw, "\ndiffering (%d of %d):\n", len(r.DifferingExamples), r.Differing)
		for _, e := range r.DifferingExamples {
			fmt.Fprintf(bw, "  %s: ", r.keyText(e.Key))
			for i, f := range e.Fields {
				if i > 0 {
					bw.WriteString("; ")
				}
				fmt.Fprintf(bw, "%s: A %s, B %s", f.Field, text(f.A), text(f.B))
			}
			bw.WriteByte('\n')
		}
	}
	if len(r.DuplicateExamples) > 0 {
		fmt.Fprintf(bw, "\nduplicate keys (%d of %d):\n", len(r.DuplicateExamples), r.duplicateKeys)
		for _, e := range r.DuplicateExamples {
			fmt.Fprintf(bw, "  %s: %d in A, %d in B\n", r.keyText(e.Key), e.A, e.B)
		}
	}
	return bw.Flush()
}

// writeWindows writes the line on windows and the table of those that
// differ.
func (r *Report) writeWindows(bw *bufio.Writer, maxWindows int) {
	differ := r.DifferingWindows()
	fmt.Fprintf(bw, "windows by %s: %d, ", strings.Join(r.Window, ", "), len(r.Windows))
	switch differ {
	case 0:
		fmt.Fprintf(bw, "all match\n")
		return
	case 1:
		fmt.Fprintf(bw, "1 differs\n")
	default:
		fmt.Fprintf(bw, "%d differ\n", differ)
	}
	if maxWindows <= 0 {
		return
	}
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  %s\tmatching\tmissing\textra\tdiffering\n", strings.Join(r.Window, "\t"))
	shown := 0
	for _, w := range r.Windows {
		if w.Same() {
			continue
		}
		if shown == maxWindows {
			break
		}
		shown++
		cells := make([]string, len(w.Window))
		for i, v := range w.Window {
			cells[i] = windowText(v)
		}
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%d\n", strings.Join(cells, "\t"), w.Matching, w.Missing, w.Extra, w.Differing)
	}
	tw.Flush()
	if more := differ - shown; more > 0 {
		fmt.Fprintf(bw, "  ... and %d more\n", more)
	}
}

// keyText shows a key as field=value pairs.
func (r *Report) keyText(key []any) string {
	var b []byte
	for i, f := range r.Key {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, f...)
		b = append(b, '=')
		b = appendText(b, key[i])
	}
	return string(b)
}

// windowText shows a window value, as a time when it looks like epoch
// milliseconds.
func windowText(v any) string {
	if f, ok := v.(float64); ok {
		if i, ok := integral(f); ok {
			v = i
		}
	}
	if ms, ok := v.(int64); ok && ms >= 1e11 && ms < 1e14 {
		return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
	}
	return text(v)
}
