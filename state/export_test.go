package state

// SetLoadChunkBytes sets the size of a Loader's chunks, for tests of
// several chunks; it returns what restores it.
func SetLoadChunkBytes(n int) func() {
	old := loadChunkBytes
	loadChunkBytes = n
	return func() { loadChunkBytes = old }
}
