// Package connector is the seam between Weir's runner and the outside world:
// the Source and Sink interfaces every connector implements, and the registry
// of URI schemes (file://, discard://; kafka:// and hdfs:// plug in the same
// way) through which the logical names of a pipeline are bound at launch.
//
// A connector decodes records into the Go type the pipeline declared for the
// binding (SourceSpec.Type) and encodes values of that type on the way out; the
// runner never sees bytes or wire types.
//
// Dependency direction: connector imports only the standard library and
// windowing. Connectors (io/file, io/kafka, ...) import connector and register
// themselves in an init function; the runner imports connector and, for the
// built-in schemes, the connectors.
package connector

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/weir-dev/weir/windowing"
)

// Errors of the registry and of connectors. Connectors wrap them with %w so
// that callers can test with errors.Is.
var (
	// ErrUnknownScheme is returned for a URI whose scheme has no connector.
	ErrUnknownScheme = errors.New("connector: unknown scheme")
	// ErrNotFound is returned when a source's URI names nothing (no file, no
	// match for a glob, no topic).
	ErrNotFound = errors.New("connector: not found")
	// ErrSchema is returned when the data's schema does not fit the Go type
	// of the binding (a Parquet column of the wrong type, say).
	ErrSchema = errors.New("connector: schema mismatch")
	// ErrUnsupported is returned when a connector cannot do what the URI
	// asks (a source on a sink-only scheme, an unknown format).
	ErrUnsupported = errors.New("connector: unsupported")
	// ErrSourceChanged is returned when a source is resumed at a position
	// that no longer means what it meant when it was stored: a Kafka topic
	// deleted and created again under the same name, or the name bound to
	// another cluster. Reading on would give wrong answers without a sign.
	ErrSourceChanged = errors.New("connector: the source changed since the checkpoint")
	// ErrPublishedAhead is returned when a sink is recovered at a
	// checkpoint older than one whose output it already published (the
	// newest checkpoints were deleted): resuming there would publish that
	// output again.
	ErrPublishedAhead = errors.New("connector: output of a later checkpoint was already published")
)

// SourceSpec is what the runner asks a connector to read.
type SourceSpec struct {
	// Binding is the logical name in the pipeline ("pageviews").
	Binding string
	// URI is the bound location, with its query options.
	URI *url.URL
	// Type is the Go type each record decodes into: a struct, a map type or
	// a basic type.
	Type reflect.Type
	// Columns, when set, lists the top-level field names the pipeline
	// needs; columnar formats may read only those.
	Columns []string
	// Range, when set, is the event time the run needs: the runner drops
	// records outside it, and a source may skip data it knows to be
	// outside (Parquet row groups by their statistics, partition folders).
	Range *TimeRange
	// Logger receives what the source notices on its own, such as a
	// broker it cannot reach. Default: slog.Default().
	Logger *slog.Logger
}

// TimeRange is the event time [From, To).
type TimeRange struct {
	From, To windowing.Time
}

// Contains reports whether t is in the range.
func (r *TimeRange) Contains(t windowing.Time) bool { return r.From <= t && t < r.To }

// Overlaps reports whether data whose event times are in [lo, hi] (both
// included) may have some in the range.
func (r *TimeRange) Overlaps(lo, hi windowing.Time) bool { return lo < r.To && hi >= r.From }

// SinkSpec is what the runner asks a connector to write.
type SinkSpec struct {
	// Binding is the logical name in the pipeline ("counts").
	Binding string
	// URI is the bound location, with its query options.
	URI *url.URL
	// Type is the Go type of the values written.
	Type reflect.Type
	// Task names the writer when several tasks of one job write this sink
	// at the same time (a job scaled out over a Kafka consumer group, one
	// task per input partition): each task's files and transactions are
	// its own, so that one task's recovery never touches another's output.
	// Empty for a job that is one task. A sink that cannot be shared this
	// way fails to open with ErrUnsupported.
	Task string
	// Logger receives what the sink does on its own, such as removing the
	// temporary files a killed run left. Default: slog.Default().
	Logger *slog.Logger
}

// Source is an opened, bound input. It is split into independent Splits that
// the runner reads in parallel, each with its own watermark.
type Source interface {
	// Splits lists the source's splits. For a bounded source the list is
	// final; it is called once.
	Splits(ctx context.Context) ([]Split, error)
	// Bounded reports whether the source ends (files) or not (a live topic).
	Bounded() bool
	// Close releases the source after its readers are closed.
	Close() error
}

// Split is one independently readable part of a source: a file, a row
// group, a partition.
type Split interface {
	// ID names the split in logs, errors and checkpoints.
	ID() string
	// Open starts reading the split.
	Open(ctx context.Context) (Reader, error)
}

// Reader reads the records of one split.
type Reader interface {
	// Read fills buf with up to len(buf) records and returns how many. It
	// returns io.EOF, with n == 0, at the end of a bounded split. A reader of
	// an unbounded split returns (0, nil) when no record arrived within a
	// short poll interval, so that the runner can advance idle watermarks,
	// take checkpoints and see stop requests. Any other error is fatal for
	// the run; a record that cannot be decoded is not an error but a Record
	// with Err set.
	Read(ctx context.Context, buf []Record) (n int, err error)
	// Close releases the reader.
	Close() error
}

// Record is one record read from a split.
type Record struct {
	// Value is the decoded value, of the SourceSpec's Type; nil when Err is
	// set.
	Value any
	// Err says why the record could not be decoded. Such records go to the
	// dead-letter sink with this reason.
	Err error
	// Raw is the record as read (a line, a message value), for dead letters.
	// Connectors may leave it nil for decoded records.
	Raw []byte
	// RawSize is the length in bytes of the whole record when Raw holds
	// only its first bytes (a line too long to read); 0 when Raw is whole.
	RawSize int64
	// Pos locates the record for a person: "pageviews.jsonl:17",
	// "pageviews/3@1201".
	Pos string
	// Timestamp is the source's own event time for the record, when it has
	// one (a Kafka record timestamp); HasTimestamp says whether it does.
	Timestamp    windowing.Time
	HasTimestamp bool
	// Key is the record's own key, when the source has one (a Kafka
	// message key). Tombstone says the record deletes its key: a message
	// of a compacted topic with no value. Such a record has Err set.
	Key       []byte
	Tombstone bool
}

// ErrTombstone is the Err of a record that deletes its key (a Kafka message
// with no value): pipelines dead-letter it, tables delete the key.
var ErrTombstone = errors.New("connector: a tombstone (no value: it deletes its key)")

// Sink is an opened, bound output. The runner calls Write from one goroutine
// at a time.
type Sink interface {
	// Write writes values of the SinkSpec's Type.
	Write(ctx context.Context, values []any) error
	// Commit makes everything written visible under the bound name (renames
	// a temporary file into place, say) and closes the sink. Output is never
	// visible as complete before Commit returns.
	Commit(ctx context.Context) error
	// Abort discards what was written and closes the sink. It is called
	// when the run fails or is stopped before the sink was committed.
	Abort() error
}

// Connector opens sources and sinks for one URI scheme.
type Connector interface {
	OpenSource(ctx context.Context, spec SourceSpec) (Source, error)
	OpenSink(ctx context.Context, spec SinkSpec) (Sink, error)
}

var registry struct {
	mu      sync.Mutex
	schemes map[string]Connector // guarded by mu
}

// Register makes c the connector for URIs with the given scheme. It panics if
// the scheme is registered twice, as database/sql.Register does: that is a
// programming error found at init time.
func Register(scheme string, c Connector) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if registry.schemes == nil {
		registry.schemes = map[string]Connector{}
	}
	if _, dup := registry.schemes[scheme]; dup {
		panic("connector: scheme registered twice: " + scheme)
	}
	registry.schemes[scheme] = c
}

// Schemes returns the registered schemes, sorted.
func Schemes() []string {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	var s []string
	for k := range registry.schemes {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

func lookup(binding string, u *url.URL) (Connector, error) {
	c, err := connectorOf(u)
	if err != nil {
		return nil, fmt.Errorf("binding %q: %w", binding, err)
	}
	return c, nil
}

// connectorOf returns the connector of u's scheme.
func connectorOf(u *url.URL) (Connector, error) {
	registry.mu.Lock()
	c, ok := registry.schemes[u.Scheme]
	registry.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %q in %s (known: %s)", ErrUnknownScheme, u.Scheme, u.Redacted(), strings.Join(Schemes(), ", "))
	}
	return c, nil
}

// OpenSource opens the source for spec through the connector of its scheme.
// Errors name the binding.
func OpenSource(ctx context.Context, spec SourceSpec) (Source, error) {
	c, err := lookup(spec.Binding, spec.URI)
	if err != nil {
		return nil, err
	}
	s, err := c.OpenSource(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("binding %q: %w", spec.Binding, err)
	}
	return s, nil
}

// OpenSink opens the sink for spec through the connector of its scheme.
// Errors name the binding.
func OpenSink(ctx context.Context, spec SinkSpec) (Sink, error) {
	c, err := lookup(spec.Binding, spec.URI)
	if err != nil {
		return nil, err
	}
	s, err := c.OpenSink(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("binding %q: %w", spec.Binding, err)
	}
	return s, nil
}

// ParseURI parses a binding's URI. A bare path ("data/events.jsonl") is taken
// as a file:// URI relative to the working directory.
func ParseURI(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("connector: empty URI")
	}
	if !strings.Contains(s, "://") {
		q := ""
		if i := strings.IndexByte(s, '?'); i >= 0 {
			s, q = s[:i], s[i+1:]
		}
		return &url.URL{Scheme: "file", Path: s, RawQuery: q}, nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("connector: bad URI %q: %v", s, err)
	}
	return u, nil
}

// DeadLetter is the record written to the dead-letter sink for every input
// record that could not be read: where it came from, why, and the record as
// read. Build one with NewDeadLetter.
type DeadLetter struct {
	// Binding is the logical name of the source ("pageviews").
	Binding string `json:"binding"`
	// Position locates the record ("pageviews.jsonl:17").
	Position string `json:"position"`
	// Reason says what was wrong.
	Reason string `json:"reason"`
	// Record is the record as read (a JSON line, a Kafka message value;
	// for a Parquet row, its columns as a JSON object), when the source
	// kept it. A record that was read but refused later, at the event-time
	// step, holds its value as decoded, encoded as JSON. A record that is
	// not valid UTF-8 has each bad byte sequence replaced by U+FFFD here
	// (so that the dead letter is valid JSON) and its exact bytes in
	// RecordBase64.
	Record string `json:"record,omitempty"`
	// RecordBase64 holds the record's exact bytes, in standard base64,
	// when they are not valid UTF-8; empty otherwise.
	RecordBase64 string `json:"record_base64,omitempty"`
	// Truncated is the length in bytes of the whole record when Record
	// holds only its first bytes (a line longer than a source reads); 0
	// when Record is the whole record.
	Truncated int64 `json:"truncated,omitempty"`
}

// NewDeadLetter returns the dead letter of rec, read from the source bound
// as binding and refused for reason. Its Record is rec.Raw; when the
// source kept no Raw but rec has a Value (a record refused after it was
// decoded), the Value encoded as JSON.
func NewDeadLetter(binding string, rec Record, reason string) DeadLetter {
	d := DeadLetter{Binding: binding, Position: rec.Pos, Reason: reason, Truncated: rec.RawSize}
	raw := rec.Raw
	if raw == nil && rec.Value != nil {
		if b, err := json.Marshal(rec.Value); err == nil {
			raw = b
		}
	}
	if utf8.Valid(raw) {
		d.Record = string(raw)
	} else {
		d.Record = strings.ToValidUTF8(string(raw), "\uFFFD")
		d.RecordBase64 = base64.StdEncoding.EncodeToString(raw)
	}
	return d
}

// ResumableSplit is a split whose readers can report where they are
// (Positioned) and that can be reopened there. Checkpoints need every split
// of every source to be resumable.
type ResumableSplit interface {
	Split
	// OpenAt opens the split at a position one of its readers reported; a
	// nil position means the start.
	OpenAt(ctx context.Context, pos []byte) (Reader, error)
}

// TimeBoundedSplit is a split that knows the range of its records' event
// times before it is read (from Parquet statistics, or a date=/hour=
// partition folder): [Min, Max], both included. The runner holds a bounded
// source's watermark only at Min for such a split until it reads it, so
// that windows fire while a backfill reads its splits in time order.
type TimeBoundedSplit interface {
	Split
	EventTimeBounds() (min, max windowing.Time)
}

// Positioned is a Reader of a ResumableSplit: Position is where the next
// record will be read from, after the records returned so far.
type Positioned interface {
	Position() []byte
}

// CheckpointSink is a sink that takes part in checkpoints with a two-phase
// commit, so that a job restarted from a checkpoint neither loses nor
// repeats output (Flink's TwoPhaseCommitSinkFunction):
//
//   - PreCommit(id) makes everything written so far durable but invisible,
//     as the output of checkpoint id; the runner calls it when the
//     checkpoint's barrier reaches the sink. It may return a handle (for
//     example a Kafka transaction's producer id and epoch) that the
//     checkpoint keeps and Recover gets back.
//   - CommitCheckpoint(id) makes the output of id and of every earlier
//     checkpoint visible, once the checkpoint is complete. It may be called
//     again after a restart and must then do nothing more.
//   - Recover(id, handle) is called when a job restarts from checkpoint id,
//     with the handle PreCommit returned for it (nil if none, or when there
//     is no checkpoint: id 0): output pre-committed for id or earlier is
//     committed, and output written or pre-committed after id is discarded.
//     If output of a checkpoint after id is visible already (committed by
//     an earlier run, whose newer checkpoint was then lost), Recover
//     changes nothing and returns an error wrapping ErrPublishedAhead that
//     names that checkpoint: resuming from id would publish it again. A
//     sink keeps what it needs to know this (the checkpoint id in its
//     files' names, a transaction's marker).
//
// Sinks that do not implement it are committed once, at the end of the run.
type CheckpointSink interface {
	Sink
	PreCommit(ctx context.Context, id int64) (handle []byte, err error)
	CommitCheckpoint(ctx context.Context, id int64) error
	Recover(ctx context.Context, id int64, handle []byte) error
}

// PublishedSink is a CheckpointSink that can tell, without changing
// anything, the newest checkpoint whose output it has made visible (0:
// none). A job that resumes from an older checkpoint than the newest it
// completed (that one was lost) asks every two-phase sink before any of
// them recovers, and refuses if one published a newer checkpoint's output.
type PublishedSink interface {
	CheckpointSink
	Published(ctx context.Context) (int64, error)
}

// PositionCommitter is a source that tells the system it reads from where
// the job is, once a checkpoint is complete (a Kafka consumer group's
// offsets, which Kafka's tools show as the group's lag; Flink's KafkaSource
// does the same). CommitPositions gets the positions of the source's splits
// at the checkpoint, by split ID (a split not read yet is absent). It is
// for monitoring, not recovery: a job resumes from its checkpoints. An
// error is logged, and the job goes on.
type PositionCommitter interface {
	Source
	CommitPositions(ctx context.Context, positions map[string][]byte) error
}

// ImmediateSink is a sink whose Write makes records visible at once (a
// Kafka producer without transactions). With checkpoints, its output is
// at-least-once: a job restarted from a checkpoint writes again what it
// wrote after it. A sink that is neither a CheckpointSink nor an
// ImmediateSink cannot take part in checkpoints: what it holds back until
// Commit would be lost when a job resumes from a checkpoint.
type ImmediateSink interface {
	Sink
	WritesImmediately()
}
