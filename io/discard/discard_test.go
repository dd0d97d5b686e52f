package discard_test

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/discard"
)

func TestDiscard(t *testing.T) {
	ctx := context.Background()
	u, _ := connector.ParseURI("discard://")
	sk, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: "out", URI: u, Type: reflect.TypeFor[int]()})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := sk.Write(ctx, []any{1, 2}); err != nil {
			t.Fatal(err)
		}
	}
	if n := sk.(*discard.Sink).Count(); n != 6 {
		t.Errorf("Count = %d, want 6", n)
	}
	if err := sk.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := sk.Write(canceled, []any{1}); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a canceled context: %v", err)
	}
	_, err = connector.OpenSource(ctx, connector.SourceSpec{Binding: "in", URI: u, Type: reflect.TypeFor[int]()})
	if !errors.Is(err, connector.ErrUnsupported) {
		t.Errorf("OpenSource: err = %v, want ErrUnsupported", err)
	}
}
