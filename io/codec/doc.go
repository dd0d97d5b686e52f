// Package codec converts between Go values of a pipeline's declared type and
// the two file formats Weir reads and writes: JSON Lines and Parquet.
//
// The type T of a binding is given as a reflect.Type. Decoders return values
// as an any holding a T (never a *T); encoders accept values of T (or *T).
//
// JSON Lines follows encoding/json: struct field names come from `json` tags,
// unknown fields are ignored, and T may be a struct, map[string]any or a
// basic type. A line that cannot be decoded yields an error wrapping
// ErrDecode whose text is a one-line reason, fit for a dead-letter record.
//
// Parquet goes through Apache Arrow (github.com/apache/arrow-go/v18,
// parquet/pqarrow). ArrowSchema derives the Arrow schema of a struct type;
// ParquetReader reads a file in record batches, only the columns the type
// needs, converting each column of a batch to Go values by reflection;
// ParquetWriter writes values of a struct type. A column whose type does not
// fit the Go field is a *SchemaError, which wraps connector.ErrSchema.
//
// Dependency direction: codec imports the standard library, arrow-go and
// io/connector (for its error values) only. It never imports the runner or
// the SDK; connectors (io/file, later io/hdfs) import codec.
package codec
