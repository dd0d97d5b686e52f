package codec

import (
	"path"
	"strings"
)

// Format is a file format.
type Format int

const (
	// Unknown is no format.
	Unknown Format = iota
	// JSONL is JSON Lines: one JSON document per line.
	JSONL
	// Parquet is Apache Parquet.
	Parquet
)

func (f Format) String() string {
	switch f {
	case JSONL:
		return "jsonl"
	case Parquet:
		return "parquet"
	}
	return "unknown"
}

// Ext returns the file name extension of the format (".jsonl", ".parquet").
func (f Format) Ext() string {
	if f == Unknown {
		return ""
	}
	return "." + f.String()
}

// ParseFormat parses a format's name: "jsonl", "ndjson" or "json" for JSON
// Lines, "parquet" or "pq" for Parquet (case-insensitively). An unknown name
// is an error wrapping connector.ErrUnsupported.
func ParseFormat(name string) (Format, error) {
	switch strings.ToLower(name) {
	case "jsonl", "ndjson", "json":
		return JSONL, nil
	case "parquet", "pq":
		return Parquet, nil
	}
	return Unknown, unsupported("unknown format %q (want jsonl or parquet)", name)
}

// FormatOf returns the format a file name's extension implies: .jsonl,
// .ndjson and .json for JSON Lines, .parquet and .pq for Parquet; Unknown
// for any other.
func FormatOf(name string) Format {
	ext := path.Ext(name)
	if ext == "" {
		return Unknown
	}
	f, err := ParseFormat(ext[1:])
	if err != nil {
		return Unknown
	}
	return f
}
