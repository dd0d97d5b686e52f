package state

// SetLoadChunkBytes sets the size of a Loader's chunks, for tests of
// several chunks; it returns what restores it.
func SetLoadChunkBytes(n int) func() {
	old := loadChunkBytes
	loadChunkBytes = n
	return func() { loadChunkBytes = old }
}

// SetDiskReserve changes the reserve p's disk guard checks, as if the
// disk filled up to it.
func SetDiskReserve(p *Pebble, n int64) { p.guard.reserve.Store(n) }
