package state

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// Loader applies many changes to a backend at once, as a restore from a
// changelog does. Into Pebble it does not write through the memtable:
// it gathers changes in chunks of loadChunkBytes, sorts each chunk (the
// last change of a key wins), writes it as sstables and ingests them. A
// chunk is cut into one table per key tag and operator. State that fits in
// one chunk lands in the bottom level of the LSM with no compaction; the
// tables of later chunks overlap the earlier ones when the changes come in
// no key order (a changelog read of all partitions at once, which is the
// faster read), and Pebble compacts them in the background once the job
// runs. Into other backends it applies each change.
//
// A chunk is sorted, written and ingested by a goroutine of the Loader's
// while Apply fills the next one.
//
// Nothing else may write to the backend until Close, which applies what
// is left.
type Loader struct {
	b     Backend
	p     *Pebble
	chunk []loadEntry
	bytes int
	err   error

	// The ingesting goroutine owns these until it is done.
	tmp     string // where tables are written before ingestion
	flushed bool   // a chunk was ingested: later deletions must be kept
	tables  int
	ingest  chan []loadEntry
	done    chan error
}

type loadEntry struct {
	key, value []byte
	del        bool
	seq        int // order of arrival: of two changes of a key, the later wins
}

// loadChunkBytes is the size of the changes a Loader sorts at once.
var loadChunkBytes = 256 << 20

// NewLoader returns a Loader into b, which must be empty (in the key
// ranges loaded).
func NewLoader(b Backend) *Loader {
	l := &Loader{b: b}
	l.p, _ = b.(*Pebble)
	return l
}

// NewLoaderOnto returns a Loader into b, which may already hold keys in
// the ranges loaded: deletions are applied, not dropped.
func NewLoaderOnto(b Backend) *Loader {
	l := NewLoader(b)
	l.flushed = true
	return l
}

// Apply records that key holds value, or that it is deleted (value nil).
// The Loader may keep key and value until Close: the caller must not
// change them (a changelog read hands over each fetched record's own).
func (l *Loader) Apply(key, value []byte) error {
	if l.err != nil {
		return l.err
	}
	if len(key) == 0 {
		return ErrEmptyKey
	}
	if l.p == nil {
		if value == nil {
			return l.b.Delete(key)
		}
		return l.b.Set(key, value)
	}
	l.chunk = append(l.chunk, loadEntry{key: key, value: value, del: value == nil, seq: len(l.chunk)})
	l.bytes += len(key) + len(value) + 48
	if l.bytes >= loadChunkBytes {
		l.err = l.handOver()
	}
	return l.err
}

// handOver passes the chunk to the ingesting goroutine, starting it if
// needed, after the previous chunk is ingested.
func (l *Loader) handOver() error {
	if l.ingest == nil {
		l.ingest, l.done = make(chan []loadEntry), make(chan error, 1)
		go func() {
			var err error
			for c := range l.ingest {
				if err == nil {
					err = l.flush(c)
				}
			}
			l.done <- err
		}()
	}
	l.ingest <- l.chunk
	l.chunk, l.bytes = nil, 0
	return nil
}

// wait ends the ingesting goroutine and returns its error.
func (l *Loader) wait() error {
	if l.ingest == nil {
		return nil
	}
	close(l.ingest)
	l.ingest = nil
	return <-l.done
}

// flush sorts a chunk, writes it as tables and ingests them.
func (l *Loader) flush(chunk []loadEntry) error {
	if len(chunk) == 0 {
		return nil
	}
	slices.SortFunc(chunk, func(a, b loadEntry) int {
		if c := bytes.Compare(a.key, b.key); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	// The last change of each key wins.
	out := chunk[:0]
	for i, e := range chunk {
		if i+1 < len(chunk) && bytes.Equal(e.key, chunk[i+1].key) {
			continue
		}
		if e.del && !l.flushed {
			continue // nothing older to delete
		}
		out = append(out, e)
	}
	if l.tmp == "" {
		// Beside the store, on its filesystem, so that ingestion links
		// the tables instead of copying them.
		d, err := os.MkdirTemp(filepath.Dir(filepath.Clean(l.p.dir)), ".weir-load-")
		if err != nil {
			return fmt.Errorf("state: loading: %w", err)
		}
		l.tmp = d
	}
	l.p.mu.RLock()
	defer l.p.mu.RUnlock()
	db := l.p.mu.db
	if db == nil {
		return l.p.closedError("Load")
	}
	// Tables for the bottom level may mark point deletions obsolete: once
	// the store may hold keys the chunk deletes, write them as for level 0.
	level := 6
	if l.flushed {
		level = 0
	}
	wo := l.p.opts.MakeWriterOptions(level, db.TableFormat())
	var paths []string
	for start := 0; start < len(out); {
		end := start + 1
		for end < len(out) && bytes.Equal(tableGroup(out[end].key), tableGroup(out[start].key)) {
			end++
		}
		path := filepath.Join(l.tmp, fmt.Sprintf("%06d.sst", l.tables))
		l.tables++
		if err := writeTable(path, wo, out[start:end]); err != nil {
			return err
		}
		paths = append(paths, path)
		start = end
	}
	if err := db.Ingest(context.Background(), paths); err != nil {
		return fmt.Errorf("state: loading: ingesting %d tables: %w", len(paths), err)
	}
	for _, p := range paths {
		os.Remove(p)
	}
	l.flushed = true
	return nil
}

// tableGroup is the part of a key a Loader cuts its tables at: the tag and
// the operator.
func tableGroup(key []byte) []byte { return key[:min(len(key), 5)] }

func writeTable(path string, wo sstable.WriterOptions, entries []loadEntry) error {
	f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("state: loading: %w", err)
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), wo)
	for _, e := range entries {
		if e.del {
			err = w.Delete(e.key)
		} else {
			err = w.Set(e.key, e.value)
		}
		if err != nil {
			w.Close()
			return fmt.Errorf("state: loading: writing %s: %w", path, err)
		}
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("state: loading: writing %s: %w", path, err)
	}
	return nil
}

// Close applies the changes still gathered and removes the loader's files.
func (l *Loader) Close() error {
	if l.err == nil && l.p != nil && len(l.chunk) > 0 {
		l.err = l.handOver()
	}
	if err := l.wait(); l.err == nil {
		l.err = err
	}
	if l.tmp != "" {
		os.RemoveAll(l.tmp)
	}
	l.chunk = nil
	return l.err
}
