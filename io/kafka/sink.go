package kafka

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/io/connector"
)

// sink produces values to a topic with the idempotent producer (franz-go's
// default), so retries do not duplicate records. Without transactions,
// records sent before a failed run stay in the topic: Abort cannot take them
// back (exactly-once output with transactions comes with checkpoints).
type sink struct {
	o       *options
	binding string
	cl      *kgo.Client
	encode  func(v any) ([]byte, error)
	key     func(v any) ([]byte, error)
}

func (kafkaConnector) OpenSink(ctx context.Context, spec connector.SinkSpec) (connector.Sink, error) {
	o, err := parseURI(spec.URI)
	if err != nil {
		return nil, err
	}
	if o.start.kind != "earliest" || o.until.kind != "" || o.group != "" || o.only != nil || o.offsets != nil {
		return nil, fmt.Errorf("%w: start=, until=, group=, partitions= and offsets= apply to sources only", ErrBadURI)
	}
	if spec.Task != "" && o.exactlyOnce {
		// Each task has a transactional id of its own, as each Kafka
		// Streams task does: the task's next owner fences its last one.
		o.txnID += "-" + spec.Task
	}
	s := &sink{o: o, binding: spec.Binding}
	if s.encode, err = encoder(o, spec.Type); err != nil {
		return nil, err
	}
	if o.key != "" {
		if s.key, err = keyFunc(spec.Type, o.key); err != nil {
			return nil, err
		}
	}
	cl, err := newClient(o, kgo.DefaultProduceTopic(o.topic), kgo.AllowAutoTopicCreation())
	if err != nil {
		return nil, err
	}
	// Fail at launch, not at the first write, when no broker answers.
	pctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if err := cl.Ping(pctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("kafka: no broker answers at %v for topic %q: %w", o.brokers, o.topic, err)
	}
	s.cl = cl
	if o.exactlyOnce {
		w := newTxnWriter(o, cl, kgo.DefaultProduceTopic(o.topic), kgo.AllowAutoTopicCreation())
		w.mark = &checkpointMark{group: markGroup(o.txnID), topic: o.topic}
		return &txnSink{sink: s, w: w}, nil
	}
	return s, nil
}

func encoder(o *options, t reflect.Type) (func(any) ([]byte, error), error) {
	if o.format == "raw" {
		switch {
		case t == reflect.TypeFor[[]byte]():
			return func(v any) ([]byte, error) { return v.([]byte), nil }, nil
		case t.Kind() == reflect.String:
			return func(v any) ([]byte, error) { return []byte(reflect.ValueOf(v).String()), nil }, nil
		}
		return nil, fmt.Errorf("%w: kafka: format=raw writes []byte or string, not %s", connector.ErrUnsupported, t)
	}
	return json.Marshal, nil
}

// keyFunc returns the function that takes the key of a record from its
// value: a struct field by its JSON name (or Go name), or a map entry.
func keyFunc(t reflect.Type, field string) (func(any) ([]byte, error), error) {
	switch {
	case t.Kind() == reflect.Struct:
		// The field encoding/json would write under that name: its json
		// tag, else its Go name; exported fields only.
		var idx []int
		for _, f := range reflect.VisibleFields(t) {
			if !f.IsExported() || f.Anonymous {
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == field || name == "" && f.Name == field || idx == nil && strings.EqualFold(f.Name, field) {
				idx = f.Index
			}
		}
		if idx == nil {
			return nil, fmt.Errorf("%w: key=%q: %s has no such exported field", ErrBadURI, field, t)
		}
		return func(v any) ([]byte, error) {
			f, err := reflect.ValueOf(v).FieldByIndexErr(idx)
			if err != nil {
				return nil, nil // through a nil embedded pointer: no key
			}
			return keyBytes(f)
		}, nil
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		return func(v any) ([]byte, error) {
			x := reflect.ValueOf(v).MapIndex(reflect.ValueOf(field).Convert(t.Key()))
			if !x.IsValid() {
				return nil, fmt.Errorf("kafka: key=%q: the record has no such field", field)
			}
			return keyBytes(x)
		}, nil
	case t == reflect.TypeFor[json.RawMessage]():
		return func(v any) ([]byte, error) {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(v.(json.RawMessage), &m); err != nil {
				return nil, fmt.Errorf("kafka: key=%q: %v", field, err)
			}
			x, ok := m[field]
			if !ok {
				return nil, fmt.Errorf("kafka: key=%q: the record has no such field", field)
			}
			var s string
			if json.Unmarshal(x, &s) == nil {
				return []byte(s), nil
			}
			return []byte(x), nil
		}, nil
	}
	return nil, fmt.Errorf("%w: key=%q: records of type %s have no fields", ErrBadURI, field, t)
}

// keyBytes is a key as bytes, the same whatever the Go type that holds it:
// strings as they are, integers in decimal (and whole floats, as JSON
// numbers read into maps are), nil as no key, anything else as JSON.
func keyBytes(v reflect.Value) ([]byte, error) {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil, nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		return []byte(v.String()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(nil, v.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.AppendUint(nil, v.Uint(), 10), nil
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); f == float64(int64(f)) {
			return strconv.AppendInt(nil, int64(f), 10), nil
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Bytes(), nil
		}
	}
	return json.Marshal(v.Interface())
}

// records encodes and keys values as records.
func (s *sink) records(values []any) ([]*kgo.Record, error) {
	recs := make([]*kgo.Record, 0, len(values))
	for _, v := range values {
		b, err := s.encode(v)
		if err != nil {
			return nil, fmt.Errorf("kafka: encoding a record for %q: %w", s.o.topic, err)
		}
		r := &kgo.Record{Value: b}
		if s.key != nil {
			if r.Key, err = s.key(v); err != nil {
				return nil, fmt.Errorf("kafka: keying a record for %q: %w", s.o.topic, err)
			}
		}
		recs = append(recs, r)
	}
	return recs, nil
}

func (s *sink) Write(ctx context.Context, values []any) error {
	recs, err := s.records(values)
	if err != nil {
		return err
	}
	if err := s.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("kafka: producing to %q: %w", s.o.topic, err)
	}
	return nil
}

func (s *sink) Commit(ctx context.Context) error {
	defer s.cl.Close()
	if err := s.cl.Flush(ctx); err != nil {
		return fmt.Errorf("kafka: flushing %q: %w", s.o.topic, err)
	}
	return nil
}

func (s *sink) Abort() error {
	s.cl.Close()
	return nil
}

// WritesImmediately marks the sink as connector.ImmediateSink: records are
// in the topic as soon as Write returns.
func (s *sink) WritesImmediately() {}
