package runner

import (
	"errors"
	"runtime/debug"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"1GiB", 1 << 30},
		{"2G", 2 << 30},
		{"512M", 512 << 20},
		{"512MiB", 512 << 20},
		{"100MB", 100_000_000},
		{"1048576", 1 << 20},
	} {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "lots", "-1G", "1XB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q): no error", bad)
		}
	}
}

func TestMemoryBudgetSplit(t *testing.T) {
	m := memoryBudget(1 << 30)
	if got := m.stateCaches(); got != 256<<20 {
		t.Errorf("state caches %d, want 256 MiB", got)
	}
	po := m.pebble()
	if po.CacheSize != 128<<20 || po.MemTableSize != 64<<20 {
		t.Errorf("pebble cache %d memtable %d, want 128 MiB and 64 MiB", po.CacheSize, po.MemTableSize)
	}
	if got := m.goHeap(); got != 1<<30-128<<20-128<<20 {
		t.Errorf("go heap %d, want 768 MiB", got)
	}
	if memoryBudget(0).pebble() != nil {
		t.Error("no budget: want Pebble's defaults")
	}
}

func TestMemoryBudgetGC(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	t.Setenv("GOGC", "")
	limit, pct := debug.SetMemoryLimit(-1), debug.SetGCPercent(-1)
	debug.SetGCPercent(pct)
	restore := memoryBudget(1 << 30).applyGC()
	if got := debug.SetMemoryLimit(-1); got != memoryBudget(1<<30).goHeap() {
		t.Errorf("memory limit %d under a budget", got)
	}
	if got := debug.SetGCPercent(gcPercent); got != gcPercent {
		t.Errorf("GOGC %d under a budget, want %d", got, gcPercent)
	}
	restore()
	if got := debug.SetMemoryLimit(-1); got != limit {
		t.Errorf("memory limit %d after the run, want %d back", got, limit)
	}
	if got := debug.SetGCPercent(pct); got != pct {
		t.Errorf("GOGC %d after the run, want %d back", got, pct)
	}

	// The operator's GOGC wins.
	t.Setenv("GOGC", "150")
	restore = memoryBudget(1 << 30).applyGC()
	if got := debug.SetGCPercent(pct); got != pct {
		t.Errorf("GOGC set in the environment was overridden: %d", got)
	}
	restore()
	debug.SetMemoryLimit(limit)
}

func TestMemoryTooSmall(t *testing.T) {
	o := Options{Memory: 10 << 20}
	o.EnsureDefaults()
	if err := o.Validate(); !errors.Is(err, ErrOptions) {
		t.Fatalf("--memory=10MiB: %v, want ErrOptions", err)
	}
}
