package hdfstest

import (
	"bufio"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"time"

	"google.golang.org/protobuf/proto"

	pb "github.com/weir-dev/weir/io/hdfs/hdfstest/internal/hdfspb"
)

// The data-transfer protocol: a request is the protocol version (int16),
// an op code (a byte) and a varint-delimited op message; the datanode
// answers with a varint-delimited BlockOpResponseProto, then (for reads)
// packets of data or (for writes) reads packets and answers each with a
// PipelineAckProto.
const (
	dataTransferVersion = 28
	opWriteBlock        = 0x50
	opReadBlock         = 0x51
	opBlockChecksum     = 0x55

	// packetDataSize is the data a read packet carries (Hadoop's
	// io.file.buffer.size-bound default of 64 KiB: 128 chunks).
	packetDataSize = 64 << 10
	// maxPacketSize bounds the packets a writer may send (Hadoop's
	// dfs.client-write-packet-size is 64 KiB; the datanode accepts 16 MiB).
	maxPacketSize = 16 << 20
	// heartbeatSeqno is the sequence number of a writer's keep-alive packet.
	heartbeatSeqno = -1
	// keepAlive is how long the datanode waits for a client's next op on a
	// connection it reuses (Hadoop's dfs.datanode.socket.reuse.keepalive).
	keepAlive = 4 * time.Second
	// drainTimeout is how long the datanode waits for a client to close its
	// end after the last ack or packet, so that closing first does not
	// reset the connection under data the client has yet to read.
	drainTimeout = 5 * time.Second
)

// datanode serves the data-transfer protocol over the server's block store.
type datanode struct {
	store     *blockStore
	blockSize func(blockID uint64) (int64, bool) // the size limit of a block the namenode allocated
}

// serve serves one connection: an op, and after a read another op if the
// client reuses the connection (as Hadoop's client does), until it closes
// or stays idle for keepAlive.
func (d *datanode) serve(conn net.Conn) error {
	r := bufio.NewReader(conn)
	for first := true; ; first = false {
		if !first {
			conn.SetReadDeadline(time.Now().Add(keepAlive))
		}
		var hdr [3]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return nil // a connection that sends no op is no error
		}
		conn.SetReadDeadline(time.Time{})
		if v := binary.BigEndian.Uint16(hdr[:2]); v != dataTransferVersion {
			return opError(conn, pb.Status_ERROR, "version mismatch: data transfer protocol version %d, want %d", v, dataTransferVersion)
		}
		switch hdr[2] {
		case opReadBlock:
			if done, err := d.readBlock(conn, r); done || err != nil {
				return err
			}
		case opWriteBlock:
			return d.writeBlock(conn, r)
		case opBlockChecksum:
			if err := d.blockChecksum(conn, r); err != nil {
				return err
			}
		default:
			return opError(conn, pb.Status_ERROR_UNSUPPORTED, "unsupported data transfer op 0x%x (hdfstest supports READ_BLOCK, WRITE_BLOCK and BLOCK_CHECKSUM)", hdr[2])
		}
	}
}

// opError answers an op with a failure status and returns it as an error.
func opError(w io.Writer, status pb.Status, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return errors.Join(errors.New(msg), writeDelimited(w, &pb.BlockOpResponseProto{Status: status.Enum(), Message: &msg}))
}

// readBlock serves READ_BLOCK. It returns done when the client closed the
// connection instead of reporting its read status.
func (d *datanode) readBlock(conn net.Conn, r *bufio.Reader) (done bool, err error) {
	op := &pb.OpReadBlockProto{}
	if err := readDelimited(r, op); err != nil {
		return true, opError(conn, pb.Status_ERROR, "bad READ_BLOCK request: %v", err)
	}
	b := op.GetHeader().GetBaseHeader().GetBlock()
	rr, err := d.store.open(b.GetBlockId(), b.GetGenerationStamp())
	if err != nil {
		return true, opError(conn, pb.Status_ERROR, "READ_BLOCK: %v", err)
	}
	defer rr.close()
	off, n := op.GetOffset(), op.GetLen()
	if off > uint64(rr.length) || n > uint64(rr.length)-off {
		return true, opError(conn, pb.Status_ERROR, "READ_BLOCK: offset %d and length %d do not fit blk_%d of %d bytes", off, n, b.GetBlockId(), rr.length)
	}
	start := int64(off) - int64(off)%chunkSize
	end := min(rr.length, (int64(off+n)+chunkSize-1)/chunkSize*chunkSize)
	sendSums := op.GetSendChecksums()
	checksum := &pb.ChecksumProto{Type: pb.ChecksumTypeProto_CHECKSUM_CRC32C.Enum(), BytesPerChecksum: proto.Uint32(chunkSize)}
	if !sendSums {
		checksum.Type = pb.ChecksumTypeProto_CHECKSUM_NULL.Enum()
	}
	resp := &pb.BlockOpResponseProto{
		Status:             pb.Status_SUCCESS.Enum(),
		ReadOpChecksumInfo: &pb.ReadOpChecksumInfoProto{Checksum: checksum, ChunkOffset: proto.Uint64(uint64(start))},
	}
	w := bufio.NewWriterSize(conn, packetDataSize+packetDataSize/chunkSize*4+64)
	if err := writeDelimited(w, resp); err != nil {
		return true, err
	}
	var data, sums []byte
	seqno := int64(0)
	for pos := start; pos < end; seqno++ {
		k := int(min(packetDataSize, end-pos))
		if data, sums, err = rr.read(pos, k, data, sums); err != nil {
			return true, fmt.Errorf("READ_BLOCK blk_%d at %d: %w", b.GetBlockId(), pos, err)
		}
		if !sendSums {
			sums = sums[:0]
		}
		if err := writePacket(w, pos, seqno, false, sums, data); err != nil {
			return true, err
		}
		pos += int64(k)
	}
	// An empty packet marks the end of the block.
	if err := writePacket(w, end, seqno, true, nil, nil); err != nil {
		return true, err
	}
	if err := w.Flush(); err != nil {
		return true, err
	}
	// Hadoop's client answers with a ClientReadStatusProto (CHECKSUM_OK) and
	// may send another op; others just close the connection.
	conn.SetReadDeadline(time.Now().Add(keepAlive))
	if err := readDelimited(r, &pb.ClientReadStatusProto{}); err != nil {
		return true, nil
	}
	return false, nil
}

func (d *datanode) writeBlock(conn net.Conn, r *bufio.Reader) error {
	op := &pb.OpWriteBlockProto{}
	if err := readDelimited(r, op); err != nil {
		return opError(conn, pb.Status_ERROR, "bad WRITE_BLOCK request: %v", err)
	}
	b := op.GetHeader().GetBaseHeader().GetBlock()
	if op.GetStage() != pb.OpWriteBlockProto_PIPELINE_SETUP_CREATE {
		return opError(conn, pb.Status_ERROR_UNSUPPORTED, "WRITE_BLOCK blk_%d: stage %v is not supported (hdfstest writes new blocks only: no append, no pipeline recovery)", b.GetBlockId(), op.GetStage())
	}
	if len(op.GetTargets()) > 0 {
		return opError(conn, pb.Status_ERROR_UNSUPPORTED, "WRITE_BLOCK blk_%d: a pipeline of %d datanodes (hdfstest has one)", b.GetBlockId(), len(op.GetTargets())+1)
	}
	limit, ok := d.blockSize(b.GetBlockId())
	if !ok {
		return opError(conn, pb.Status_ERROR_INVALID, "WRITE_BLOCK: blk_%d was not allocated by the namenode", b.GetBlockId())
	}
	cs := op.GetRequestedChecksum()
	var table *crc32.Table
	sumSize := 4
	switch cs.GetType() {
	case pb.ChecksumTypeProto_CHECKSUM_CRC32C:
		table = castagnoli
	case pb.ChecksumTypeProto_CHECKSUM_CRC32:
		table = crc32.IEEETable
	case pb.ChecksumTypeProto_CHECKSUM_NULL:
		sumSize = 0
	}
	bpc := int(cs.GetBytesPerChecksum())
	if bpc <= 0 || bpc > maxPacketSize {
		return opError(conn, pb.Status_ERROR_INVALID, "WRITE_BLOCK blk_%d: bytes per checksum %d", b.GetBlockId(), bpc)
	}
	rw, err := d.store.create(b.GetBlockId(), b.GetGenerationStamp())
	if err != nil {
		return opError(conn, pb.Status_ERROR_EXISTS, "WRITE_BLOCK: %v", err)
	}
	finished := false
	defer func() {
		if !finished {
			rw.abort()
		}
	}()
	if err := writeDelimited(conn, &pb.BlockOpResponseProto{Status: pb.Status_SUCCESS.Enum(), FirstBadLink: proto.String("")}); err != nil {
		return err
	}
	w := bufio.NewWriter(conn)
	ack := func(seqno int64, status pb.Status) error {
		if err := writeDelimited(w, &pb.PipelineAckProto{Seqno: &seqno, Reply: []pb.Status{status}}); err != nil {
			return err
		}
		return w.Flush()
	}
	var buf []byte
	for {
		h, body, err := readPacket(r, buf)
		if err != nil {
			return fmt.Errorf("WRITE_BLOCK blk_%d: %w", b.GetBlockId(), err)
		}
		buf = body
		if h.GetSeqno() == heartbeatSeqno {
			if err := ack(heartbeatSeqno, pb.Status_SUCCESS); err != nil {
				return err
			}
			continue
		}
		dataLen := int(h.GetDataLen())
		chunks := (dataLen + bpc - 1) / bpc
		if dataLen < 0 || dataLen > len(body) || len(body)-dataLen != chunks*sumSize {
			return errors.Join(fmt.Errorf("WRITE_BLOCK blk_%d: packet %d: %d bytes of data and %d of checksums for %d-byte chunks",
				b.GetBlockId(), h.GetSeqno(), dataLen, len(body)-dataLen, bpc), ack(h.GetSeqno(), pb.Status_ERROR_INVALID))
		}
		if h.GetOffsetInBlock() != rw.n {
			return errors.Join(fmt.Errorf("WRITE_BLOCK blk_%d: packet %d at offset %d, want %d", b.GetBlockId(), h.GetSeqno(), h.GetOffsetInBlock(), rw.n),
				ack(h.GetSeqno(), pb.Status_ERROR_INVALID))
		}
		if rw.n+int64(dataLen) > limit {
			return errors.Join(fmt.Errorf("WRITE_BLOCK blk_%d: more than the block size of %d bytes", b.GetBlockId(), limit),
				ack(h.GetSeqno(), pb.Status_ERROR_INVALID))
		}
		sums, data := body[:len(body)-dataLen], body[len(body)-dataLen:]
		if table != nil {
			for i := 0; i < chunks; i++ {
				chunk := data[i*bpc : min((i+1)*bpc, dataLen)]
				if crc32.Checksum(chunk, table) != binary.BigEndian.Uint32(sums[4*i:]) {
					return errors.Join(fmt.Errorf("WRITE_BLOCK blk_%d: packet %d: checksum mismatch in the chunk at offset %d",
						b.GetBlockId(), h.GetSeqno(), rw.n+int64(i*bpc)), ack(h.GetSeqno(), pb.Status_ERROR_CHECKSUM))
				}
			}
		}
		if err := rw.write(data); err != nil {
			return errors.Join(fmt.Errorf("WRITE_BLOCK blk_%d: %w", b.GetBlockId(), err), ack(h.GetSeqno(), pb.Status_ERROR))
		}
		if h.GetLastPacketInBlock() {
			if err := rw.finalize(); err != nil {
				return errors.Join(fmt.Errorf("WRITE_BLOCK blk_%d: %w", b.GetBlockId(), err), ack(h.GetSeqno(), pb.Status_ERROR))
			}
			finished = true
			if err := ack(h.GetSeqno(), pb.Status_SUCCESS); err != nil {
				return err
			}
			drain(conn, r)
			return nil
		}
		if err := ack(h.GetSeqno(), pb.Status_SUCCESS); err != nil {
			return err
		}
	}
}

// blockChecksum answers BLOCK_CHECKSUM with the MD5 of the block's stored
// CRC32C checksums, from which a client computes a file's MD5-of-MD5s.
func (d *datanode) blockChecksum(conn net.Conn, r *bufio.Reader) error {
	op := &pb.OpBlockChecksumProto{}
	if err := readDelimited(r, op); err != nil {
		return opError(conn, pb.Status_ERROR, "bad BLOCK_CHECKSUM request: %v", err)
	}
	b := op.GetHeader().GetBlock()
	rr, err := d.store.open(b.GetBlockId(), b.GetGenerationStamp())
	if err != nil {
		return opError(conn, pb.Status_ERROR, "BLOCK_CHECKSUM: %v", err)
	}
	defer rr.close()
	sums, err := rr.checksums()
	if err != nil {
		return opError(conn, pb.Status_ERROR, "BLOCK_CHECKSUM blk_%d: %v", b.GetBlockId(), err)
	}
	sum := md5.Sum(sums)
	return writeDelimited(conn, &pb.BlockOpResponseProto{
		Status: pb.Status_SUCCESS.Enum(),
		ChecksumResponse: &pb.OpBlockChecksumResponseProto{
			BytesPerCrc:   proto.Uint32(chunkSize),
			CrcPerBlock:   proto.Uint64(uint64(len(sums) / 4)),
			BlockChecksum: sum[:],
			CrcType:       pb.ChecksumTypeProto_CHECKSUM_CRC32C.Enum(),
		},
	})
}

// A packet is its length (uint32: 4, plus the checksums and data), the
// length of its header (uint16), a PacketHeaderProto, the checksums (one per
// chunk) and the data.
func writePacket(w io.Writer, offset, seqno int64, last bool, sums, data []byte) error {
	h, err := proto.Marshal(&pb.PacketHeaderProto{
		OffsetInBlock:     &offset,
		Seqno:             &seqno,
		LastPacketInBlock: &last,
		DataLen:           proto.Int32(int32(len(data))),
	})
	if err != nil {
		return err
	}
	var pre [6]byte
	binary.BigEndian.PutUint32(pre[:4], uint32(4+len(sums)+len(data)))
	binary.BigEndian.PutUint16(pre[4:], uint16(len(h)))
	for _, b := range [][]byte{pre[:], h, sums, data} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// readPacket reads a packet; body (checksums then data) reuses buf.
func readPacket(r io.Reader, buf []byte) (*pb.PacketHeaderProto, []byte, error) {
	var pre [6]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, nil, fmt.Errorf("reading a packet: %w", err)
	}
	plen := binary.BigEndian.Uint32(pre[:4])
	if plen < 4 || plen > maxPacketSize {
		return nil, nil, fmt.Errorf("packet length %d", plen)
	}
	hb := make([]byte, binary.BigEndian.Uint16(pre[4:]))
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, nil, fmt.Errorf("reading a packet header: %w", err)
	}
	h := &pb.PacketHeaderProto{}
	if err := proto.Unmarshal(hb, h); err != nil {
		return nil, nil, fmt.Errorf("bad packet header: %w", err)
	}
	body := resize(buf, int(plen-4))
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, nil, fmt.Errorf("reading packet %d: %w", h.GetSeqno(), err)
	}
	return h, body, nil
}

// drain reads whatever the client still sends until it closes its end, or
// for drainTimeout.
func drain(conn net.Conn, r io.Reader) {
	conn.SetReadDeadline(time.Now().Add(drainTimeout))
	io.Copy(io.Discard, r)
}

// resize returns b with length n, reusing its array if it is large enough.
func resize(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	return make([]byte, n)
}
