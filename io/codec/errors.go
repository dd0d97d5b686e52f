package codec

import (
	"errors"
	"fmt"
	"strings"

	"github.com/weir-dev/weir/io/connector"
)

// ErrDecode marks an error decoding one record (a JSON line). Such errors
// are not fatal: the connector turns them into a connector.Record with Err.
var ErrDecode = errors.New("codec: cannot decode")

// SchemaError reports that a file's schema does not fit the Go type: a
// column exists with a type the Go field cannot hold, or no field of the
// type matches any column of the file. It wraps connector.ErrSchema.
type SchemaError struct {
	// File names the file.
	File string
	// Column is the column's path ("user.name"); empty when no field
	// matched any column.
	Column string
	// FileType is the column's type in the file (an Arrow type), or, when
	// Column is empty, the file's columns.
	FileType string
	// Field names the Go field ("Event.User.Name") and GoType its type.
	Field  string
	GoType string
}

func (e *SchemaError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("codec: %s: schema mismatch: no field of %s matches a column of the file (columns: %s)",
			e.File, e.GoType, e.FileType)
	}
	return fmt.Sprintf("codec: %s: schema mismatch: column %q is %s in the file, but field %s is %s",
		e.File, e.Column, e.FileType, e.Field, e.GoType)
}

// Unwrap returns connector.ErrSchema, so that errors.Is(err,
// connector.ErrSchema) holds.
func (e *SchemaError) Unwrap() error { return connector.ErrSchema }

// unsupported returns an error wrapping connector.ErrUnsupported.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("codec: "+format+": %w", append(args, connector.ErrUnsupported)...)
}

// oneLine flattens s onto one line, for reasons that end up in dead letters.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}
