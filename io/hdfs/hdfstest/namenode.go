package hdfstest

import (
	"fmt"
	"math"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/weir-dev/weir/io/hdfs/hdfstest/internal/hdfspb"
)

// handler runs one ClientProtocol method on its marshalled request.
type handler func(n *namenode, c *caller, req []byte) (proto.Message, error)

// method adapts a typed method of the namenode to a handler.
func method[R any, PR interface {
	*R
	proto.Message
}](fn func(*namenode, *caller, PR) (proto.Message, error)) handler {
	return func(n *namenode, c *caller, b []byte) (proto.Message, error) {
		req := PR(new(R))
		if err := proto.Unmarshal(b, req); err != nil {
			return nil, &remoteError{class: excRPCServer, code: pb.RpcResponseHeaderProto_ERROR_RPC_SERVER,
				msg: fmt.Sprintf("bad %s: %v", req.ProtoReflect().Descriptor().Name(), err)}
		}
		return fn(n, c, req)
	}
}

// methods are the ClientProtocol methods the namenode implements, by the
// name a client calls.
var methods = map[string]handler{
	"getServerDefaults":      method((*namenode).getServerDefaults),
	"getFileInfo":            method((*namenode).getFileInfo),
	"getListing":             method((*namenode).getListing),
	"getBlockLocations":      method((*namenode).getBlockLocations),
	"getContentSummary":      method((*namenode).getContentSummary),
	"getFsStats":             method((*namenode).getFsStats),
	"mkdirs":                 method((*namenode).mkdirs),
	"create":                 method((*namenode).create),
	"addBlock":               method((*namenode).addBlock),
	"abandonBlock":           method((*namenode).abandonBlock),
	"updateBlockForPipeline": method((*namenode).updateBlockForPipeline),
	"complete":               method((*namenode).complete),
	"renewLease":             method((*namenode).renewLease),
	"rename":                 method((*namenode).rename),
	"rename2":                method((*namenode).rename2),
	"delete":                 method((*namenode).delete),
	"setPermission":          method((*namenode).setPermission),
	"setOwner":               method((*namenode).setOwner),
	"setTimes":               method((*namenode).setTimes),
}

func nowMillis() int64 { return time.Now().UnixMilli() }

// The values getServerDefaults reports besides the block size.
const (
	writePacketSize = 64 << 10
	fileBufferSize  = 4096
)

func (n *namenode) getServerDefaults(_ *caller, _ *pb.GetServerDefaultsRequestProto) (proto.Message, error) {
	return &pb.GetServerDefaultsResponseProto{ServerDefaults: &pb.FsServerDefaultsProto{
		BlockSize:        proto.Uint64(uint64(n.cfg.blockSize)),
		BytesPerChecksum: proto.Uint32(chunkSize),
		WritePacketSize:  proto.Uint32(writePacketSize),
		Replication:      proto.Uint32(1),
		FileBufferSize:   proto.Uint32(fileBufferSize),
		ChecksumType:     pb.ChecksumTypeProto_CHECKSUM_CRC32C.Enum(),
	}}, nil
}

// statusLocked describes in; name is the path the status reports (empty
// for the path that was asked about, a child's name in listings).
func (n *namenode) statusLocked(in *inode, name string) *pb.HdfsFileStatusProto {
	st := &pb.HdfsFileStatusProto{
		FileType:         pb.HdfsFileStatusProto_IS_FILE.Enum(),
		Path:             []byte(name),
		Permission:       &pb.FsPermissionProto{Perm: proto.Uint32(in.perm)},
		Owner:            proto.String(in.owner),
		Group:            proto.String(in.group),
		ModificationTime: proto.Uint64(uint64(in.mtime)),
		AccessTime:       proto.Uint64(uint64(in.atime)),
		FileId:           proto.Uint64(in.id),
	}
	if in.dir {
		st.FileType = pb.HdfsFileStatusProto_IS_DIR.Enum()
		st.Length = proto.Uint64(0)
		st.ChildrenNum = proto.Int32(int32(len(in.children)))
	} else {
		st.Length = proto.Uint64(in.length())
		st.BlockReplication = proto.Uint32(in.replication)
		st.Blocksize = proto.Uint64(in.blockSize)
		st.ChildrenNum = proto.Int32(0)
	}
	return st
}

func (n *namenode) getFileInfo(_ *caller, req *pb.GetFileInfoRequestProto) (proto.Message, error) {
	comps, err := splitPath(req.GetSrc())
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	resp := &pb.GetFileInfoResponseProto{}
	if in := n.lookupLocked(comps); in != nil {
		resp.Fs = n.statusLocked(in, "")
	}
	return resp, nil // a missing file is an empty response, not an error
}

func (n *namenode) getListing(_ *caller, req *pb.GetListingRequestProto) (proto.Message, error) {
	comps, err := splitPath(req.GetSrc())
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	in := n.lookupLocked(comps)
	if in == nil {
		return &pb.GetListingResponseProto{}, nil // no such directory: no listing
	}
	list := &pb.DirectoryListingProto{RemainingEntries: proto.Uint32(0)}
	if !in.dir {
		list.PartialListing = []*pb.HdfsFileStatusProto{n.statusLocked(in, "")}
		return &pb.GetListingResponseProto{DirList: list}, nil
	}
	after := string(req.GetStartAfter())
	children := in.sortedChildren()
	i := 0
	for i < len(children) && children[i].name <= after {
		i++
	}
	for ; i < len(children) && len(list.PartialListing) < n.cfg.listingLimit; i++ {
		st := n.statusLocked(children[i], children[i].name)
		if req.GetNeedLocation() && !children[i].dir {
			st.Locations = n.locatedBlocksLocked(children[i], 0, math.MaxUint64)
		}
		list.PartialListing = append(list.PartialListing, st)
	}
	list.RemainingEntries = proto.Uint32(uint32(len(children) - i))
	return &pb.GetListingResponseProto{DirList: list}, nil
}

// locatedBlockLocked says where block b of a file is, at offset off in it.
func (n *namenode) locatedBlockLocked(b *block, off uint64) *pb.LocatedBlockProto {
	length := b.numBytes
	if !b.committed {
		length = uint64(n.store.length(b.id)) // what the datanode has so far
	}
	dn := n.dn
	return &pb.LocatedBlockProto{
		B: &pb.ExtendedBlockProto{
			PoolId:          proto.String(n.poolID),
			BlockId:         proto.Uint64(b.id),
			GenerationStamp: proto.Uint64(b.genStamp),
			NumBytes:        proto.Uint64(length),
		},
		Offset: proto.Uint64(off),
		Locs: []*pb.DatanodeInfoProto{{
			Id: &pb.DatanodeIDProto{
				IpAddr:       proto.String(dn.ip),
				HostName:     proto.String(dn.host),
				DatanodeUuid: proto.String(dn.uuid),
				XferPort:     proto.Uint32(uint32(dn.port)),
				InfoPort:     proto.Uint32(0),
				IpcPort:      proto.Uint32(0),
			},
			Capacity:   proto.Uint64(capacity),
			DfsUsed:    proto.Uint64(uint64(n.store.used())),
			Remaining:  proto.Uint64(remaining(n.store.used())),
			LastUpdate: proto.Uint64(uint64(nowMillis())),
		}},
		Corrupt:      proto.Bool(false),
		BlockToken:   emptyToken(),
		IsCached:     []bool{false},
		StorageTypes: []pb.StorageTypeProto{pb.StorageTypeProto_DISK},
		StorageIDs:   []string{"DS-" + dn.uuid},
	}
}

// emptyToken is the block token of an unsecured cluster.
func emptyToken() *pb.TokenProto {
	return &pb.TokenProto{Identifier: []byte{}, Password: []byte{}, Kind: proto.String(""), Service: proto.String("")}
}

// locatedBlocksLocked lists where the blocks of file in that overlap
// [off, off+length) are.
func (n *namenode) locatedBlocksLocked(in *inode, off, length uint64) *pb.LocatedBlocksProto {
	lbs := &pb.LocatedBlocksProto{
		FileLength:          proto.Uint64(in.length()),
		UnderConstruction:   proto.Bool(in.writer != ""),
		IsLastBlockComplete: proto.Bool(in.writer == ""),
	}
	end := off + length
	if end < off {
		end = math.MaxUint64
	}
	var pos uint64
	for i, b := range in.blocks {
		lb := n.locatedBlockLocked(b, pos)
		size := lb.GetB().GetNumBytes()
		if pos+size > off && pos < end {
			lbs.Blocks = append(lbs.Blocks, lb)
		}
		if i == len(in.blocks)-1 {
			lbs.LastBlock = lb
		}
		pos += size
	}
	return lbs
}

func (n *namenode) getBlockLocations(_ *caller, req *pb.GetBlockLocationsRequestProto) (proto.Message, error) {
	comps, err := splitPath(req.GetSrc())
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	in := n.lookupLocked(comps)
	if in == nil {
		return nil, remote(excFileNotFound, "File does not exist: %s", req.GetSrc())
	}
	if in.dir {
		return nil, remote(excFileNotFound, "Path is not a file: %s", req.GetSrc())
	}
	return &pb.GetBlockLocationsResponseProto{Locations: n.locatedBlocksLocked(in, req.GetOffset(), req.GetLength())}, nil
}

func (n *namenode) getContentSummary(_ *caller, req *pb.GetContentSummaryRequestProto) (proto.Message, error) {
	comps, err := splitPath(req.GetPath())
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	in := n.lookupLocked(comps)
	if in == nil {
		return nil, remote(excFileNotFound, "File does not exist: %s", req.GetPath())
	}
	var length, files, dirs, consumed uint64
	var walk func(*inode)
	walk = func(in *inode) {
		if in.dir {
			dirs++
			for _, c := range in.children {
				walk(c)
			}
			return
		}
		files++
		length += in.length()
		consumed += in.length() // one replica
	}
	walk(in)
	return &pb.GetContentSummaryResponseProto{Summary: &pb.ContentSummaryProto{
		Length:         &length,
		FileCount:      &files,
		DirectoryCount: &dirs,
		Quota:          proto.Uint64(math.MaxUint64), // -1: no quota
		SpaceConsumed:  &consumed,
		SpaceQuota:     proto.Uint64(math.MaxUint64),
	}}, nil
}

// capacity is the datanode's nominal capacity (1 TiB); it is reported, never
// enforced.
const capacity = 1 << 40

func remaining(used int64) uint64 { return capacity - min(uint64(used), capacity) }

func (n *namenode) getFsStats(_ *caller, _ *pb.GetFsStatusRequestProto) (proto.Message, error) {
	used := n.store.used()
	zero := proto.Uint64(0)
	return &pb.GetFsStatsResponseProto{
		Capacity:              proto.Uint64(capacity),
		Used:                  proto.Uint64(uint64(used)),
		Remaining:             proto.Uint64(remaining(used)),
		UnderReplicated:       zero,
		CorruptBlocks:         zero,
		MissingBlocks:         zero,
		MissingReplOneBlocks:  zero,
		BlocksInFuture:        zero,
		PendingDeletionBlocks: zero,
	}, nil
}

func (n *namenode) mkdirs(c *caller, req *pb.MkdirsRequestProto) (proto.Message, error) {
	comps, err := splitPath(req.GetSrc())
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if in := n.lookupLocked(comps); in != nil {
		if !in.dir {
			return nil, remote(excFileAlreadyExists, "Path is not a directory: %s", req.GetSrc())
		}
		return &pb.MkdirsResponseProto{Result: proto.Bool(true)}, nil
	}
	if !req.GetCreateParent() {
		if _, err := n.parentLocked(req.GetSrc(), comps); err != nil {
			return nil, err
		}
	}
	perm := req.GetMasked().GetPerm()
	if err := n.mkdirAllLocked(req.GetSrc(), comps, perm, perm|0o300, c.user, nowMillis()); err != nil {
		return nil, err
	}
	return &pb.MkdirsResponseProto{Result: proto.Bool(true)}, n.saveLocked()
}

// mkdirAllLocked makes the directory comps and any missing parents
// (with parentPerm).
func (n *namenode) mkdirAllLocked(p string, comps []string, perm, parentPerm uint32, owner string, now int64) error {
	in := n.mu.root
	for i, c := range comps {
		next := in.children[c]
		switch {
		case next == nil && i == len(comps)-1:
			n.newInodeLocked(in, c, true, perm, owner, now)
			return nil
		case next == nil:
			next = n.newInodeLocked(in, c, true, parentPerm, owner, now)
		case !next.dir:
			return remote(excParentNotDirectory, "/%s (is not a directory) in %s", strings.Join(comps[:i+1], "/"), p)
		}
		in = next
	}
	return nil
}

func (n *namenode) create(c *caller, req *pb.CreateRequestProto) (proto.Message, error) {
	src := req.GetSrc()
	comps, err := splitPath(src)
	if err != nil {
		return nil, err
	}
	if len(comps) == 0 {
		return nil, remote(excFileAlreadyExists, "/ already exists as a directory")
	}
	flag := req.GetCreateFlag()
	if flag&uint32(pb.CreateFlagProto_APPEND) != 0 {
		return nil, remote(excUnsupported, "create %s with APPEND: hdfstest does not support append", src)
	}
	if flag&uint32(pb.CreateFlagProto_CREATE|pb.CreateFlagProto_OVERWRITE) == 0 {
		return nil, remote(excIllegalArgument, "create %s: the create flag %#x has neither CREATE nor OVERWRITE", src, flag)
	}
	bs := req.GetBlockSize()
	if bs < chunkSize || bs%chunkSize != 0 {
		return nil, remote(excIO, "create %s: block size %d is not a positive multiple of %d", src, bs, chunkSize)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	now := nowMillis()
	parent, err := n.parentLocked(src, comps)
	if err != nil {
		if !req.GetCreateParent() || !isClass(err, excFileNotFound) {
			return nil, err
		}
		if err := n.mkdirAllLocked(src, comps[:len(comps)-1], 0o755, 0o755, c.user, now); err != nil {
			return nil, err
		}
		if parent, err = n.parentLocked(src, comps); err != nil {
			return nil, err
		}
	}
	name := comps[len(comps)-1]
	var deleted []uint64
	if old := parent.children[name]; old != nil {
		switch {
		case old.dir:
			return nil, remote(excFileAlreadyExists, "%s already exists as a directory", src)
		case old.writer != "":
			return nil, remote(excAlreadyBeingCreated, "Failed to CREATE_FILE %s for %s: it is already being created by %s", src, req.GetClientName(), old.writer)
		case flag&uint32(pb.CreateFlagProto_OVERWRITE) == 0:
			return nil, remote(excFileAlreadyExists, "%s for client %s already exists", src, req.GetClientName())
		}
		deleted = n.removeLocked(old, now)
	}
	in := n.newInodeLocked(parent, name, false, req.GetMasked().GetPerm(), c.user, now)
	in.replication = max(1, req.GetReplication())
	in.blockSize = bs
	in.writer = req.GetClientName()
	n.mu.open[in.id] = in
	n.store.remove(deleted)
	return &pb.CreateResponseProto{Fs: n.statusLocked(in, "")}, n.saveLocked()
}

// openFileLocked returns the file that client is writing, by id (if the
// client sent one, so that a rename while it writes does not matter) or by
// path.
func (n *namenode) openFileLocked(src string, fileID uint64, client string) (*inode, error) {
	in := n.mu.open[fileID]
	if in == nil {
		comps, err := splitPath(src)
		if err != nil {
			return nil, err
		}
		if in = n.lookupLocked(comps); in == nil {
			return nil, remote(excFileNotFound, "File does not exist: %s (inode %d)", src, fileID)
		}
	}
	if in.dir {
		return nil, remote(excFileNotFound, "Path is not a file: %s", src)
	}
	if in.writer == "" {
		return nil, remote(excLeaseExpired, "No lease on %s (inode %d): File is not open for writing", src, in.id)
	}
	if in.writer != client {
		return nil, remote(excLeaseExpired, "Client %s does not hold the lease on %s (inode %d); %s does", client, src, in.id, in.writer)
	}
	return in, nil
}

// commitLocked records the final length of the file's block that b names,
// which must be its last block.
func (n *namenode) commitLocked(in *inode, b *pb.ExtendedBlockProto) error {
	if b == nil {
		return nil
	}
	if len(in.blocks) == 0 || in.blocks[len(in.blocks)-1].id != b.GetBlockId() {
		return remote(excIO, "blk_%d is not the last block of %s", b.GetBlockId(), in.path())
	}
	last := in.blocks[len(in.blocks)-1]
	if b.GetNumBytes() > in.blockSize {
		return remote(excIO, "blk_%d of %s: %d bytes, more than the block size %d", last.id, in.path(), b.GetNumBytes(), in.blockSize)
	}
	last.numBytes, last.committed = b.GetNumBytes(), true
	return nil
}

func (n *namenode) addBlock(c *caller, req *pb.AddBlockRequestProto) (proto.Message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	in, err := n.openFileLocked(req.GetSrc(), req.GetFileId(), req.GetClientName())
	if err != nil {
		return nil, err
	}
	if err := n.commitLocked(in, req.GetPrevious()); err != nil {
		return nil, err
	}
	if k := len(in.blocks); k > 0 && !in.blocks[k-1].committed {
		return nil, remote(excIO, "addBlock on %s: the previous block, blk_%d, was not committed", req.GetSrc(), in.blocks[k-1].id)
	}
	b := &block{id: n.mu.nextBlock, genStamp: n.mu.genStamp}
	n.mu.nextBlock++
	n.mu.genStamp++
	in.blocks = append(in.blocks, b)
	n.mu.blocks[b.id] = in
	return &pb.AddBlockResponseProto{Block: n.locatedBlockLocked(b, in.length())}, n.saveLocked()
}

func (n *namenode) abandonBlock(c *caller, req *pb.AbandonBlockRequestProto) (proto.Message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	in, err := n.openFileLocked(req.GetSrc(), req.GetFileId(), req.GetHolder())
	if err != nil {
		return nil, err
	}
	k := len(in.blocks)
	if k == 0 || in.blocks[k-1].id != req.GetB().GetBlockId() || in.blocks[k-1].committed {
		return nil, remote(excIO, "abandonBlock: blk_%d is not the block being written to %s", req.GetB().GetBlockId(), req.GetSrc())
	}
	in.blocks = in.blocks[:k-1]
	delete(n.mu.blocks, req.GetB().GetBlockId())
	n.store.remove([]uint64{req.GetB().GetBlockId()})
	return &pb.AbandonBlockResponseProto{}, n.saveLocked()
}

// updateBlockForPipeline is what a writer calls (colinmarc/hdfs after each
// block) before it would rebuild a pipeline; there is no pipeline to
// rebuild, so it only checks the block and describes it.
func (n *namenode) updateBlockForPipeline(c *caller, req *pb.UpdateBlockForPipelineRequestProto) (proto.Message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	id := req.GetBlock().GetBlockId()
	in := n.mu.blocks[id]
	if in == nil {
		return nil, remote(excIO, "updateBlockForPipeline: unknown block blk_%d", id)
	}
	if in.writer != req.GetClientName() {
		return nil, remote(excLeaseExpired, "updateBlockForPipeline: %s does not hold the lease on %s", req.GetClientName(), in.path())
	}
	var off uint64
	for _, b := range in.blocks {
		if b.id == id {
			return &pb.UpdateBlockForPipelineResponseProto{Block: n.locatedBlockLocked(b, off)}, nil
		}
		off += b.numBytes
	}
	return nil, remote(excIO, "updateBlockForPipeline: blk_%d is not a block of %s", id, in.path())
}

// complete closes a file once the datanode holds every block, finalized at
// the length the writer reported; until then it answers false and the
// writer asks again.
func (n *namenode) complete(c *caller, req *pb.CompleteRequestProto) (proto.Message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if in := n.mu.open[req.GetFileId()]; in == nil && req.GetFileId() != 0 {
		// A retried complete of a file already closed succeeds.
		if comps, err := splitPath(req.GetSrc()); err == nil {
			if in := n.lookupLocked(comps); in != nil && in.id == req.GetFileId() && in.writer == "" {
				return &pb.CompleteResponseProto{Result: proto.Bool(true)}, nil
			}
		}
	}
	in, err := n.openFileLocked(req.GetSrc(), req.GetFileId(), req.GetClientName())
	if err != nil {
		return nil, err
	}
	if err := n.commitLocked(in, req.GetLast()); err != nil {
		return nil, err
	}
	// A writer that filled a block exactly may have asked for the next one
	// and written nothing to it; that block is dropped, not waited for.
	if k := len(in.blocks); k > 0 && in.blocks[k-1].committed && in.blocks[k-1].numBytes == 0 {
		if _, ok := n.store.finalizedLength(in.blocks[k-1].id, in.blocks[k-1].genStamp); !ok {
			delete(n.mu.blocks, in.blocks[k-1].id)
			n.store.remove([]uint64{in.blocks[k-1].id})
			in.blocks = in.blocks[:k-1]
		}
	}
	for _, b := range in.blocks {
		if !b.committed {
			return nil, remote(excIO, "complete %s: blk_%d was never committed", req.GetSrc(), b.id)
		}
		got, ok := n.store.finalizedLength(b.id, b.genStamp)
		if !ok {
			return &pb.CompleteResponseProto{Result: proto.Bool(false)}, nil
		}
		if uint64(got) != b.numBytes {
			return nil, remote(excIO, "complete %s: blk_%d has %d bytes on the datanode, the writer reported %d", req.GetSrc(), b.id, got, b.numBytes)
		}
	}
	in.writer = ""
	delete(n.mu.open, in.id)
	in.mtime = nowMillis()
	return &pb.CompleteResponseProto{Result: proto.Bool(true)}, n.saveLocked()
}

func (n *namenode) renewLease(_ *caller, _ *pb.RenewLeaseRequestProto) (proto.Message, error) {
	return &pb.RenewLeaseResponseProto{}, nil // leases never expire
}

func (n *namenode) rename2(_ *caller, req *pb.Rename2RequestProto) (proto.Message, error) {
	src, dst := req.GetSrc(), req.GetDst()
	sc, err := splitPath(src)
	if err != nil {
		return nil, err
	}
	dc, err := splitPath(dst)
	if err != nil {
		return nil, err
	}
	if len(sc) == 0 {
		return nil, remote(excIO, "rename source cannot be the root")
	}
	if len(dc) == 0 {
		return nil, remote(excIO, "rename destination cannot be the root")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	in := n.lookupLocked(sc)
	if in == nil {
		return nil, remote(excFileNotFound, "rename source %s is not found.", src)
	}
	if strings.Join(sc, "/") == strings.Join(dc, "/") {
		return nil, remote(excFileAlreadyExists, "The source %s and destination %s are the same", src, dst)
	}
	if len(dc) > len(sc) && strings.Join(dc[:len(sc)], "/") == strings.Join(sc, "/") {
		return nil, remote(excIO, "Rename destination %s is a directory or file under source %s", dst, src)
	}
	parent, err := n.parentLocked(dst, dc)
	if err != nil {
		if isClass(err, excFileNotFound) {
			return nil, remote(excFileNotFound, "rename destination parent %s not found.", dst)
		}
		return nil, err
	}
	now := nowMillis()
	name := dc[len(dc)-1]
	var deleted []uint64
	if old := parent.children[name]; old != nil {
		switch {
		case !req.GetOverwriteDest():
			return nil, remote(excFileAlreadyExists, "rename destination %s already exists", dst)
		case old.dir && !in.dir:
			return nil, remote(excIO, "Source %s and destination %s must both be files", src, dst)
		case !old.dir && in.dir:
			return nil, remote(excIO, "Source %s and destination %s must both be directories", src, dst)
		case old.dir && len(old.children) > 0:
			return nil, remote(excIO, "rename destination directory is not empty: %s", dst)
		}
		deleted = n.removeLocked(old, now)
	}
	n.moveLocked(in, parent, name, now)
	n.store.remove(deleted)
	return &pb.Rename2ResponseProto{}, n.saveLocked()
}

// moveLocked moves in to the given name in the directory parent.
func (n *namenode) moveLocked(in, parent *inode, name string, now int64) {
	delete(in.parent.children, in.name)
	in.parent.mtime = now
	in.name, in.parent = name, parent
	parent.children[name] = in
	parent.mtime = now
}

// rename is the old rename (Hadoop's FileSystem.rename, which hadoop fs
// -put uses): it moves src into dst if dst is a directory, never replaces
// anything, and answers false rather than an exception for most failures.
func (n *namenode) rename(_ *caller, req *pb.RenameRequestProto) (proto.Message, error) {
	src, dst := req.GetSrc(), req.GetDst()
	sc, err := splitPath(src)
	if err != nil {
		return nil, err
	}
	dc, err := splitPath(dst)
	if err != nil {
		return nil, err
	}
	no := &pb.RenameResponseProto{Result: proto.Bool(false)}
	n.mu.Lock()
	defer n.mu.Unlock()
	in := n.lookupLocked(sc)
	if in == nil || len(sc) == 0 {
		return no, nil
	}
	if d := n.lookupLocked(dc); d != nil && d.dir {
		dc = append(dc, in.name) // into the directory
	}
	if strings.Join(sc, "/") == strings.Join(dc, "/") {
		return &pb.RenameResponseProto{Result: proto.Bool(true)}, nil
	}
	if len(dc) > len(sc) && strings.Join(dc[:len(sc)], "/") == strings.Join(sc, "/") {
		return nil, remote(excIO, "Rename destination %s is a directory or file under source %s", dst, src)
	}
	parent, err := n.parentLocked(dst, dc)
	if err != nil || parent.children[dc[len(dc)-1]] != nil {
		return no, nil
	}
	n.moveLocked(in, parent, dc[len(dc)-1], nowMillis())
	return &pb.RenameResponseProto{Result: proto.Bool(true)}, n.saveLocked()
}

func (n *namenode) delete(_ *caller, req *pb.DeleteRequestProto) (proto.Message, error) {
	comps, err := splitPath(req.GetSrc())
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	in := n.lookupLocked(comps)
	if in == nil || in.parent == nil { // nothing there, or the root, which stays
		return &pb.DeleteResponseProto{Result: proto.Bool(false)}, nil
	}
	if in.dir && len(in.children) > 0 && !req.GetRecursive() {
		return nil, remote(excPathIsNotEmptyDirectory, "`%s is non empty': Directory is not empty", req.GetSrc())
	}
	n.store.remove(n.removeLocked(in, nowMillis()))
	return &pb.DeleteResponseProto{Result: proto.Bool(true)}, n.saveLocked()
}

// lookupOrNotFoundLocked returns the inode at src or a
// FileNotFoundException.
func (n *namenode) lookupOrNotFoundLocked(src string) (*inode, error) {
	comps, err := splitPath(src)
	if err != nil {
		return nil, err
	}
	in := n.lookupLocked(comps)
	if in == nil {
		return nil, remote(excFileNotFound, "File does not exist: %s", src)
	}
	return in, nil
}

func (n *namenode) setPermission(_ *caller, req *pb.SetPermissionRequestProto) (proto.Message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	in, err := n.lookupOrNotFoundLocked(req.GetSrc())
	if err != nil {
		return nil, err
	}
	in.perm = req.GetPermission().GetPerm() & 0o7777
	return &pb.SetPermissionResponseProto{}, n.saveLocked()
}

func (n *namenode) setOwner(_ *caller, req *pb.SetOwnerRequestProto) (proto.Message, error) {
	if req.GetUsername() == "" && req.GetGroupname() == "" {
		return nil, remote(excIO, "setOwner %s: user and group names are both empty", req.GetSrc())
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	in, err := n.lookupOrNotFoundLocked(req.GetSrc())
	if err != nil {
		return nil, err
	}
	if u := req.GetUsername(); u != "" {
		in.owner = u
	}
	if g := req.GetGroupname(); g != "" {
		in.group = g
	}
	return &pb.SetOwnerResponseProto{}, n.saveLocked()
}

func (n *namenode) setTimes(_ *caller, req *pb.SetTimesRequestProto) (proto.Message, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	in, err := n.lookupOrNotFoundLocked(req.GetSrc())
	if err != nil {
		return nil, err
	}
	// As in Hadoop, -1 (all ones) leaves a time as it is.
	if t := req.GetMtime(); t != math.MaxUint64 {
		in.mtime = int64(t)
	}
	if t := req.GetAtime(); t != math.MaxUint64 && !in.dir {
		in.atime = int64(t)
	}
	return &pb.SetTimesResponseProto{}, n.saveLocked()
}

// blockLimit returns the size of the file that block id is being written
// to, for the datanode to enforce.
func (n *namenode) blockLimit(id uint64) (int64, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	in := n.mu.blocks[id]
	if in == nil || in.writer == "" {
		return 0, false
	}
	return int64(in.blockSize), true
}
