package state

import "fmt"

// Write is one change of a batch: Key now holds Value, or, with Delete set,
// Key is deleted (Value is then ignored).
type Write struct {
	Key, Value []byte
	Delete     bool
}

// Batcher is implemented by backends that apply many writes in one call,
// more cheaply than one Set or Delete each (Pebble: one batch, one commit).
// A batch need not be atomic: a crash may leave part of it applied, as with
// the same writes made one by one. Keys and values are not retained.
type Batcher interface {
	ApplyBatch(ws []Write) error
}

// ApplyBatch applies ws to b in order: in one batch if b is a Batcher, else
// one Set or Delete at a time.
func ApplyBatch(b Backend, ws []Write) error {
	if bb, ok := b.(Batcher); ok {
		return bb.ApplyBatch(ws)
	}
	for _, w := range ws {
		var err error
		if w.Delete {
			err = b.Delete(w.Key)
		} else {
			err = b.Set(w.Key, w.Value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// ApplyBatch implements Batcher: the writes go into one Pebble batch,
// committed once.
func (p *Pebble) ApplyBatch(ws []Write) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	db := p.mu.db
	if db == nil {
		return p.closedError("ApplyBatch")
	}
	if err := p.broken(); err != nil {
		return err
	}
	if len(ws) == 0 {
		return nil
	}
	batch := db.NewBatch()
	defer batch.Close()
	for _, w := range ws {
		if len(w.Key) == 0 {
			if w.Delete {
				continue // no empty key is ever stored
			}
			return ErrEmptyKey
		}
		var err error
		if w.Delete {
			err = batch.Delete(w.Key, nil)
		} else {
			err = batch.Set(w.Key, w.Value, nil)
		}
		if err != nil {
			return fmt.Errorf("state: batch: %w", err)
		}
	}
	if err := batch.Commit(p.wo); err != nil {
		return fmt.Errorf("state: batch: %w", err)
	}
	return nil
}

// ApplyBatch implements Batcher: the writes are made under one lock.
func (m *Mem) ApplyBatch(ws []Write) error {
	for _, w := range ws {
		if len(w.Key) == 0 && !w.Delete {
			return ErrEmptyKey
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return memClosedError("ApplyBatch")
	}
	for _, w := range ws {
		if w.Delete {
			m.deleteLocked(w.Key)
			continue
		}
		it := newMemItem(w.Key, w.Value)
		old, replaced := m.mu.tree.set(it)
		if replaced {
			m.mu.bytes -= int64(len(old.kv))
		}
		m.mu.bytes += int64(len(it.kv))
		m.mu.dirty = true
	}
	return nil
}

// ApplyBatch implements Batcher: the batch goes to the backend, then each
// change to the changelog, as Set and Delete do.
func (lb *logged) ApplyBatch(ws []Write) error {
	if err := ApplyBatch(lb.Backend, ws); err != nil {
		return err
	}
	for _, w := range ws {
		v := w.Value
		if w.Delete {
			v = nil
		} else if v == nil {
			v = []byte{} // an empty value, not a deletion
		}
		if err := lb.l.Changed(w.Key, v); err != nil {
			return err
		}
	}
	return nil
}
