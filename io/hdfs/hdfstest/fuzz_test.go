package hdfstest_test

import (
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/weir-dev/weir/io/hdfs/hdfstest"
	pb "github.com/weir-dev/weir/io/hdfs/hdfstest/internal/hdfspb"
)

// exchange sends b on a new connection to addr, closes the sending side and
// reads until the server closes the connection; a server that hangs fails
// the test, one that panics takes the test binary down.
func exchange(t *testing.T, addr string, b []byte) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write(b)
	conn.(*net.TCPConn).CloseWrite()
	if _, err := io.Copy(io.Discard, conn); err != nil {
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("the server did not close the connection after %q", b)
		}
	}
}

func frame(msgs ...proto.Message) []byte {
	var body []byte
	for _, m := range msgs {
		b, _ := proto.Marshal(m)
		body = binary.AppendUvarint(body, uint64(len(b)))
		body = append(body, b...)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// FuzzNamenode sends arbitrary bytes after the IPC connection header and a
// valid connection context.
func FuzzNamenode(f *testing.F) {
	s, err := hdfstest.Start(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	hdr := frame(&pb.RpcRequestHeaderProto{CallId: proto.Int32(-3), ClientId: []byte("fuzz")},
		&pb.IpcConnectionContextProto{UserInfo: &pb.UserInformationProto{EffectiveUser: proto.String("fuzz")}})
	call := func(method string, req proto.Message) []byte {
		return frame(&pb.RpcRequestHeaderProto{CallId: proto.Int32(1), ClientId: []byte("fuzz"), RpcKind: pb.RpcKindProto_RPC_PROTOCOL_BUFFER.Enum()},
			&pb.RequestHeaderProto{MethodName: &method, DeclaringClassProtocolName: proto.String(clientProtocol), ClientProtocolVersion: proto.Uint64(1)}, req)
	}
	f.Add(call("getFileInfo", &pb.GetFileInfoRequestProto{Src: proto.String("/")}))
	f.Add(call("getListing", &pb.GetListingRequestProto{Src: proto.String("/"), StartAfter: []byte{}, NeedLocation: proto.Bool(true)}))
	f.Add(call("mkdirs", &pb.MkdirsRequestProto{Src: proto.String("/a/b"), Masked: &pb.FsPermissionProto{Perm: proto.Uint32(0o755)}, CreateParent: proto.Bool(true)}))
	f.Add(call("delete", &pb.DeleteRequestProto{Src: proto.String("/a"), Recursive: proto.Bool(true)}))
	f.Add([]byte{0, 0, 0, 3, 1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		exchange(t, s.Addr(), append(append(append([]byte{}, hrpc...), hdr...), b...))
	})
}

// FuzzDatanode sends arbitrary bytes after the data-transfer version.
func FuzzDatanode(f *testing.F) {
	s, err := hdfstest.Start(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	block := &pb.ExtendedBlockProto{PoolId: proto.String("BP"), BlockId: proto.Uint64(1 << 30), GenerationStamp: proto.Uint64(1001)}
	header := &pb.ClientOperationHeaderProto{BaseHeader: &pb.BaseHeaderProto{Block: block}, ClientName: proto.String("fuzz")}
	op := func(code byte, m proto.Message) []byte {
		b, _ := proto.Marshal(m)
		return append(binary.AppendUvarint([]byte{code}, uint64(len(b))), b...)
	}
	f.Add(op(0x51, &pb.OpReadBlockProto{Header: header, Offset: proto.Uint64(0), Len: proto.Uint64(10)}))
	f.Add(op(0x50, &pb.OpWriteBlockProto{Header: header, Stage: pb.OpWriteBlockProto_PIPELINE_SETUP_CREATE.Enum(),
		PipelineSize: proto.Uint32(0), MinBytesRcvd: proto.Uint64(0), MaxBytesRcvd: proto.Uint64(0), LatestGenerationStamp: proto.Uint64(0),
		RequestedChecksum: &pb.ChecksumProto{Type: pb.ChecksumTypeProto_CHECKSUM_CRC32C.Enum(), BytesPerChecksum: proto.Uint32(512)}}))
	f.Add(op(0x55, &pb.OpBlockChecksumProto{Header: header.BaseHeader}))
	f.Add([]byte{0x42})
	f.Fuzz(func(t *testing.T, b []byte) {
		exchange(t, s.DatanodeAddr(), append([]byte{0, 28}, b...))
	})
}
