package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/io/connector"
)

// Unreachable brokers. While a source's broker cannot be reached, its
// readers return no records, which looks the same as a quiet topic: the job
// goes on taking checkpoints and says nothing. So every client of a source
// reports its connections (a kgo hook), and a broker that has failed every
// connection, read and write for unreachableAfter is logged as a warning,
// again every warnEvery while it stays so, and with an info line when it
// answers again. SourceHealth gives the same to the runner, for metrics and
// readiness.
const (
	unreachableAfter = 5 * time.Second
	warnEvery        = 30 * time.Second
)

// BrokerHealth is what a kafka:// source knows of its brokers' reachability.
type BrokerHealth struct {
	// Down lists the brokers ("host:port") unreachable for unreachableAfter
	// or longer now, sorted.
	Down []string
	// Since is when the first of them last answered; zero when none is
	// down.
	Since time.Time
	// Outages counts the times since the source opened that a broker was
	// unreachable for unreachableAfter or longer.
	Outages int64
}

// SourceHealth returns the reachability of a kafka:// source's brokers.
func SourceHealth(src connector.Source) (BrokerHealth, bool) {
	s, ok := src.(*source)
	if !ok {
		return BrokerHealth{}, false
	}
	return s.health.report(time.Now()), true
}

// brokerHealth is a source's view of its brokers, fed by its clients'
// hooks (from franz-go's goroutines) and checked by its readers.
type brokerHealth struct {
	log   *slog.Logger
	topic string

	mu struct {
		sync.Mutex
		down    map[string]brokerDown // by "host:port": failing since
		outage  bool                  // a broker is down past unreachableAfter
		outages int64
		warned  time.Time // the last warning
	}
}

type brokerDown struct {
	since time.Time
	err   error
}

func newBrokerHealth(log *slog.Logger, topic string) *brokerHealth {
	h := &brokerHealth{log: log, topic: topic}
	h.mu.down = map[string]brokerDown{}
	return h
}

var (
	_ kgo.HookBrokerConnect = (*brokerHealth)(nil)
	_ kgo.HookBrokerRead    = (*brokerHealth)(nil)
	_ kgo.HookBrokerWrite   = (*brokerHealth)(nil)
)

// Only an answer read shows a broker is up: one that accepts connections
// and requests and answers nothing (or drops the connection) is down.
// Failed connections and writes show it is down.

func (h *brokerHealth) OnBrokerConnect(meta kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	if err != nil {
		h.seen(meta, err)
	}
}

func (h *brokerHealth) OnBrokerRead(meta kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	h.seen(meta, err)
}

func (h *brokerHealth) OnBrokerWrite(meta kgo.BrokerMetadata, _ int16, _ int, _, _ time.Duration, err error) {
	if err != nil {
		h.seen(meta, err)
	}
}

// seen records the outcome of a connection, read or write.
func (h *brokerHealth) seen(meta kgo.BrokerMetadata, err error) {
	if err != nil && (errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed)) {
		return // the client is closing: says nothing of the broker
	}
	addr := net.JoinHostPort(meta.Host, strconv.Itoa(int(meta.Port)))
	now := time.Now()
	h.mu.Lock()
	if err != nil {
		if d, ok := h.mu.down[addr]; ok {
			d.err = err
			h.mu.down[addr] = d
		} else {
			h.mu.down[addr] = brokerDown{since: now, err: err}
		}
		h.mu.Unlock()
		h.check(now)
		return
	}
	d, ok := h.mu.down[addr]
	delete(h.mu.down, addr)
	back := ok && h.mu.outage && !h.downLocked(now)
	if back {
		h.mu.outage = false
		h.mu.warned = time.Time{}
	}
	h.mu.Unlock()
	if back {
		h.log.Info(fmt.Sprintf("kafka: broker %s reachable again after %s", addr, now.Sub(d.since).Round(time.Second)), "topic", h.topic)
	}
}

// downLocked reports whether a broker is down past unreachableAfter.
func (h *brokerHealth) downLocked(now time.Time) bool {
	for _, d := range h.mu.down {
		if now.Sub(d.since) >= unreachableAfter {
			return true
		}
	}
	return false
}

// check counts an outage and logs a warning when a broker has been down
// for unreachableAfter, and every warnEvery while it stays down. Readers
// call it at each poll and the hooks at each failure, so no goroutine of
// its own is needed.
func (h *brokerHealth) check(now time.Time) {
	h.mu.Lock()
	r := h.reportLocked(now)
	if len(r.Down) == 0 {
		h.mu.Unlock()
		return
	}
	if !h.mu.outage {
		h.mu.outage = true
		h.mu.outages++
	}
	if now.Sub(h.mu.warned) < warnEvery {
		h.mu.Unlock()
		return
	}
	h.mu.warned = now
	err := h.mu.down[r.Down[0]].err
	h.mu.Unlock()
	h.log.Warn(fmt.Sprintf("kafka: broker(s) %s unreachable for %s: %v", strings.Join(r.Down, ","), now.Sub(r.Since).Round(time.Second), err), "topic", h.topic)
}

func (h *brokerHealth) report(now time.Time) BrokerHealth {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reportLocked(now)
}

func (h *brokerHealth) reportLocked(now time.Time) BrokerHealth {
	r := BrokerHealth{Outages: h.mu.outages}
	for addr, d := range h.mu.down {
		if now.Sub(d.since) < unreachableAfter {
			continue
		}
		r.Down = append(r.Down, addr)
		if r.Since.IsZero() || d.since.Before(r.Since) {
			r.Since = d.since
		}
	}
	slices.Sort(r.Down)
	return r
}
