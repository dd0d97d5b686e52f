package kafka_test

import (
	"context"
	"log/slog"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/kafka"
)

// logCapture is a slog handler that keeps the messages it is given.
type logCapture struct {
	mu   sync.Mutex
	msgs []string // "LEVEL message"
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (c *logCapture) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCapture) WithGroup(string) slog.Handler      { return c }

// find returns the first message that starts with level and contains s.
func (c *logCapture) find(level, s string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.msgs {
		if strings.HasPrefix(m, level+" ") && strings.Contains(m, s) {
			return m, true
		}
	}
	return "", false
}

// TestUnreachableBrokerIsLogged: while a source's broker is down, its
// reader keeps returning nothing, which looks like a quiet topic; the
// source must say so in a warning, count the outage for SourceHealth, and
// say when the broker is back. The test waits for each event with a
// generous deadline; it asserts nothing about how soon they come.
func TestUnreachableBrokerIsLogged(t *testing.T) {
	logs := &logCapture{}
	prev := slog.Default()
	slog.SetDefault(slog.New(logs))
	defer slog.SetDefault(prev)

	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.Join(c.ListenAddrs(), ",")
	_, port, _ := net.SplitHostPort(addr)
	writeN(t, addr, "in", 0, 3)
	ctx := context.Background()
	src, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: "in", URI: uri(t, "kafka://"+addr+"/in"), Type: reflect.TypeFor[event]()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	splits, _ := src.Splits(ctx)
	rd, err := splits[0].Open(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	readN(t, rd, 3)
	if h, _ := kafka.SourceHealth(src); len(h.Down) != 0 || h.Outages != 0 {
		t.Fatalf("health of a reachable broker: %+v", h)
	}

	// pollUntil reads as the runner does until the log has a message.
	buf := make([]connector.Record, 8)
	pollUntil := func(level, s string) string {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for time.Now().Before(deadline) {
			if m, ok := logs.find(level, s); ok {
				return m
			}
			rd.Read(ctx, buf) // errors while the broker is away are not the point
		}
		t.Fatalf("no %s %q logged in 2 minutes; logged: %q", level, s, logs.msgs)
		return ""
	}

	c.Close()
	m := pollUntil("WARN", "unreachable for")
	if !strings.Contains(m, "kafka: broker(s) "+addr) {
		t.Errorf("warning %q does not name the broker %s", m, addr)
	}
	h, ok := kafka.SourceHealth(src)
	if !ok || len(h.Down) != 1 || h.Down[0] != addr || h.Outages != 1 || h.Since.IsZero() {
		t.Errorf("health while the broker is down: %+v, want %s down, one outage", h, addr)
	}

	// The broker back on its port.
	p, _ := strconv.Atoi(port)
	c2, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(p), kfake.SeedTopics(1, "in"))
	if err != nil {
		t.Fatalf("restarting the broker on port %d: %v", p, err)
	}
	defer c2.Close()
	pollUntil("INFO", "reachable again")
	t.Logf("logged: %q", logs.msgs)
	if h, _ := kafka.SourceHealth(src); len(h.Down) != 0 || h.Outages != 1 {
		t.Errorf("health after the broker came back: %+v, want none down, one outage counted", h)
	}
}
