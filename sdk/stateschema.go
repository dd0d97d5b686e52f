package sdk

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/weir-dev/weir/internal/coder"
)

// Schema versions of state.
//
// Every value a state cell stores carries the cell's schema version: 1
// unless declared with SchemaVersion. Values are stored by field name, so a
// field added to a state type needs nothing: older values read with the new
// field at its zero value. Bump the version when the type changes, so that
// the job's earlier code (a rollback) refuses the newer state instead of
// silently dropping the new fields; for a change that field names cannot
// bridge (a field whose type changed), give UpgradeFrom a function from the
// old type.
//
// Reading a stored value of version s with a cell declared at version d:
//   - s == d: decode it;
//   - s < d: convert it with the UpgradeFrom function for s, if any, else
//     decode it by field name;
//   - s > d: fail with ErrStateNewer.
//
// Writes always store version d, so a value is upgraded when it is next
// written.

var (
	// ErrStateNewer is wrapped by the error reading a state value stored
	// with a schema version newer than the state cell declares: a newer
	// version of the job wrote it, and this one cannot know what it means.
	ErrStateNewer = errors.New("sdk: state written by a newer version of the job")
	// ErrStateSchema is wrapped by the error reading a state value the state
	// cell cannot decode: its type changed incompatibly (and no UpgradeFrom
	// converts it), or the value has no header this version of Weir knows.
	ErrStateSchema = errors.New("sdk: stored state does not fit its declaration")
)

// StateOption configures a state cell where it is declared (NewValueState
// and the like): SchemaVersion, UpgradeFrom.
type StateOption interface {
	applyState(vc *valueCodec)
}

type stateOptionFunc func(vc *valueCodec)

func (f stateOptionFunc) applyState(vc *valueCodec) { f(vc) }

// SchemaVersion declares the schema version of a state cell's values:
// stored with every value written, compared with on every read. Versions
// start at 1, the default. Bump it when the cell's type changes.
func SchemaVersion(v int) StateOption {
	return stateOptionFunc(func(vc *valueCodec) {
		if v < 1 {
			vc.errs = append(vc.errs, fmt.Sprintf("SchemaVersion(%d): versions start at 1", v))
			return
		}
		vc.version = uint64(v)
	})
}

// UpgradeFrom converts the cell's values stored with an older schema
// version to its current type: they decode as Old, and fn returns the value
// to use. New must be the cell's value type (for a MapState its values, for
// a CombiningState its accumulator). Without an UpgradeFrom for a version,
// its values decode as the current type by field name.
func UpgradeFrom[Old, New any](version int, fn func(Old) New) StateOption {
	c := coder.Of[Old]()
	return stateOptionFunc(func(vc *valueCodec) {
		what := fmt.Sprintf("UpgradeFrom(%d, func(%s) %s)", version, c.Type(), reflect.TypeFor[New]())
		switch {
		case version < 1:
			vc.errs = append(vc.errs, what+": versions start at 1")
			return
		case reflect.TypeFor[New]() != vc.c.Type():
			vc.errs = append(vc.errs, fmt.Sprintf("%s: returns %s, but the state holds %s", what, reflect.TypeFor[New](), vc.c.Type()))
			return
		case vc.upgrades[uint64(version)].fn != nil:
			vc.errs = append(vc.errs, what+": a second upgrade from that version")
			return
		}
		if vc.upgrades == nil {
			vc.upgrades = map[uint64]upgrade{}
		}
		vc.upgrades[uint64(version)] = upgrade{from: c.Type(), fn: func(b []byte) (any, error) {
			old, err := c.Decode(b)
			if err != nil {
				return nil, err
			}
			return fn(old.(Old)), nil
		}}
	})
}

// valueCodec encodes the values of a state cell with their header, and
// decodes stored values of the versions the cell can read.
type valueCodec struct {
	c        coder.Coder
	version  uint64
	upgrades map[uint64]upgrade
	// errs are problems with the cell's options, reported by ParDo.
	errs []string
}

type upgrade struct {
	from reflect.Type
	fn   func(body []byte) (any, error)
}

func newValueCodec(c coder.Coder, opts []StateOption) valueCodec {
	vc := valueCodec{c: c, version: 1}
	for _, o := range opts {
		if o != nil {
			o.applyState(&vc)
		}
	}
	var from []uint64
	for v := range vc.upgrades {
		if v >= vc.version {
			from = append(from, v)
		}
	}
	slices.Sort(from)
	for _, v := range from {
		vc.errs = append(vc.errs, fmt.Sprintf("UpgradeFrom(%d): not older than the SchemaVersion, %d", v, vc.version))
	}
	return vc
}

// check reports the problems with the options of state cell name.
func (vc *valueCodec) check(name string) error {
	if len(vc.errs) == 0 {
		return nil
	}
	return fmt.Errorf("state %q: %s", name, strings.Join(vc.errs, "; "))
}

// appendValue appends the header and the encoding of v.
func (vc *valueCodec) appendValue(dst []byte, v any) ([]byte, error) {
	return vc.c.Append(coder.AppendHeader(dst, vc.version), v)
}

// decode decodes a value of state cell name as stored.
func (vc *valueCodec) decode(name string, b []byte) (any, error) {
	stored, body, err := coder.SplitHeader(b)
	if err != nil {
		return nil, fmt.Errorf("%w: state %q: %w", ErrStateSchema, name, err)
	}
	if stored == vc.version {
		v, err := vc.c.Decode(body)
		if err != nil {
			return nil, fmt.Errorf("%w: state %q (stored with schema version %d, declared %d) does not decode as %s; a type change other than added fields needs a new SchemaVersion and UpgradeFrom(%d, ...): %w",
				ErrStateSchema, name, stored, vc.version, vc.c.Type(), stored, err)
		}
		return v, nil
	}
	if stored > vc.version {
		return nil, fmt.Errorf("%w: state %q is stored with schema version %d, this job declares %d (run the job that wrote it, or resume from a checkpoint this version wrote)",
			ErrStateNewer, name, stored, vc.version)
	}
	if up, ok := vc.upgrades[stored]; ok {
		v, err := up.fn(body)
		if err != nil {
			return nil, fmt.Errorf("%w: state %q (stored with schema version %d, declared %d) does not decode as %s for UpgradeFrom(%d, ...): %w",
				ErrStateSchema, name, stored, vc.version, up.from, stored, err)
		}
		return v, nil
	}
	v, err := vc.c.Decode(body)
	if err != nil {
		return nil, fmt.Errorf("%w: state %q (stored with schema version %d, declared %d) does not decode as %s; a type change other than added fields needs UpgradeFrom(%d, ...): %w",
			ErrStateSchema, name, stored, vc.version, vc.c.Type(), stored, err)
	}
	return v, nil
}
