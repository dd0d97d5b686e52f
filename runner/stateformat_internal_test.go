package runner

import (
	"errors"
	"strings"
	"testing"

	"github.com/weir-dev/weir/sdk"
)

// A checkpoint whose engine state a newer Weir wrote fails at launch; one
// of this format, or from before there was one, resumes.
func TestNewerStateFormatFailsAtLaunch(t *testing.T) {
	p := sdk.NewPipeline()
	sdk.Write(sdk.Read[string](p, "in"), "out")
	g := p.Graph()
	err := checkStateVersions(&checkpointMetaFile{ID: 7, StateFormat: stateFormat + 1}, g)
	if !errors.Is(err, ErrOptions) || !strings.Contains(err.Error(), "checkpoint 7 was written by a newer Weir") {
		t.Errorf("newer format: %v", err)
	}
	for _, f := range []int{0, stateFormat} {
		if err := checkStateVersions(&checkpointMetaFile{ID: 7, StateFormat: f}, g); err != nil {
			t.Errorf("format %d: %v", f, err)
		}
	}
}
