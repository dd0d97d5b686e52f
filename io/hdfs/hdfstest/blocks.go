package hdfstest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// chunkSize is the number of data bytes each stored checksum covers
// (Hadoop's dfs.bytes-per-checksum); every block is stored with CRC32C
// checksums of this many bytes, whatever a writer sent.
const chunkSize = 512

// metaHeaderLen is the length of a meta file's header, as in Hadoop's
// BlockMetadataHeader: a version (uint16, 1), the checksum type (a byte,
// 2 for CRC32C) and the bytes per checksum (uint32).
const metaHeaderLen = 7

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// blockStore keeps the datanode's replicas. A replica is a data file and a
// meta file of checksums: under rbw/ while it is being written, under
// finalized/ (blk_ID and blk_ID_GENSTAMP.meta, Hadoop's names) once its
// writer sent the last packet. Replicas still being written when the server
// stopped are dropped when it starts again.
type blockStore struct {
	dir string

	mu struct {
		sync.Mutex
		replicas map[uint64]*replica // by block id
	}
}

// replica is the datanode's view of a block. Its fields are guarded by
// blockStore.mu.
type replica struct {
	id, genStamp uint64
	length       int64 // bytes received (and acknowledged) so far, or the final length
	finalized    bool
}

func openBlockStore(dir string) (*blockStore, error) {
	s := &blockStore{dir: dir}
	s.mu.replicas = make(map[uint64]*replica)
	if err := os.RemoveAll(filepath.Join(dir, "rbw")); err != nil {
		return nil, err
	}
	for _, sub := range []string{"rbw", "finalized"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, "finalized"))
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".meta")
		if !ok {
			continue
		}
		idStr, gsStr, ok := strings.Cut(strings.TrimPrefix(name, "blk_"), "_")
		id, err1 := strconv.ParseUint(idStr, 10, 64)
		gs, err2 := strconv.ParseUint(gsStr, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			continue
		}
		r := &replica{id: id, genStamp: gs, finalized: true}
		fi, err := os.Stat(s.dataPath(r))
		if err != nil {
			continue // a meta file without its data: not a replica
		}
		r.length = fi.Size()
		s.mu.replicas[id] = r
	}
	return s, nil
}

func (s *blockStore) subdir(r *replica) string {
	if r.finalized {
		return filepath.Join(s.dir, "finalized")
	}
	return filepath.Join(s.dir, "rbw")
}

func (s *blockStore) dataPath(r *replica) string {
	return filepath.Join(s.subdir(r), fmt.Sprintf("blk_%d", r.id))
}

func (s *blockStore) metaPath(r *replica) string {
	return filepath.Join(s.subdir(r), fmt.Sprintf("blk_%d_%d.meta", r.id, r.genStamp))
}

// finalizedLength returns the length of block id if its replica is
// finalized with generation stamp gs.
func (s *blockStore) finalizedLength(id, gs uint64) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mu.replicas[id]
	if r == nil || !r.finalized || r.genStamp != gs {
		return 0, false
	}
	return r.length, true
}

// length returns the bytes block id holds so far, finalized or not.
func (s *blockStore) length(id uint64) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.mu.replicas[id]; r != nil {
		return r.length
	}
	return 0
}

// dataFile returns the path of block id's finalized data file.
func (s *blockStore) dataFile(id uint64) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.mu.replicas[id]
	if r == nil || !r.finalized {
		return "", false
	}
	return s.dataPath(r), true
}

// used returns the bytes held by all replicas.
func (s *blockStore) used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, r := range s.mu.replicas {
		n += r.length
	}
	return n
}

// remove deletes the replicas of the given blocks, finalized or not. A
// reader that has a replica open keeps reading it.
func (s *blockStore) remove(ids []uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		r := s.mu.replicas[id]
		if r == nil {
			continue
		}
		delete(s.mu.replicas, id)
		os.Remove(s.dataPath(r))
		os.Remove(s.metaPath(r))
	}
}

// create starts a new replica of block id for writing.
func (s *blockStore) create(id, gs uint64) (*replicaWriter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.mu.replicas[id]; r != nil {
		state := "being written"
		if r.finalized {
			state = "finalized"
		}
		return nil, fmt.Errorf("replica of blk_%d_%d already exists (%s)", id, r.genStamp, state)
	}
	r := &replica{id: id, genStamp: gs}
	data, err := os.OpenFile(s.dataPath(r), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	meta, err := os.OpenFile(s.metaPath(r), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		data.Close()
		os.Remove(s.dataPath(r))
		return nil, err
	}
	var hdr [metaHeaderLen]byte
	binary.BigEndian.PutUint16(hdr[0:], 1)
	hdr[2] = 2 // CRC32C
	binary.BigEndian.PutUint32(hdr[3:], chunkSize)
	if _, err := meta.Write(hdr[:]); err != nil {
		data.Close()
		meta.Close()
		os.Remove(s.dataPath(r))
		os.Remove(s.metaPath(r))
		return nil, err
	}
	s.mu.replicas[id] = r
	return &replicaWriter{store: s, r: r, data: data, meta: meta}, nil
}

// replicaWriter appends to a replica being written and keeps its meta file
// up to date: one CRC32C per chunk of the block, the last one over the
// partial chunk written so far.
type replicaWriter struct {
	store      *blockStore
	r          *replica
	data, meta *os.File
	n          int64  // bytes written; r.length follows it under the store's lock
	tail       []byte // the bytes of the last, incomplete chunk
	sums       []byte // scratch for checksums
}

// write appends p to the replica.
func (w *replicaWriter) write(p []byte) error {
	if _, err := w.data.Write(p); err != nil {
		return err
	}
	first := w.n / chunkSize // the chunk p starts in
	w.sums = w.sums[:0]
	rest := p
	if len(w.tail) > 0 {
		k := min(chunkSize-len(w.tail), len(rest))
		w.tail = append(w.tail, rest[:k]...)
		rest = rest[k:]
		if len(w.tail) == chunkSize {
			w.sums = binary.BigEndian.AppendUint32(w.sums, crc32.Checksum(w.tail, castagnoli))
			w.tail = w.tail[:0]
		}
	}
	for len(rest) >= chunkSize {
		w.sums = binary.BigEndian.AppendUint32(w.sums, crc32.Checksum(rest[:chunkSize], castagnoli))
		rest = rest[chunkSize:]
	}
	if len(rest) > 0 {
		w.tail = append(w.tail, rest...)
	}
	if len(w.tail) > 0 {
		w.sums = binary.BigEndian.AppendUint32(w.sums, crc32.Checksum(w.tail, castagnoli))
	}
	if _, err := w.meta.WriteAt(w.sums, metaHeaderLen+4*first); err != nil {
		return err
	}
	w.n += int64(len(p))
	w.store.mu.Lock()
	w.r.length = w.n
	w.store.mu.Unlock()
	return nil
}

// finalize closes the replica's files and moves them to finalized/.
func (w *replicaWriter) finalize() error {
	err := errors.Join(w.data.Close(), w.meta.Close())
	s := w.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.replicas[w.r.id] != w.r {
		return fmt.Errorf("blk_%d was deleted while it was written", w.r.id)
	}
	if err != nil {
		return err
	}
	data, meta := s.dataPath(w.r), s.metaPath(w.r)
	w.r.finalized = true
	if err := errors.Join(os.Rename(data, s.dataPath(w.r)), os.Rename(meta, s.metaPath(w.r))); err != nil {
		w.r.finalized = false
		return err
	}
	return nil
}

// abort closes the replica's files and deletes it.
func (w *replicaWriter) abort() {
	w.data.Close()
	w.meta.Close()
	s := w.store
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.replicas[w.r.id] == w.r {
		delete(s.mu.replicas, w.r.id)
		os.Remove(s.dataPath(w.r))
		os.Remove(s.metaPath(w.r))
	}
}

// open opens block id, generation stamp gs, for reading: finalized, or the
// bytes received so far if it is still being written.
func (s *blockStore) open(id, gs uint64) (*replicaReader, error) {
	s.mu.Lock()
	r := s.mu.replicas[id]
	if r == nil || r.genStamp != gs {
		s.mu.Unlock()
		return nil, fmt.Errorf("replica not found for blk_%d_%d", id, gs)
	}
	dataPath, metaPath, length := s.dataPath(r), s.metaPath(r), r.length
	s.mu.Unlock()
	data, err := os.Open(dataPath)
	if err != nil {
		return nil, err
	}
	meta, err := os.Open(metaPath)
	if err != nil {
		data.Close()
		return nil, err
	}
	var hdr [metaHeaderLen]byte
	if _, err := io.ReadFull(meta, hdr[:]); err != nil || hdr[2] != 2 || binary.BigEndian.Uint32(hdr[3:]) != chunkSize {
		data.Close()
		meta.Close()
		return nil, fmt.Errorf("blk_%d: bad meta file %s", id, metaPath)
	}
	return &replicaReader{data: data, meta: meta, length: length}, nil
}

// replicaReader reads a replica's data and stored checksums.
type replicaReader struct {
	data, meta *os.File
	length     int64
}

// read reads the n bytes at off, which is chunk-aligned, and their stored
// checksums (one per chunk) into the given buffers.
func (r *replicaReader) read(off int64, n int, data, sums []byte) ([]byte, []byte, error) {
	data = resize(data, n)
	if _, err := r.data.ReadAt(data, off); err != nil {
		return nil, nil, err
	}
	chunks := (n + chunkSize - 1) / chunkSize
	sums = resize(sums, 4*chunks)
	if _, err := r.meta.ReadAt(sums, metaHeaderLen+4*(off/chunkSize)); err != nil {
		return nil, nil, fmt.Errorf("reading checksums: %w", err)
	}
	return data, sums, nil
}

// checksums returns all the replica's stored checksums.
func (r *replicaReader) checksums() ([]byte, error) {
	chunks := (r.length + chunkSize - 1) / chunkSize
	sums := make([]byte, 4*chunks)
	if _, err := r.meta.ReadAt(sums, metaHeaderLen); err != nil {
		return nil, err
	}
	return sums, nil
}

func (r *replicaReader) close() {
	r.data.Close()
	r.meta.Close()
}
