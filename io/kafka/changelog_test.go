package kafka_test

import (
	"context"
	"regexp"
	"testing"

	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/state/statetest"
)

// The kafka:// changelog passes the changelog stores' conformance suite,
// opened as the runner opens it, through the scheme's registration.
func TestChangeLogStoreConformance(t *testing.T) {
	addr := cluster(t, 1, "unused")
	unsafe := regexp.MustCompile(`[^A-Za-z0-9]+`)
	statetest.ChangeLogStore(t, func(t *testing.T, cfg state.ChangeLogConfig) state.ChangeLogStore {
		// One job, and so one topic prefix, per test.
		l, err := state.OpenChangeLog(context.Background(), "kafka://"+addr+"/"+unsafe.ReplaceAllString(t.Name(), "-"), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return l
	})
}
