package runner_test

import (
	"context"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/runner"
)

// stopOnClose is mem:// whose source, when the run closes it (after the
// engine has ended), closes the channel registered under its name: a stop
// that arrives once the input has been read to its end.
type stopOnClose struct{}

var lateStops sync.Map // name -> chan struct{}

func init() { connector.Register("stoponclose", stopOnClose{}) }

func (stopOnClose) OpenSource(ctx context.Context, spec connector.SourceSpec) (connector.Source, error) {
	name := spec.URI.Host
	spec.URI = &url.URL{Scheme: "mem", Host: name}
	src, err := connector.OpenSource(ctx, spec)
	if err != nil {
		return nil, err
	}
	return closeHook{src, name}, nil
}
func (stopOnClose) OpenSink(context.Context, connector.SinkSpec) (connector.Sink, error) {
	return nil, connector.ErrUnsupported
}

type closeHook struct {
	connector.Source
	name string
}

func (c closeHook) Close() error {
	if ch, ok := lateStops.LoadAndDelete(c.name); ok {
		close(ch.(chan struct{}))
	}
	return c.Source.Close()
}

// TestStopAfterTheInputEnded: a stop that comes after a checkpointed run
// has read its bounded input to the end, too late for a final checkpoint,
// leaves the run finished: its output committed and its checkpoint
// directory marked so, not resumable from an earlier checkpoint (which
// would write that output again).
func TestStopAfterTheInputEnded(t *testing.T) {
	in := memIn(ev{"a", 1, 1}, ev{"a", 2, 1}, ev{"b", 3, 1})
	name := in[len("mem://"):]
	stop := make(chan struct{})
	lateStops.Store(name, stop)
	ckpt := filepath.Join(t.TempDir(), "checkpoints")
	out, col := memOut()
	res, err := runner.Run(context.Background(), totalsPipeline(), runner.Options{Mode: runner.Stream, Progress: -1, StateBackend: "memory",
		CheckpointDir: ckpt, CheckpointInterval: time.Hour, Logger: slog.New(slog.DiscardHandler), Stop: stop,
		Bindings: map[string]string{"in": "stoponclose://" + name, "out": out}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-stop:
	default:
		t.Fatal("the source was not closed: the test did not stop the run late")
	}
	if res.Stopped {
		t.Error("the run reports a stop, though it read its input to the end")
	}
	if got := len(col.Values()); got != 3 {
		t.Errorf("%d totals committed, want 3", got)
	}
	if _, err := os.Stat(filepath.Join(ckpt, "FINISHED")); err != nil {
		t.Errorf("the checkpoint directory is not marked finished: %v", err)
	}
}
