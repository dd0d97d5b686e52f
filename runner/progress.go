package runner

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weir-dev/weir/runner/internal/engine"
	"github.com/weir-dev/weir/state"
	"github.com/weir-dev/weir/windowing"
)

// statePeakEvery is how often a run samples the size of its state.
const statePeakEvery = 100 * time.Millisecond

// progress watches a running run: it samples the size of its state for
// the summary's peaks, and logs its progress every interval. stop waits
// for its goroutines.
type progress struct {
	metrics *engine.Metrics
	backend state.Backend
	done    chan struct{}
	wg      sync.WaitGroup
	// peakKeys and peakBytes are the largest state sampled.
	peakKeys, peakBytes atomic.Int64
}

// startProgress starts sampling, and logging every interval when it is
// positive.
func startProgress(log *slog.Logger, m *engine.Metrics, b state.Backend, every time.Duration, start time.Time) *progress {
	p := &progress{metrics: m, backend: b, done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(statePeakEvery)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.sample()
			}
		}
	}()
	if every > 0 {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.report(log, every, start)
		}()
	}
	return p
}

// sample records the state's size if it is a peak: the backend's live keys,
// and the bytes of the backend on disk and in memory plus those of the
// keyed instances' write-back caches.
func (p *progress) sample() {
	m := p.backend.Metrics()
	for _, x := range []struct {
		peak *atomic.Int64
		v    int64
	}{{&p.peakKeys, m.Keys}, {&p.peakBytes, m.DiskBytes + m.MemBytes + p.metrics.CachedBytes()}} {
		for old := x.peak.Load(); x.v > old && !x.peak.CompareAndSwap(old, x.v); old = x.peak.Load() {
		}
	}
}

// stop takes a last sample and waits for the goroutines.
func (p *progress) stop() {
	p.sample()
	close(p.done)
	p.wg.Wait()
}

func (p *progress) report(log *slog.Logger, every time.Duration, start time.Time) {
	t := time.NewTicker(every)
	defer t.Stop()
	m, b := p.metrics, p.backend
	var last int64
	lastAt := start
	for {
		select {
		case <-p.done:
			return
		case now := <-t.C:
			read, written, _ := m.Snapshot()
			var r, w int64
			for _, v := range read {
				r += v
			}
			for _, v := range written {
				w += v
			}
			rate := float64(r-last) / now.Sub(lastAt).Seconds()
			last, lastAt = r, now
			sm := b.Metrics()
			log.Info("progress", "read", r, "records_per_s", int64(rate), "written", w,
				"event_time", windowing.Time(m.MaxEventTime.Load()), "watermark", windowing.Time(m.SourceWatermark.Load()),
				"state_mb", (sm.DiskBytes+sm.MemBytes)>>20, "dead_lettered", m.DeadLettered.Load())
		}
	}
}
