package graph

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The typed sdk cannot express a GroupByKey of a collection that is not KV;
// graphs built by other front ends can, and Validate names the transform.
func TestValidateKeyedNeedsKV(t *testing.T) {
	g := New()
	src := g.AddNode(KindSource, "Read(events)", nil, reflect.TypeFor[string]())
	src.Source = &SourceSpec{Binding: "events", Type: reflect.TypeFor[string]()}
	gbk := g.AddNode(KindGroupByKey, "GroupEvents", src.Outputs, reflect.TypeFor[[]string]())
	gbk.GBK = &GBKSpec{}
	err := g.Validate()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `GroupByKey "GroupEvents": GroupByKey needs a keyed input`) {
		t.Errorf("got %v", err)
	}
	if err := New().Validate(); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty pipeline: got %v", err)
	}
}
