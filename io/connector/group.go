package connector

import (
	"context"
	"fmt"
	"net/url"
	"time"
)

// A job scaled out over a group of processes runs as tasks, one per input
// partition (Samza's tasks): task p reads partition p of every source. The
// processes agree on who runs which task through the system the sources
// read from (a Kafka consumer group), with no coordinator of Weir's own. A
// connector whose sources can do that implements Grouper.

// GroupConfig describes one process of a job scaled out over a group.
type GroupConfig struct {
	// Sources are the URIs of the job's sources, all of one scheme.
	Sources []string
	// Group is the group's name.
	Group string
	// SessionTimeout is how long the group waits for a process that
	// stopped answering before its tasks go to the others; 0: the
	// system's default.
	SessionTimeout time.Duration
	// RebalanceTimeout is how long the processes have to stop their tasks
	// when the group hands them out again; 0: the system's default.
	RebalanceTimeout time.Duration
	// Assigned is called with the tasks this process runs, out of all of
	// the job's, after the group handed them out, or with the error that
	// makes the assignment unusable. Revoked is called before the group
	// hands the tasks out again: they must stop, their state handed over
	// (a final checkpoint), before it returns. Lost is called when the
	// process learns it was dropped from the group: another may run its
	// tasks already, so they must stop without committing anything. They
	// are called from one goroutine, one at a time.
	Assigned func(tasks []int32, of int32, err error)
	Revoked  func()
	Lost     func()
}

// Membership is a process's place in its job's group.
type Membership interface {
	// CommitPositions reports the positions of a task's completed
	// checkpoint, by split id, to the group, for monitoring (a Kafka
	// consumer group's lag); tasks resume from their checkpoints.
	CommitPositions(ctx context.Context, positions map[string][]byte) error
	// Close leaves the group, after Revoked has stopped the tasks.
	Close()
}

// Grouper is a Connector whose sources can scale a job out over a group.
type Grouper interface {
	// JoinGroup joins the group and starts calling cfg's callbacks. It
	// fails at once when the sources cannot be read as tasks (they are
	// not plain topics, or have different numbers of partitions).
	JoinGroup(ctx context.Context, cfg GroupConfig) (Membership, error)
}

// JoinGroup joins the group of a scaled-out job through the connector of its
// sources' scheme.
func JoinGroup(ctx context.Context, cfg GroupConfig) (Membership, error) {
	if len(cfg.Sources) == 0 {
		return nil, fmt.Errorf("%w: a job scaled out over group %q needs a source to read as tasks", ErrUnsupported, cfg.Group)
	}
	u, err := ParseURI(cfg.Sources[0])
	if err != nil {
		return nil, err
	}
	c, err := connectorOf(u)
	if err != nil {
		return nil, err
	}
	g, ok := c.(Grouper)
	if !ok {
		return nil, fmt.Errorf("%w: %s:// sources cannot scale a job out over a group (kafka:// can)", ErrUnsupported, u.Scheme)
	}
	for _, s := range cfg.Sources[1:] {
		if v, err := url.Parse(s); err == nil && v.Scheme != u.Scheme {
			return nil, fmt.Errorf("%w: a job scaled out over a group reads one kind of source; it has %s:// and %s://", ErrUnsupported, u.Scheme, v.Scheme)
		}
	}
	return g.JoinGroup(ctx, cfg)
}
