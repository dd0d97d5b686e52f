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
	o      *options
	cl     *kgo.Client
	encode func(v any) ([]byte, error)
	key    func(v any) ([]byte, error)
}

func (kafkaConnector) OpenSink(ctx context.Context, spec connector.SinkSpec) (connector.Sink, error) {
	o, err := parseURI(spec.URI)
	if err != nil {
		return nil, err
	}
	if o.start.kind != "earliest" || o.until.kind != "" {
		return nil, fmt.Errorf("%w: start= and until= apply to sources only", ErrBadURI)
	}
	s := &sink{o: o}
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
	s.cl = cl
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
		idx := -1
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == field || (name == "" && f.Name == field) || strings.EqualFold(f.Name, field) && idx < 0 {
				idx = i
			}
		}
		if idx < 0 {
			return nil, fmt.Errorf("%w: key=%q: %s has no such field", ErrBadURI, field, t)
		}
		return func(v any) ([]byte, error) { return keyBytes(reflect.ValueOf(v).Field(idx).Interface()) }, nil
	case t.Kind() == reflect.Map && t.Key().Kind() == reflect.String:
		return func(v any) ([]byte, error) {
			x := reflect.ValueOf(v).MapIndex(reflect.ValueOf(field).Convert(t.Key()))
			if !x.IsValid() {
				return nil, fmt.Errorf("kafka: key=%q: the record has no such field", field)
			}
			return keyBytes(x.Interface())
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

// keyBytes is a key as bytes: strings as they are, numbers in decimal,
// anything else as JSON.
func keyBytes(v any) ([]byte, error) {
	switch x := v.(type) {
	case string:
		return []byte(x), nil
	case []byte:
		return x, nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case float64:
		if x == float64(int64(x)) {
			return strconv.AppendInt(nil, int64(x), 10), nil
		}
	}
	return json.Marshal(v)
}

func (s *sink) Write(ctx context.Context, values []any) error {
	recs := make([]*kgo.Record, 0, len(values))
	for _, v := range values {
		b, err := s.encode(v)
		if err != nil {
			return fmt.Errorf("kafka: encoding a record for %q: %w", s.o.topic, err)
		}
		r := &kgo.Record{Value: b}
		if s.key != nil {
			if r.Key, err = s.key(v); err != nil {
				return err
			}
		}
		recs = append(recs, r)
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
