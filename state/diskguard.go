package state

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// diskCheckInterval is how often a store's disk guard looks at the free
// space.
const diskCheckInterval = 100 * time.Millisecond

// diskGuard fails its store when the free space on the store's disk falls
// below the reserve (PebbleOptions.DiskReserve). It owns one goroutine,
// which stop ends and waits for.
type diskGuard struct {
	reserve atomic.Int64
	quit    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// checkDiskSpace returns an error wrapping ErrDiskFull when less than
// reserve is free on the disk of dir.
func checkDiskSpace(dir string, reserve int64) error {
	free, ok := freeSpace(dir)
	if !ok || free >= reserve {
		return nil
	}
	return fmt.Errorf("%w: %s: %d MiB free, less than the %d MiB the state keeps in reserve: free space on that disk, or use another --state-dir",
		ErrDiskFull, dir, free>>20, reserve>>20)
}

func startDiskGuard(p *Pebble, reserve int64) *diskGuard {
	g := &diskGuard{quit: make(chan struct{}), done: make(chan struct{})}
	g.reserve.Store(reserve)
	check := func() bool {
		if err := checkDiskSpace(p.dir, g.reserve.Load()); err != nil {
			p.fail(err)
			return false
		}
		return true
	}
	go func() {
		defer close(g.done)
		t := time.NewTicker(diskCheckInterval)
		defer t.Stop()
		for {
			select {
			case <-g.quit:
				return
			case <-t.C:
				if !check() {
					return
				}
			}
		}
	}()
	return g
}

// stop ends the guard's goroutine and waits for it. A nil guard (the check
// is off) does nothing.
func (g *diskGuard) stop() {
	if g == nil {
		return
	}
	g.once.Do(func() { close(g.quit) })
	<-g.done
}
