package hdfspb_test

import (
	"testing"

	_ "github.com/colinmarc/hdfs/v2" // registers Hadoop's own descriptors (hadoop.common, hadoop.hdfs)
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/weir-dev/weir/io/hdfs/hdfstest/internal/hdfspb"
)

// TestWireCompatible checks every message and enum of hadoop.proto against
// the definition of the same name that the real client registers: the same
// field numbers, names, kinds, labels, packing, defaults and enum values.
// Then our bytes are Hadoop's bytes.
func TestWireCompatible(t *testing.T) {
	fd := hdfspb.File_io_hdfs_hdfstest_internal_hdfspb_hadoop_proto
	msgs := fd.Messages()
	for i := 0; i < msgs.Len(); i++ {
		checkMessage(t, msgs.Get(i))
	}
	enums := fd.Enums()
	for i := 0; i < enums.Len(); i++ {
		checkEnum(t, enums.Get(i), hadoopName(t, enums.Get(i).FullName()))
	}
}

// hadoopName finds the descriptor Hadoop registers under the same name as
// ours, in hadoop.common or hadoop.hdfs.
func hadoopName(t *testing.T, ours protoreflect.FullName) protoreflect.Descriptor {
	t.Helper()
	rel := string(ours)[len("weir.hdfstest."):]
	for _, pkg := range []string{"hadoop.common.", "hadoop.hdfs."} {
		if d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(pkg + rel)); err == nil {
			return d
		}
	}
	t.Fatalf("%s: no Hadoop definition of that name", ours)
	return nil
}

func checkMessage(t *testing.T, ours protoreflect.MessageDescriptor) {
	theirs, ok := hadoopName(t, ours.FullName()).(protoreflect.MessageDescriptor)
	if !ok {
		t.Fatalf("%s: Hadoop's is not a message", ours.FullName())
	}
	fields := ours.Fields()
	for i := 0; i < fields.Len(); i++ {
		f := fields.Get(i)
		g := theirs.Fields().ByNumber(f.Number())
		if g == nil {
			t.Errorf("%s: field %d (%s) is not Hadoop's", ours.FullName(), f.Number(), f.Name())
			continue
		}
		if f.Name() != g.Name() || f.Kind() != g.Kind() || f.Cardinality() != g.Cardinality() || f.IsPacked() != g.IsPacked() {
			t.Errorf("%s.%s: %v %v %v packed=%v, Hadoop's %s: %v %v %v packed=%v", ours.FullName(), f.Name(),
				f.Number(), f.Cardinality(), f.Kind(), f.IsPacked(), g.Name(), g.Number(), g.Cardinality(), g.Kind(), g.IsPacked())
		}
		if f.HasDefault() != g.HasDefault() || (f.HasDefault() && f.Default().String() != g.Default().String()) {
			t.Errorf("%s.%s: default %v (set %v), Hadoop's %v (set %v)", ours.FullName(), f.Name(), f.Default(), f.HasDefault(), g.Default(), g.HasDefault())
		}
		switch {
		case f.Message() != nil && f.Message().Name() != g.Message().Name():
			t.Errorf("%s.%s: message %s, Hadoop's %s", ours.FullName(), f.Name(), f.Message().Name(), g.Message().Name())
		case f.Enum() != nil && f.Enum().Name() != g.Enum().Name():
			t.Errorf("%s.%s: enum %s, Hadoop's %s", ours.FullName(), f.Name(), f.Enum().Name(), g.Enum().Name())
		}
	}
	// Required fields must all be there: a peer rejects a message without them.
	for i := 0; i < theirs.Fields().Len(); i++ {
		g := theirs.Fields().Get(i)
		if g.Cardinality() == protoreflect.Required && fields.ByNumber(g.Number()) == nil {
			t.Errorf("%s: Hadoop's required field %s (%d) is missing", ours.FullName(), g.Name(), g.Number())
		}
	}
	for i := 0; i < ours.Messages().Len(); i++ {
		checkMessage(t, ours.Messages().Get(i))
	}
	for i := 0; i < ours.Enums().Len(); i++ {
		e := ours.Enums().Get(i)
		checkEnum(t, e, theirs.Enums().ByName(e.Name()))
	}
}

func checkEnum(t *testing.T, ours protoreflect.EnumDescriptor, d protoreflect.Descriptor) {
	theirs, ok := d.(protoreflect.EnumDescriptor)
	if !ok {
		t.Fatalf("%s: Hadoop's is not an enum", ours.FullName())
	}
	values := ours.Values()
	for i := 0; i < values.Len(); i++ {
		v := values.Get(i)
		if w := theirs.Values().ByName(v.Name()); w == nil || w.Number() != v.Number() {
			t.Errorf("%s.%s = %d is not Hadoop's", ours.FullName(), v.Name(), v.Number())
		}
	}
	if values.Len() != theirs.Values().Len() {
		t.Errorf("%s: %d values, Hadoop's has %d", ours.FullName(), values.Len(), theirs.Values().Len())
	}
}
