package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2"

	"github.com/weir-dev/weir/internal/fsutil"
)

// ErrInvalidOptions is returned by PebbleOptions.Validate and OpenPebble when
// options are out of range.
var ErrInvalidOptions = errors.New("state: invalid options")

// Defaults of PebbleOptions.
const (
	// DefaultPebbleCacheSize is the default PebbleOptions.CacheSize.
	DefaultPebbleCacheSize = 64 << 20
	// DefaultPebbleMemTableSize is the default PebbleOptions.MemTableSize.
	DefaultPebbleMemTableSize = 32 << 20
	// DefaultPebbleMaxOpenFiles is the default PebbleOptions.MaxOpenFiles.
	DefaultPebbleMaxOpenFiles = 1000
	// DefaultPebbleDiskReserve is the default PebbleOptions.DiskReserve.
	DefaultPebbleDiskReserve = 64 << 20
)

// maxPebbleMemTableSize is Pebble's own limit (memtable offsets are 32-bit).
const maxPebbleMemTableSize = 4<<30 - 1

// PebbleOptions configures OpenPebble. The zero value, and a nil
// *PebbleOptions, mean all defaults.
type PebbleOptions struct {
	// CacheSize is the size in bytes of the block cache, which holds
	// uncompressed sstable blocks so that hot state is read from memory. It
	// must not be negative.
	//
	// The default is 64 MiB.
	CacheSize int64

	// MemTableSize is the size in bytes a memtable grows to before it is
	// flushed to an sstable. Larger memtables absorb more overwrites of hot
	// state cells before they cost disk writes. Pebble starts small and
	// doubles up to this size, so short-lived stores stay small. It must be
	// less than 4 GiB.
	//
	// The default is 32 MiB.
	MemTableSize uint64

	// MaxOpenFiles is a soft limit on the number of files the store keeps
	// open. It must not be negative.
	//
	// The default is 1000.
	MaxOpenFiles int

	// Sync makes every write wait until it is synced to the write-ahead log.
	// Weir does not need it: a pipeline's durability comes from Flush and
	// Checkpoint, and a crash replays from the last checkpoint, so writes are
	// made with pebble.NoSync unless Sync is set.
	//
	// The default is false.
	Sync bool

	// OnFailure, if set, is called once, from one of Pebble's goroutines,
	// when the store fails in a way a job cannot wait out: a flush or a
	// compaction could not write because the disk is full. From then on
	// every operation returns an error wrapping ErrDiskFull; a write
	// already waiting for room in the store's memory may wait until the
	// disk has room again, so the caller should end the job.
	//
	// The default is nil: operations fail, nothing is called.
	OnFailure func(error)

	// DiskReserve is the free space, in bytes, the store leaves on its
	// disk: with less free, OpenPebble fails, and an open store (checked
	// every diskCheckInterval) fails with ErrDiskFull (OnFailure) before
	// the disk is full. Pebble cannot run out of disk safely: a
	// write-ahead log it cannot create ends the process (a panic under
	// its own lock, which no recover can catch). It is a floor, not a
	// promise: a burst of writes within one interval can still fill a
	// disk that was nearly full. Negative turns the check off.
	//
	// The default is 64 MiB.
	DiskReserve int64
}

// EnsureDefaults sets every zero field of o to its default.
func (o *PebbleOptions) EnsureDefaults() {
	if o.CacheSize == 0 {
		o.CacheSize = DefaultPebbleCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultPebbleMemTableSize
	}
	if o.MaxOpenFiles == 0 {
		o.MaxOpenFiles = DefaultPebbleMaxOpenFiles
	}
	if o.DiskReserve == 0 {
		o.DiskReserve = DefaultPebbleDiskReserve
	}
}

// Validate reports every out-of-range field of o at once, in an error
// wrapping ErrInvalidOptions. Zero fields are valid (they mean the default).
func (o *PebbleOptions) Validate() error {
	var problems []string
	if o.CacheSize < 0 {
		problems = append(problems, fmt.Sprintf("CacheSize is %d, must not be negative", o.CacheSize))
	}
	if o.MemTableSize > maxPebbleMemTableSize {
		problems = append(problems, fmt.Sprintf("MemTableSize is %d, must be less than 4 GiB", o.MemTableSize))
	}
	if o.MaxOpenFiles < 0 {
		problems = append(problems, fmt.Sprintf("MaxOpenFiles is %d, must not be negative", o.MaxOpenFiles))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: PebbleOptions: %s", ErrInvalidOptions, strings.Join(problems, "; "))
	}
	return nil
}

// Pebble is the on-disk Backend, a Pebble database in one directory.
//
// Every method is safe for concurrent use. Close waits for calls in flight;
// afterwards every method returns an error wrapping ErrClosed.
type Pebble struct {
	dir  string
	wo   *pebble.WriteOptions
	opts *pebble.Options // as opened: a Loader writes tables with them

	// mu guards the database handle. Operations hold it for reading; Close
	// holds it for writing, so it waits for operations in flight and no
	// operation starts on a closed database (Pebble panics on those).
	mu struct {
		sync.RWMutex
		db *pebble.DB // nil once closed
	}

	// failed is set, once, to why the store failed (OnFailure).
	failed atomic.Pointer[error]
	// onFailure is PebbleOptions.OnFailure.
	onFailure func(error)
	// guard watches the disk's free space (diskguard.go); nil when the
	// check is off.
	guard *diskGuard

	// iters tracks open iterators, so that Close can close and report the
	// ones left open (Pebble must not be closed under open iterators).
	iters struct {
		sync.Mutex
		open map[*pebbleIter]struct{}
	}
}

var _ Backend = (*Pebble)(nil)

// OpenPebble opens the Pebble store in dir, creating it if needed. opts may be
// nil for defaults. A checkpoint directory written by Checkpoint opens as a
// store too; see also RestorePebble.
func OpenPebble(dir string, opts *PebbleOptions) (*Pebble, error) {
	var o PebbleOptions
	if opts != nil {
		o = *opts
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.EnsureDefaults()
	if dir == "" {
		return nil, errors.New("state: OpenPebble: empty directory name")
	}
	popts := &pebble.Options{
		CacheSize:          o.CacheSize,
		MemTableSize:       o.MemTableSize,
		MaxOpenFiles:       o.MaxOpenFiles,
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{},
	}
	p := &Pebble{dir: dir, wo: pebble.NoSync, opts: popts, onFailure: o.OnFailure}
	popts.EventListener = &pebble.EventListener{BackgroundError: p.backgroundError}
	popts.EnsureDefaults()
	if o.DiskReserve > 0 {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("state: open pebble %s: %w", dir, err)
		}
		if err := checkDiskSpace(dir, o.DiskReserve); err != nil {
			return nil, err
		}
	}
	db, err := pebble.Open(dir, popts)
	if err != nil {
		return nil, fmt.Errorf("state: open pebble %s: %w", dir, err)
	}
	if o.Sync {
		p.wo = pebble.Sync
	}
	p.mu.db = db
	p.iters.open = make(map[*pebbleIter]struct{})
	if o.DiskReserve > 0 {
		p.guard = startDiskGuard(p, o.DiskReserve)
	}
	return p, nil
}

// backgroundError is Pebble's report of a flush or compaction that
// failed. Pebble retries them; one that failed for want of disk space
// fails the store (OnFailure). Others are logged.
func (p *Pebble) backgroundError(err error) {
	if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		log.Printf("state: pebble: background error: %v", err)
		return
	}
	p.fail(fmt.Errorf("%w: %s: %v", ErrDiskFull, p.dir, err))
}

// fail fails the store, once: operations return err from now on, and
// OnFailure is told.
func (p *Pebble) fail(err error) {
	if p.failed.CompareAndSwap(nil, &err) && p.onFailure != nil {
		p.onFailure(err)
	}
}

// broken returns why the store failed, or nil.
func (p *Pebble) broken() error {
	if e := p.failed.Load(); e != nil {
		return *e
	}
	return nil
}

// Dir returns the directory of the store.
func (p *Pebble) Dir() string { return p.dir }

func (p *Pebble) closedError(op string) error {
	return fmt.Errorf("%w: %s on pebble store %s", ErrClosed, op, p.dir)
}

// Get implements Backend.
func (p *Pebble) Get(key []byte) ([]byte, bool, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.mu.db == nil {
		return nil, false, p.closedError("Get")
	}
	if err := p.broken(); err != nil {
		return nil, false, err
	}
	v, closer, err := p.mu.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: get: %w", err)
	}
	out := make([]byte, len(v))
	copy(out, v)
	if err := closer.Close(); err != nil {
		return nil, false, fmt.Errorf("state: get: %w", err)
	}
	return out, true, nil
}

// Set implements Backend.
func (p *Pebble) Set(key, value []byte) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.mu.db == nil {
		return p.closedError("Set")
	}
	if err := p.broken(); err != nil {
		return err
	}
	if len(key) == 0 {
		return ErrEmptyKey
	}
	if err := p.mu.db.Set(key, value, p.wo); err != nil {
		return fmt.Errorf("state: set: %w", err)
	}
	return nil
}

// Delete implements Backend.
func (p *Pebble) Delete(key []byte) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.mu.db == nil {
		return p.closedError("Delete")
	}
	if err := p.broken(); err != nil {
		return err
	}
	if len(key) == 0 {
		return nil // no empty key is ever stored
	}
	if err := p.mu.db.Delete(key, p.wo); err != nil {
		return fmt.Errorf("state: delete: %w", err)
	}
	return nil
}

// DeleteRange implements Backend. A nil end deletes to the last key; keys
// written concurrently past the last key at the time of the call may survive.
func (p *Pebble) DeleteRange(start, end []byte) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	db := p.mu.db
	if db == nil {
		return p.closedError("DeleteRange")
	}
	if err := p.broken(); err != nil {
		return err
	}
	if len(start) == 0 {
		// No empty key is ever stored, and Pebble handles it poorly (see
		// ErrEmptyKey): start at the smallest non-empty key.
		start = []byte{0}
	}
	if end == nil {
		// Pebble needs an end key: use the successor of the last key.
		it, err := db.NewIter(&pebble.IterOptions{LowerBound: start})
		if err != nil {
			return fmt.Errorf("state: delete range: %w", err)
		}
		if it.Last() {
			end = append(append([]byte(nil), it.Key()...), 0)
		}
		if err := it.Close(); err != nil {
			return fmt.Errorf("state: delete range: %w", err)
		}
		if end == nil {
			return nil // nothing at or after start
		}
	}
	if bytes.Compare(start, end) >= 0 {
		return nil
	}
	if err := db.DeleteRange(start, end, p.wo); err != nil {
		return fmt.Errorf("state: delete range: %w", err)
	}
	return nil
}

// NewIter implements Backend. The iterator reads a consistent snapshot of
// the store as of the call.
func (p *Pebble) NewIter(lower, upper []byte) (Iterator, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.mu.db == nil {
		return nil, p.closedError("NewIter")
	}
	if err := p.broken(); err != nil {
		return nil, err
	}
	pi := &pebbleIter{p: p}
	if upper == nil || bytes.Compare(lower, upper) < 0 {
		// Pebble keeps the bounds for the life of the iterator; the caller
		// may reuse theirs, so copy them. An empty lower bound is no bound
		// (Pebble's invariant checks mishandle it).
		buf := make([]byte, 0, len(lower)+len(upper))
		o := &pebble.IterOptions{}
		if len(lower) > 0 {
			buf = append(buf, lower...)
			o.LowerBound = buf[:len(lower):len(lower)]
		}
		if upper != nil {
			buf = append(buf, upper...)
			o.UpperBound = buf[len(buf)-len(upper):]
		}
		it, err := p.mu.db.NewIter(o)
		if err != nil {
			return nil, fmt.Errorf("state: new iterator: %w", err)
		}
		pi.it = it
	} // else the range is empty and pi.it stays nil.
	p.iters.Lock()
	p.iters.open[pi] = struct{}{}
	p.iters.Unlock()
	return pi, nil
}

// Checkpoint implements Backend with Pebble's own checkpoint: sstables are
// hard-linked when dir is on the same filesystem, and the write-ahead log is
// synced first so that unsynced writes are included.
func (p *Pebble) Checkpoint(dir string) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.mu.db == nil {
		return p.closedError("Checkpoint")
	}
	if err := p.broken(); err != nil {
		return err
	}
	if _, err := os.Lstat(dir); err == nil {
		return fmt.Errorf("%w: %s", ErrCheckpointExists, dir)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("state: checkpoint: %w", err)
	}
	if err := p.mu.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrCheckpointExists, dir)
		}
		return fmt.Errorf("state: checkpoint %s: %w", dir, err)
	}
	return nil
}

// Flush implements Backend by syncing the write-ahead log, which makes every
// write so far durable without forcing a memtable flush.
func (p *Pebble) Flush() error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.mu.db == nil {
		return p.closedError("Flush")
	}
	if err := p.broken(); err != nil {
		return err
	}
	if err := p.mu.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("state: flush: %w", err)
	}
	return nil
}

// Metrics implements Backend. Keys is an estimate from the properties of the
// store's sstables: entries minus deletions, so it counts versions not yet
// compacted away and misses writes still in memtables; it is -1 if the
// properties cannot be read or the store is closed.
func (p *Pebble) Metrics() Metrics {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.mu.db == nil || p.broken() != nil {
		return Metrics{Keys: -1}
	}
	m := p.mu.db.Metrics()
	out := Metrics{
		Keys:      -1,
		DiskBytes: int64(m.DiskSpaceUsage()),
		MemBytes:  int64(m.MemTable.Size) + m.BlockCache.Size,
	}
	if levels, err := p.mu.db.SSTables(pebble.WithProperties()); err == nil {
		var keys int64
		for _, level := range levels {
			for _, t := range level {
				if t.Properties != nil {
					keys += int64(t.Properties.NumEntries) - int64(t.Properties.NumDeletions)
				}
			}
		}
		out.Keys = max(keys, 0)
	}
	return out
}

// Close implements Backend. It waits for calls in flight, syncs the
// write-ahead log and closes the database. Iterators still open are closed
// and reported in the error; using them afterwards returns ErrClosed.
func (p *Pebble) Close() error {
	p.guard.stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	db := p.mu.db
	if db == nil {
		return p.closedError("Close")
	}
	p.mu.db = nil

	var errs []error
	p.iters.Lock()
	leaked := len(p.iters.open)
	for it := range p.iters.open {
		if err := it.closeLocked(); err != nil {
			errs = append(errs, err)
		}
		it.err = p.closedError("iterator use")
	}
	clear(p.iters.open)
	p.iters.Unlock()
	if leaked > 0 {
		errs = append(errs, fmt.Errorf("state: pebble store %s closed with %d open iterators", p.dir, leaked))
	}
	if err := db.LogData(nil, pebble.Sync); err != nil {
		errs = append(errs, fmt.Errorf("state: close: %w", err))
	}
	if err := db.Close(); err != nil {
		errs = append(errs, fmt.Errorf("state: close: %w", err))
	}
	return errors.Join(errs...)
}

// pebbleLogger drops Pebble's informational messages (one per store opened)
// and passes errors to the standard logger.
type pebbleLogger struct{}

func (pebbleLogger) Infof(format string, args ...any) {}

func (pebbleLogger) Errorf(format string, args ...any) {
	log.Printf("state: pebble: "+format, args...)
}

func (pebbleLogger) Fatalf(format string, args ...any) {
	log.Fatalf("state: pebble: "+format, args...)
}

// pebbleIter adapts a Pebble iterator to Iterator. Like Pebble's, it is not
// safe for concurrent use, and it must not be used concurrently with Close
// of its store.
type pebbleIter struct {
	p      *Pebble
	it     *pebble.Iterator // nil once closed, or for an empty range
	valid  bool
	closed bool  // Close was called
	err    error // set when the store closed the iterator
}

func (i *pebbleIter) First() bool {
	if i.it == nil {
		i.valid = false
		return false
	}
	i.valid = i.it.First()
	return i.valid
}

func (i *pebbleIter) Next() bool {
	if !i.valid {
		return false
	}
	i.valid = i.it.Next()
	return i.valid
}

func (i *pebbleIter) Valid() bool { return i.valid }

func (i *pebbleIter) Key() []byte {
	if !i.valid {
		return nil
	}
	return i.it.Key()
}

func (i *pebbleIter) Value() []byte {
	if !i.valid {
		return nil
	}
	v, err := i.it.ValueAndErr()
	if err != nil {
		// Pebble keeps the error for Error and invalidates the iterator.
		i.valid = false
		return nil
	}
	return v
}

func (i *pebbleIter) Error() error {
	if i.err != nil {
		return i.err
	}
	if i.it == nil {
		return nil
	}
	if err := i.it.Error(); err != nil {
		return fmt.Errorf("state: iterator: %w", err)
	}
	return nil
}

func (i *pebbleIter) Close() error {
	if i.closed {
		return fmt.Errorf("%w: iterator closed twice", ErrClosed)
	}
	i.closed = true
	if i.err != nil {
		return i.err // closed by the store
	}
	i.p.iters.Lock()
	delete(i.p.iters.open, i)
	err := i.closeLocked()
	i.p.iters.Unlock()
	return err
}

// closeLocked closes the Pebble iterator. p.iters must be held, which orders
// it before the store's Close.
func (i *pebbleIter) closeLocked() error {
	i.valid = false
	if i.it == nil {
		return nil
	}
	err := i.it.Close()
	i.it = nil
	if err != nil {
		return fmt.Errorf("state: iterator: %w", err)
	}
	return nil
}

// RestorePebble makes dir a store holding the checkpoint in checkpointDir, so
// that OpenPebble(dir) opens it while the checkpoint stays untouched. dir must
// not exist or be an empty directory.
//
// Immutable files (sstables and blob files) are hard-linked when both
// directories are on one filesystem, and copied otherwise. The write-ahead
// log, manifest and other files are always copied, because an open store
// rewrites them in place (Pebble recycles log files).
func RestorePebble(checkpointDir, dir string) error {
	entries, err := os.ReadDir(checkpointDir)
	if err != nil {
		return fmt.Errorf("state: restore: %w", err)
	}
	if !hasManifest(entries) {
		return fmt.Errorf("state: restore: %s is not a Pebble checkpoint (no MANIFEST)", checkpointDir)
	}
	created, err := makeEmptyDir(dir)
	if err != nil {
		return fmt.Errorf("state: restore: %w", err)
	}
	if err := restoreDir(checkpointDir, dir, entries); err != nil {
		if created {
			_ = os.RemoveAll(dir)
		}
		return fmt.Errorf("state: restore %s into %s: %w", checkpointDir, dir, err)
	}
	return nil
}

func hasManifest(entries []fs.DirEntry) bool {
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "MANIFEST-") {
			return true
		}
	}
	return false
}

// makeEmptyDir creates dir (and its parents), or accepts it if it exists and
// is empty. It reports whether it created dir.
func makeEmptyDir(dir string) (created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return false, err
	}
	err = os.Mkdir(dir, 0o755)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return false, err
	}
	entries, rerr := os.ReadDir(dir)
	if rerr != nil {
		return false, rerr
	}
	if len(entries) > 0 {
		return false, fmt.Errorf("%s is not empty: %w", dir, fs.ErrExist)
	}
	return false, nil
}

func restoreDir(src, dst string, entries []fs.DirEntry) error {
	for _, e := range entries {
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		switch {
		case e.IsDir():
			sub, err := os.ReadDir(from)
			if err != nil {
				return err
			}
			if err := os.Mkdir(to, 0o755); err != nil {
				return err
			}
			if err := restoreDir(from, to, sub); err != nil {
				return err
			}
		case !e.Type().IsRegular():
			return fmt.Errorf("unexpected file %s", from)
		case immutableFile(e.Name()):
			if os.Link(from, to) == nil {
				continue
			}
			if err := copyFile(from, to); err != nil {
				return err
			}
		default:
			if err := copyFile(from, to); err != nil {
				return err
			}
		}
	}
	return fsutil.SyncDir(dst)
}

// immutableFile reports whether Pebble never modifies the file after writing
// it, so that hard links to it are safe.
func immutableFile(name string) bool {
	return strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob")
}

func copyFile(from, to string) (err error) {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	if _, err := io.Copy(out, in); err != nil {
		return err
	}
	return out.Sync()
}
