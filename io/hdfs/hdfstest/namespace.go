package hdfstest

import (
	"maps"
	"slices"
	"strings"
	"sync"
)

// Hadoop's first inode id (the root's), first block id and first generation
// stamp; starting at the same numbers makes ids look familiar in logs.
const (
	rootInodeID   = 16385
	firstBlockID  = 1 << 30
	firstGenStamp = 1001
)

// namenode holds the namespace: the tree of directories and files, each
// file's blocks, and which files are open for writing (their leases).
type namenode struct {
	cfg    config
	store  *blockStore
	poolID string
	dn     dnInfo // how clients reach the datanode
	image  string // where the namespace is saved after every change

	mu struct {
		sync.Mutex
		root      *inode
		open      map[uint64]*inode // files open for writing, by inode id
		blocks    map[uint64]*inode // the file each block belongs to
		nextInode uint64
		nextBlock uint64
		genStamp  uint64
	}
}

// dnInfo is how clients reach the datanode.
type dnInfo struct {
	ip, host, uuid string
	port           int
}

// inode is a directory or a file. Its fields are guarded by namenode.mu.
type inode struct {
	id       uint64
	name     string
	parent   *inode
	dir      bool
	children map[string]*inode // directories only
	perm     uint32
	owner    string
	group    string
	mtime    int64 // milliseconds since the epoch
	atime    int64

	// Files only.
	replication uint32
	blockSize   uint64
	blocks      []*block
	writer      string // the client holding the file's lease while it is open for writing
}

// block is the namenode's view of one of a file's blocks.
type block struct {
	id, genStamp uint64
	numBytes     uint64 // the length the writer reported, once committed
	committed    bool   // the writer reported its final length (addBlock's previous, complete's last)
}

// length returns a file's length: the sum of its committed blocks.
func (in *inode) length() uint64 {
	var n uint64
	for _, b := range in.blocks {
		n += b.numBytes
	}
	return n
}

// path returns the absolute path of in.
func (in *inode) path() string {
	if in.parent == nil {
		return "/"
	}
	var parts []string
	for n := in; n.parent != nil; n = n.parent {
		parts = append(parts, n.name)
	}
	slices.Reverse(parts)
	return "/" + strings.Join(parts, "/")
}

// sortedChildren returns a directory's children in name order, the order of
// listings.
func (in *inode) sortedChildren() []*inode {
	names := slices.Sorted(maps.Keys(in.children))
	out := make([]*inode, len(names))
	for i, n := range names {
		out[i] = in.children[n]
	}
	return out
}

// splitPath checks that p is an absolute path and returns its components
// ("/" has none).
func splitPath(p string) ([]string, error) {
	if !strings.HasPrefix(p, "/") {
		return nil, remote(excInvalidPath, "Invalid path name %s: hdfstest takes absolute paths only", p)
	}
	var out []string
	for _, c := range strings.Split(p, "/") {
		switch {
		case c == "":
			continue
		case c == "." || c == ".." || strings.Contains(c, ":"):
			return nil, remote(excInvalidPath, "Invalid path name %s", p)
		}
		out = append(out, c)
	}
	return out, nil
}

// lookupLocked returns the inode at comps, or nil if there is none (also
// when a component on the way is a file).
func (n *namenode) lookupLocked(comps []string) *inode {
	in := n.mu.root
	for _, c := range comps {
		if !in.dir {
			return nil
		}
		if in = in.children[c]; in == nil {
			return nil
		}
	}
	return in
}

// parentLocked returns the directory that holds (or is to hold) the last of
// comps: FileNotFoundException if it does not exist,
// ParentNotDirectoryException if it or a directory above it is a file.
func (n *namenode) parentLocked(p string, comps []string) (*inode, error) {
	in := n.mu.root
	for i, c := range comps[:len(comps)-1] {
		next := in.children[c]
		if next == nil {
			return nil, remote(excFileNotFound, "Parent directory doesn't exist: /%s", strings.Join(comps[:i+1], "/"))
		}
		if !next.dir {
			return nil, remote(excParentNotDirectory, "/%s (is not a directory) in %s", strings.Join(comps[:i+1], "/"), p)
		}
		in = next
	}
	return in, nil
}

// newInodeLocked makes a child of parent.
func (n *namenode) newInodeLocked(parent *inode, name string, dir bool, perm uint32, owner string, now int64) *inode {
	in := &inode{
		id: n.mu.nextInode, name: name, parent: parent, dir: dir,
		perm: perm & 0o7777, owner: owner, group: supergroup, mtime: now, atime: now,
	}
	n.mu.nextInode++
	if dir {
		in.children = make(map[string]*inode)
		in.atime = 0 // Hadoop keeps no access time for directories
	}
	parent.children[name] = in
	parent.mtime = now
	return in
}

// removeLocked unlinks in from its parent and forgets its open files and
// blocks; it returns the ids of the blocks to delete from the datanode.
func (n *namenode) removeLocked(in *inode, now int64) []uint64 {
	delete(in.parent.children, in.name)
	in.parent.mtime = now
	var ids []uint64
	var walk func(*inode)
	walk = func(in *inode) {
		for _, c := range in.children {
			walk(c)
		}
		delete(n.mu.open, in.id)
		for _, b := range in.blocks {
			delete(n.mu.blocks, b.id)
			ids = append(ids, b.id)
		}
	}
	walk(in)
	return ids
}

// supergroup is the group of every inode (Hadoop's
// dfs.permissions.superusergroup).
const supergroup = "supergroup"
