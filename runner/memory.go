package runner

import (
	"fmt"
	"os"
	"runtime/debug"

	"github.com/dustin/go-humanize"

	"github.com/weir-dev/weir/state"
)

// minMemory is the smallest budget --memory accepts.
const minMemory = 64 << 20

// memoryBudget splits Options.Memory, the memory a job may use, as Flink
// splits a task manager's process memory:
//
//   - a quarter to the keyed workers' write-back state caches (shared
//     evenly among them; state beyond them spills to the backend),
//   - an eighth to Pebble's block cache, and a sixteenth (at most 64 MiB)
//     to each of its memtables,
//   - the rest is the Go heap's soft limit (runtime/debug.SetMemoryLimit),
//     with the collector made lazier below it (GOGC 400): a job's live heap
//     is small next to what it allocates per second, so at Go's default
//     (GOGC 100) it collects many times a second, and Nexmark Q0 ran 35%
//     faster at 400.
//
// The budget is not a hard limit: Pebble's compactions, the readers' and
// writers' buffers and the runtime itself use memory beside it.
type memoryBudget int64

func (m memoryBudget) stateCaches() int64 { return int64(m) / 4 }

func (m memoryBudget) pebbleCache() int64 { return int64(m) / 8 }

func (m memoryBudget) memTable() int64 { return min(int64(m)/16, 64<<20) }

// pebble returns the Pebble options of the budget (nil: Pebble's defaults
// when there is no budget).
func (m memoryBudget) pebble() *state.PebbleOptions {
	if m <= 0 {
		return nil
	}
	return &state.PebbleOptions{CacheSize: m.pebbleCache(), MemTableSize: uint64(m.memTable())}
}

// goHeap is the Go heap's soft limit: the budget less what Pebble holds
// outside the Go heap (its cache, and up to two memtables).
func (m memoryBudget) goHeap() int64 {
	return int64(m) - m.pebbleCache() - 2*m.memTable()
}

// gcPercent is GOGC under a budget.
const gcPercent = 400

// applyGC sets the Go heap's soft limit and GOGC for the budget, unless the
// environment sets them (GOMEMLIMIT, GOGC: the operator's word wins), and
// returns what puts the previous settings back. The settings are the
// process's: one job runs per process.
func (m memoryBudget) applyGC() (restore func()) {
	if m <= 0 {
		return func() {}
	}
	var undo []func()
	if os.Getenv("GOMEMLIMIT") == "" {
		prev := debug.SetMemoryLimit(m.goHeap())
		undo = append(undo, func() { debug.SetMemoryLimit(prev) })
	}
	if os.Getenv("GOGC") == "" {
		prev := debug.SetGCPercent(gcPercent)
		undo = append(undo, func() { debug.SetGCPercent(prev) })
	}
	return func() {
		for _, u := range undo {
			u()
		}
	}
}

func (m memoryBudget) String() string {
	if m <= 0 {
		return "none"
	}
	return humanize.IBytes(uint64(m))
}

// ParseSize parses a size in bytes: a number with an optional unit, in
// powers of 1000 (KB, MB, GB) or 1024 (KiB, MiB, GiB; K, M and G alone are
// taken as powers of 1024 too, as the JVM's -Xmx reads them).
func ParseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(binaryUnit(s))
	if err != nil {
		return 0, fmt.Errorf("want a size such as 512MiB or 2GiB")
	}
	if n > 1<<62 {
		return 0, fmt.Errorf("%s is too large", s)
	}
	return int64(n), nil
}

// binaryUnit reads a bare K, M, G or T suffix as KiB, MiB, GiB or TiB
// (humanize reads it as a power of 1000).
func binaryUnit(s string) string {
	if k := len(s); k > 0 {
		switch s[k-1] {
		case 'k', 'K', 'm', 'M', 'g', 'G', 't', 'T':
			return s + "iB"
		}
	}
	return s
}
