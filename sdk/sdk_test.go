package sdk_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/graph"
	"github.com/weir-dev/weir/sdk"
	"github.com/weir-dev/weir/windowing"
)

type rec struct {
	User string
	At   int64
}

func TestConstructionErrorsNameTheTransform(t *testing.T) {
	for _, c := range []struct {
		name  string
		build func(p *sdk.Pipeline)
		want  string
	}{
		{"option that does not apply", func(p *sdk.Pipeline) {
			in := sdk.Read[rec](p, "in")
			sdk.Write(in, "out", sdk.Trigger(windowing.AtWatermark()))
		}, `Write "out": option Trigger does not apply here`},
		{"event time of another type", func(p *sdk.Pipeline) {
			in := sdk.Read[rec](p, "in", sdk.EventTime(func(s string) (sdk.Time, error) { return 0, nil }))
			sdk.Write(in, "out")
		}, `Read "in": EventTime takes a string but the source reads sdk_test.rec`},
		{"flatten of differently windowed inputs", func(p *sdk.Pipeline) {
			a := sdk.WindowInto(sdk.Read[rec](p, "a"), windowing.Fixed(time.Minute))
			b := sdk.Read[rec](p, "b")
			sdk.Write(sdk.Flatten(a, b), "out")
		}, `Flatten "Flatten": input 1 is windowed global`},
		{"late data of something else", func(p *sdk.Pipeline) {
			sdk.Write(sdk.LateData(sdk.Read[rec](p, "in")), "out")
		}, `LateData of Read(in).out: it is not the output of a WindowInto`},
		{"bad window", func(p *sdk.Pipeline) {
			sdk.Write(sdk.WindowInto(sdk.Read[rec](p, "in"), windowing.Sliding(time.Minute, time.Hour), sdk.Named("Hourly")), "out")
		}, `WindowInto "Hourly": windowing: bad window function: sliding window period 1h0m0s is longer than its size`},
		{"two reads of one name", func(p *sdk.Pipeline) {
			sdk.Write(sdk.Flatten(sdk.Read[rec](p, "in"), sdk.Read[rec](p, "in")), "out")
		}, `both read "in"`},
		{"schema version 0", func(p *sdk.Pipeline) {
			statefulWith(p, sdk.State(sdk.NewValueState[rec]("last", sdk.SchemaVersion(0))))
		}, `ParDo "Last": state "last": SchemaVersion(0): versions start at 1`},
		{"upgrade from the current version", func(p *sdk.Pipeline) {
			statefulWith(p, sdk.State(sdk.NewValueState[rec]("last", sdk.SchemaVersion(2), sdk.UpgradeFrom(2, func(r rec) rec { return r }))))
		}, `ParDo "Last": state "last": UpgradeFrom(2): not older than the SchemaVersion, 2`},
		{"upgrade to another type", func(p *sdk.Pipeline) {
			statefulWith(p, sdk.State(sdk.NewMapState[string, rec]("seen", sdk.SchemaVersion(2), sdk.UpgradeFrom(1, func(s string) string { return s }))))
		}, `ParDo "Last": state "seen": UpgradeFrom(1, func(string) string): returns string, but the state holds sdk_test.rec`},
		{"two upgrades from one version", func(p *sdk.Pipeline) {
			statefulWith(p, sdk.State(sdk.NewBagState[rec]("all", sdk.SchemaVersion(3),
				sdk.UpgradeFrom(1, func(r rec) rec { return r }), sdk.UpgradeFrom(1, func(r rec) rec { return r }))))
		}, `ParDo "Last": state "all": UpgradeFrom(1, func(sdk_test.rec) sdk_test.rec): a second upgrade from that version`},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := sdk.NewPipeline()
			c.build(p)
			err := p.Validate()
			if !errors.Is(err, graph.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an ErrInvalid with %q", err, c.want)
			}
		})
	}
}

type lastFn struct{}

func (lastFn) ProcessElement(*sdk.Context, sdk.KV[string, rec], sdk.Emitter[rec]) error { return nil }

// statefulWith adds a stateful ParDo "Last" with the State option given.
func statefulWith(p *sdk.Pipeline, state sdk.Option) {
	in := sdk.KeyBy(sdk.Read[rec](p, "in"), func(r rec) string { return r.User })
	sdk.Write(sdk.ParDo(in, lastFn{}, state, sdk.Named("Last")), "out")
}

func TestValidPipeline(t *testing.T) {
	p := sdk.NewPipeline()
	in := sdk.Read[rec](p, "in", sdk.EventTime(func(r rec) (sdk.Time, error) { return sdk.Time(r.At), nil }), sdk.OutOfOrderness(time.Minute))
	w := sdk.WindowInto(in, windowing.Sessions(time.Minute), sdk.AllowedLateness(time.Hour), sdk.Accumulating(),
		sdk.Trigger(windowing.AtWatermark().WithEarlyFirings(windowing.AfterCount(10))))
	sdk.Write(sdk.LateData(w), "late")
	g := sdk.GroupByKey(sdk.KeyBy(w, func(r rec) string { return r.User }))
	sdk.Write(g, "out")
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := g.Windowing().String(); !strings.Contains(got, "sessions(gap 1m0s)") || !strings.Contains(got, "accumulating") {
		t.Errorf("windowing of the grouped collection: %s", got)
	}
	if got := p.Graph().Sources(); len(got) != 1 || got[0] != "in" {
		t.Errorf("sources: %v", got)
	}
	if got := strings.Join(p.Graph().Sinks(), ","); got != "late,out" {
		t.Errorf("sinks: %v", got)
	}
}
