package hdfstest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// imageName is the file under the server's directory that holds the
// namespace, rewritten (to a temporary name, then renamed) after every
// change.
const imageName = "namespace.json"

// image is the saved namespace.
type image struct {
	Version   int        `json:"version"`
	PoolID    string     `json:"poolId"`
	NextInode uint64     `json:"nextInode"`
	NextBlock uint64     `json:"nextBlock"`
	GenStamp  uint64     `json:"genStamp"`
	Root      imageInode `json:"root"`
}

type imageInode struct {
	ID          uint64       `json:"id"`
	Name        string       `json:"name,omitempty"`
	Dir         bool         `json:"dir,omitempty"`
	Perm        uint32       `json:"perm"`
	Owner       string       `json:"owner"`
	Group       string       `json:"group"`
	MTime       int64        `json:"mtime"`
	ATime       int64        `json:"atime,omitempty"`
	Replication uint32       `json:"replication,omitempty"`
	BlockSize   uint64       `json:"blockSize,omitempty"`
	Blocks      []imageBlock `json:"blocks,omitempty"`
	Writer      string       `json:"writer,omitempty"`
	Children    []imageInode `json:"children,omitempty"`
}

type imageBlock struct {
	ID        uint64 `json:"id"`
	GenStamp  uint64 `json:"genStamp"`
	NumBytes  uint64 `json:"numBytes"`
	Committed bool   `json:"committed,omitempty"`
}

// saveLocked writes the namespace to the image file.
func (n *namenode) saveLocked() error {
	var conv func(*inode) imageInode
	conv = func(in *inode) imageInode {
		out := imageInode{
			ID: in.id, Name: in.name, Dir: in.dir, Perm: in.perm, Owner: in.owner, Group: in.group,
			MTime: in.mtime, ATime: in.atime, Replication: in.replication, BlockSize: in.blockSize, Writer: in.writer,
		}
		for _, b := range in.blocks {
			out.Blocks = append(out.Blocks, imageBlock{ID: b.id, GenStamp: b.genStamp, NumBytes: b.numBytes, Committed: b.committed})
		}
		for _, c := range in.sortedChildren() {
			out.Children = append(out.Children, conv(c))
		}
		return out
	}
	b, err := json.Marshal(image{
		Version: 1, PoolID: n.poolID, NextInode: n.mu.nextInode, NextBlock: n.mu.nextBlock, GenStamp: n.mu.genStamp,
		Root: conv(n.mu.root),
	})
	if err != nil {
		return fmt.Errorf("hdfstest: saving the namespace: %w", err)
	}
	tmp := n.image + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("hdfstest: saving the namespace: %w", err)
	}
	if err := os.Rename(tmp, n.image); err != nil {
		return fmt.Errorf("hdfstest: saving the namespace: %w", err)
	}
	return nil
}

// loadLocked reads the image file if there is one. Files that were open
// for writing are closed with the blocks the datanode finalized, as a
// namenode recovers a lease whose holder went away.
func (n *namenode) loadLocked() (bool, error) {
	b, err := os.ReadFile(n.image)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("hdfstest: loading the namespace: %w", err)
	}
	var img image
	if err := json.Unmarshal(b, &img); err != nil {
		return false, fmt.Errorf("hdfstest: loading the namespace from %s: %w", n.image, err)
	}
	if img.Version != 1 || !img.Root.Dir {
		return false, fmt.Errorf("hdfstest: loading the namespace from %s: not a version 1 namespace", n.image)
	}
	n.poolID = img.PoolID
	n.mu.nextInode, n.mu.nextBlock, n.mu.genStamp = img.NextInode, img.NextBlock, img.GenStamp
	var conv func(imageInode, *inode) *inode
	conv = func(im imageInode, parent *inode) *inode {
		in := &inode{
			id: im.ID, name: im.Name, parent: parent, dir: im.Dir, perm: im.Perm, owner: im.Owner, group: im.Group,
			mtime: im.MTime, atime: im.ATime, replication: im.Replication, blockSize: im.BlockSize,
		}
		if in.dir {
			in.children = make(map[string]*inode, len(im.Children))
			for _, c := range im.Children {
				in.children[c.Name] = conv(c, in)
			}
			return in
		}
		lost := false // an open file keeps its blocks up to the first one not finalized
		for _, ib := range im.Blocks {
			b := &block{id: ib.ID, genStamp: ib.GenStamp, numBytes: ib.NumBytes, committed: ib.Committed}
			if im.Writer != "" {
				got, ok := n.store.finalizedLength(b.id, b.genStamp)
				if lost = lost || !ok; lost {
					n.store.remove([]uint64{b.id})
					continue
				}
				b.numBytes, b.committed = uint64(got), true
			}
			in.blocks = append(in.blocks, b)
			n.mu.blocks[b.id] = in
		}
		return in
	}
	n.mu.root = conv(img.Root, nil)
	return true, nil
}
