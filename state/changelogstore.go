package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// ChangeLogStore is a ChangeLog kept off the machine, in transactions that
// follow the job's checkpoints, from which a run on a fresh machine
// rebuilds the state of the latest checkpoint (Samza's changelog, Kafka
// Streams' changelog topics). io/kafka keeps one in a compacted topic per
// operator; another store plugs in by registering its URI scheme
// (RegisterChangeLog).
//
// A run calls Recover first, before any read; then, while the job runs,
// Changed from every worker at once, and at every checkpoint, while no
// worker changes state, PreCommit, then (once the checkpoint is stored)
// Commit.
type ChangeLogStore interface {
	ChangeLog
	// PreCommit makes the changes since the last checkpoint durable but
	// not visible, as the next checkpoint's, and returns a handle that the
	// checkpoint keeps for Recover.
	PreCommit(ctx context.Context) (handle []byte, err error)
	// Commit makes what PreCommit flushed visible, once the checkpoint that
	// holds its handle is stored.
	Commit(ctx context.Context) error
	// Recover readies the store for a run that resumes from checkpoint id
	// (0: none): the changes PreCommit returned handle for are committed
	// (a nil handle: they were, or there are none), and whatever a crashed
	// run changed after them is discarded.
	Recover(ctx context.Context, id int64, handle []byte) error
	// End is where the committed changelog ends now. A job that starts
	// with empty state takes it as the base of its lineage: what comes
	// before belongs to jobs that are gone.
	End(ctx context.Context) (ChangeLogPosition, error)
	// Restore applies to apply, in order for each key, every change
	// committed from base on (nil: from the start) to the committed end.
	Restore(ctx context.Context, base ChangeLogPosition, apply func(key, value []byte) error) (RestoreStats, error)
	// Close discards what is not committed and releases the store.
	Close() error
}

// ChangeLogPosition is a position in a changelog (Kafka: offsets by topic
// and partition), in the store's own JSON form: checkpoints keep it as it
// is.
type ChangeLogPosition = json.RawMessage

// RestoreStats describe a restore.
type RestoreStats struct {
	Records, Bytes int64
	Took           time.Duration
}

// ChangeLogConfig describes the state a changelog records.
type ChangeLogConfig struct {
	// Operators names the operators whose state it records, by state id.
	Operators map[uint32]string
	// KeyGroups is the job's number of key groups.
	KeyGroups int
	// Tasks, when not zero, says the job is scaled out in this many tasks,
	// each with state of its own (Samza's tasks), and that this changelog
	// writes and restores task Task's alone.
	Tasks, Task int32
}

// ChangeLogOpener opens the changelog store at a URI of its scheme.
type ChangeLogOpener func(ctx context.Context, uri *url.URL, cfg ChangeLogConfig) (ChangeLogStore, error)

// ErrNoChangeLogStore is returned for a changelog URI whose scheme has no
// store registered.
var ErrNoChangeLogStore = errors.New("state: no changelog store for this URI")

var changeLogStores struct {
	mu      sync.Mutex
	schemes map[string]ChangeLogOpener // guarded by mu
}

// RegisterChangeLog makes open the changelog store of URIs with the given
// scheme. It panics when the scheme is registered twice: a programming
// error found at init time.
func RegisterChangeLog(scheme string, open ChangeLogOpener) {
	changeLogStores.mu.Lock()
	defer changeLogStores.mu.Unlock()
	if changeLogStores.schemes == nil {
		changeLogStores.schemes = map[string]ChangeLogOpener{}
	}
	if _, dup := changeLogStores.schemes[scheme]; dup {
		panic("state: changelog scheme registered twice: " + scheme)
	}
	changeLogStores.schemes[scheme] = open
}

// OpenChangeLog opens the changelog store at uri through the store
// registered for its scheme.
func OpenChangeLog(ctx context.Context, uri string, cfg ChangeLogConfig) (ChangeLogStore, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrNoChangeLogStore, uri, err)
	}
	changeLogStores.mu.Lock()
	open, ok := changeLogStores.schemes[u.Scheme]
	var known []string
	for s := range changeLogStores.schemes {
		known = append(known, s+"://")
	}
	changeLogStores.mu.Unlock()
	if !ok {
		slices.Sort(known)
		return nil, fmt.Errorf("%w: %s (known: %s)", ErrNoChangeLogStore, u.Redacted(), strings.Join(known, ", "))
	}
	return open(ctx, u, cfg)
}
