package connector

import (
	"fmt"
	"net/url"

	"github.com/weir-dev/weir/windowing"
)

// Handover is where a bounded read of a stream ended, in the connector's
// own form: for Kafka, the offsets that follow it by partition, as the
// handover file weir cp leaves beside a copied topic holds them. A source
// that starts right after it misses nothing and reads nothing twice.
type Handover []byte

// Continuer is a Connector whose sources can continue where other data
// ends: the live part of a backfill-then-stream job takes over from a
// history copied elsewhere, and a table loaded from a topic is followed
// from where its load ended.
type Continuer interface {
	// UntilNow returns u bounded at where its data ends now (a topic's end
	// offsets when the source opens), and true; or u and false when u says
	// where it ends itself.
	UntilNow(u *url.URL) (*url.URL, bool)
	// HandoverOf returns where s, a bounded source of this connector that
	// has been read to its end, ended.
	HandoverOf(s Source) (Handover, bool)
	// After returns u set to start right after h, and true. When h is about
	// other data (another topic) it returns u as it is, and false, if u
	// says where it starts itself, and an error otherwise: it would read
	// its whole history again.
	After(u *url.URL, h Handover) (*url.URL, bool, error)
	// At returns u set to start at the first record of event time t, or u
	// when it says where it starts itself.
	At(u *url.URL, t windowing.Time) *url.URL
}

// ContinuerOf returns the Continuer of u's scheme, or an error saying
// that its sources cannot continue other data.
func ContinuerOf(u *url.URL) (Continuer, error) {
	c, err := connectorOf(u)
	if err != nil {
		return nil, err
	}
	k, ok := c.(Continuer)
	if !ok {
		return nil, fmt.Errorf("%w: %s:// sources cannot continue where other data ends (kafka:// can)", ErrUnsupported, u.Scheme)
	}
	return k, nil
}
