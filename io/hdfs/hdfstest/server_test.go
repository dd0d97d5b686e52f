package hdfstest_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"google.golang.org/protobuf/proto"

	"github.com/weir-dev/weir/io/hdfs/hdfstest"
	pb "github.com/weir-dev/weir/io/hdfs/hdfstest/internal/hdfspb"
)

func start(t *testing.T, dir string, opts ...hdfstest.Option) *hdfstest.Server {
	t.Helper()
	s, err := hdfstest.Start(dir, append([]hdfstest.Option{hdfstest.Logger(testLogger(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func connect(t *testing.T, s *hdfstest.Server) *hdfs.Client {
	t.Helper()
	c, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{s.Addr()}, User: "weir"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestStartOptions(t *testing.T) {
	_, err := hdfstest.Start(t.TempDir(), hdfstest.BlockSize(1000), hdfstest.ListingLimit(0))
	if err == nil || !strings.Contains(err.Error(), "block size 1000") || !strings.Contains(err.Error(), "listing limit 0") {
		t.Errorf("Start with a bad block size and listing limit = %v; want both reported", err)
	}
	if _, err := hdfstest.Start(""); err == nil || !strings.HasPrefix(err.Error(), "hdfstest: ") {
		t.Errorf("Start without a directory = %v", err)
	}
}

// A method the server does not implement fails at once, naming the method.
func TestUnknownMethod(t *testing.T) {
	s := start(t, t.TempDir())
	c := connect(t, s)
	f, err := c.Create("/f")
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("x"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := c.Append("/f"); done <- err }()
	select {
	case err := <-done:
		var remote hdfs.Error
		if !errors.As(err, &remote) || remote.Method() != "append" ||
			remote.Exception() != "org.apache.hadoop.ipc.RpcNoSuchMethodException" || !strings.Contains(remote.Message(), "unknown method append") {
			t.Errorf("Append = %v; want an RpcNoSuchMethodException naming append", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Append hangs")
	}
	// The connection still serves calls.
	if _, err := c.Stat("/f"); err != nil {
		t.Errorf("Stat after the failed call: %v", err)
	}
}

// A file of exactly one block has one block: the empty block the client
// asks for after filling the first is dropped when it completes.
func TestExactBlock(t *testing.T) {
	s := start(t, t.TempDir(), hdfstest.BlockSize(64<<10))
	c := connect(t, s)
	for _, n := range []int{64 << 10, 2 * 64 << 10} {
		name := fmt.Sprintf("/exact-%d", n)
		data := pattern(uint64(n), n)
		f, err := c.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		files, err := s.BlockFiles(name)
		if err != nil || len(files) != n/(64<<10) {
			t.Errorf("%s: block files %v, %v", name, files, err)
		}
		checkContent(t, c, name, data)
	}
}

// A restarted server has the files it had; a file left open is closed with
// the blocks its writer finished.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := hdfstest.Start(dir, hdfstest.BlockSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	c, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{s.Addr()}, User: "weir"})
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(1, 200_000)
	if err := c.MkdirAll("/d/e", 0o755); err != nil {
		t.Fatal(err)
	}
	writeFileBlocks(t, c, "/d/e/f", data, 64<<10)
	// Left open: one full block (finished when the second starts) and part
	// of another.
	open, err := c.Create("/d/open")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := open.Write(data[:100_000]); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = start(t, dir)
	c = connect(t, s)
	checkContent(t, c, "/d/e/f", data)
	if files, err := s.BlockFiles("/d/e/f"); err != nil || len(files) != 4 {
		t.Errorf("/d/e/f after the restart: block files %v, %v; want 4", files, err)
	}
	checkContent(t, c, "/d/open", data[:64<<10])
	f, err := c.Create("/d/new") // ids do not collide with the old ones
	if err != nil {
		t.Fatal(err)
	}
	f.Write(data[:10])
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	checkContent(t, c, "/d/new", data[:10])
	checkContent(t, c, "/d/e/f", data)
}

// Clients write and read files side by side.
func TestConcurrentClients(t *testing.T) {
	s := start(t, t.TempDir(), hdfstest.BlockSize(64<<10))
	var wg sync.WaitGroup
	for i := range 4 {
		c := connect(t, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 3 {
				name := fmt.Sprintf("/c%d-%d", i, j)
				data := pattern(uint64(10*i+j), 150_000+i*1000)
				f, err := c.Create(name)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := f.Write(data); err != nil {
					t.Error(err)
					return
				}
				if err := f.Close(); err != nil {
					t.Error(err)
					return
				}
				if got, err := c.ReadFile(name); err != nil || !bytes.Equal(got, data) {
					t.Errorf("%s: read back %d bytes, %v", name, len(got), err)
				}
			}
		}()
	}
	wg.Wait()
}

// Close returns while clients still hold connections.
func TestCloseWithClients(t *testing.T) {
	s, err := hdfstest.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := hdfs.NewClient(hdfs.ClientOptions{Addresses: []string{s.Addr()}, User: "weir"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.Create("/open")
	if err != nil {
		t.Fatal(err)
	}
	f.Write(make([]byte, 1000))
	f.Flush() // a write connection to the datanode is open
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Close hangs")
	}
	if conn, err := net.Dial("tcp", s.Addr()); err == nil {
		conn.Close()
		t.Error("the namenode still accepts connections after Close")
	}
}

// rpcConn is a bare Hadoop IPC connection, for calls the real client does
// not make.
type rpcConn struct {
	t      *testing.T
	conn   net.Conn
	r      *bufio.Reader
	callID int32
}

func dialRPC(t *testing.T, addr string, header []byte) *rpcConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := conn.Write(header); err != nil {
		t.Fatal(err)
	}
	c := &rpcConn{t: t, conn: conn, r: bufio.NewReader(conn)}
	return c
}

var hrpc = []byte{'h', 'r', 'p', 'c', 9, 0, 0}

func (c *rpcConn) send(msgs ...proto.Message) {
	c.t.Helper()
	var body []byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			c.t.Fatal(err)
		}
		body = binary.AppendUvarint(body, uint64(len(b)))
		body = append(body, b...)
	}
	if _, err := c.conn.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rpcConn) context() {
	c.send(&pb.RpcRequestHeaderProto{CallId: proto.Int32(-3), ClientId: []byte("0123456789abcdef"), RpcKind: pb.RpcKindProto_RPC_PROTOCOL_BUFFER.Enum()},
		&pb.IpcConnectionContextProto{UserInfo: &pb.UserInformationProto{EffectiveUser: proto.String("raw")}, Protocol: proto.String("org.apache.hadoop.hdfs.protocol.ClientProtocol")})
}

// read reads a response; resp is filled in if the call succeeded.
func (c *rpcConn) read(resp proto.Message) *pb.RpcResponseHeaderProto {
	c.t.Helper()
	var l [4]byte
	if _, err := io.ReadFull(c.r, l[:]); err != nil {
		c.t.Fatalf("reading a response: %v", err)
	}
	frame := make([]byte, binary.BigEndian.Uint32(l[:]))
	if _, err := io.ReadFull(c.r, frame); err != nil {
		c.t.Fatal(err)
	}
	next := func(m proto.Message) {
		n, k := binary.Uvarint(frame)
		if k <= 0 || int(n) > len(frame)-k {
			c.t.Fatalf("bad frame")
		}
		if err := proto.Unmarshal(frame[k:k+int(n)], m); err != nil {
			c.t.Fatal(err)
		}
		frame = frame[k+int(n):]
	}
	h := &pb.RpcResponseHeaderProto{}
	next(h)
	if h.GetStatus() == pb.RpcResponseHeaderProto_SUCCESS && resp != nil {
		next(resp)
	}
	if len(frame) > 0 {
		c.t.Fatalf("%d bytes after the response", len(frame))
	}
	return h
}

func (c *rpcConn) call(method, protocol string, req, resp proto.Message) *pb.RpcResponseHeaderProto {
	c.t.Helper()
	c.callID++
	c.send(&pb.RpcRequestHeaderProto{CallId: proto.Int32(c.callID), ClientId: []byte("0123456789abcdef"), RpcKind: pb.RpcKindProto_RPC_PROTOCOL_BUFFER.Enum()},
		&pb.RequestHeaderProto{MethodName: &method, DeclaringClassProtocolName: &protocol, ClientProtocolVersion: proto.Uint64(1)},
		req)
	h := c.read(resp)
	if int32(h.GetCallId()) != c.callID {
		c.t.Fatalf("response to call %d, want %d", h.GetCallId(), c.callID)
	}
	return h
}

const clientProtocol = "org.apache.hadoop.hdfs.protocol.ClientProtocol"

func TestRPCErrors(t *testing.T) {
	s := start(t, t.TempDir())

	t.Run("version", func(t *testing.T) {
		c := dialRPC(t, s.Addr(), []byte{'h', 'r', 'p', 'c', 7, 0, 0})
		h := c.read(nil)
		if h.GetStatus() != pb.RpcResponseHeaderProto_FATAL || h.GetErrorDetail() != pb.RpcResponseHeaderProto_FATAL_VERSION_MISMATCH {
			t.Errorf("IPC version 7: %v", h)
		}
	})
	t.Run("sasl", func(t *testing.T) {
		c := dialRPC(t, s.Addr(), []byte{'h', 'r', 'p', 'c', 9, 0, 0xdf})
		h := c.read(nil)
		if h.GetStatus() != pb.RpcResponseHeaderProto_FATAL || h.GetErrorDetail() != pb.RpcResponseHeaderProto_FATAL_UNAUTHORIZED {
			t.Errorf("SASL: %v", h)
		}
	})
	t.Run("protocol", func(t *testing.T) {
		c := dialRPC(t, s.Addr(), hrpc)
		c.context()
		h := c.call("getFileInfo", "org.apache.hadoop.hdfs.protocol.DatanodeProtocol", &pb.GetFileInfoRequestProto{Src: proto.String("/")}, nil)
		if h.GetStatus() != pb.RpcResponseHeaderProto_ERROR || h.GetErrorDetail() != pb.RpcResponseHeaderProto_ERROR_NO_SUCH_PROTOCOL {
			t.Errorf("another protocol: %v", h)
		}
		// The connection goes on.
		resp := &pb.GetFileInfoResponseProto{}
		if h := c.call("getFileInfo", clientProtocol, &pb.GetFileInfoRequestProto{Src: proto.String("/")}, resp); h.GetStatus() != pb.RpcResponseHeaderProto_SUCCESS || resp.GetFs().GetFileType() != pb.HdfsFileStatusProto_IS_DIR {
			t.Errorf("getFileInfo(/) = %v, %v", h, resp)
		}
	})
	t.Run("method", func(t *testing.T) {
		c := dialRPC(t, s.Addr(), hrpc)
		c.context()
		h := c.call("concat", clientProtocol, &pb.GetFileInfoRequestProto{Src: proto.String("/")}, nil)
		if h.GetStatus() != pb.RpcResponseHeaderProto_ERROR || h.GetErrorDetail() != pb.RpcResponseHeaderProto_ERROR_NO_SUCH_METHOD ||
			!strings.Contains(h.GetErrorMsg(), "concat") {
			t.Errorf("unknown method: %v", h)
		}
	})
	t.Run("relative-path", func(t *testing.T) {
		c := dialRPC(t, s.Addr(), hrpc)
		c.context()
		h := c.call("getFileInfo", clientProtocol, &pb.GetFileInfoRequestProto{Src: proto.String("a/b")}, nil)
		if h.GetExceptionClassName() != "org.apache.hadoop.fs.InvalidPathException" {
			t.Errorf("relative path: %v", h)
		}
	})
}

func TestRPCCalls(t *testing.T) {
	s := start(t, t.TempDir(), hdfstest.ListingLimit(2))
	cl := connect(t, s)
	for _, name := range []string{"/a", "/b", "/c", "/d", "/e"} {
		if err := cl.CreateEmptyFile(name); err != nil {
			t.Fatal(err)
		}
	}
	c := dialRPC(t, s.Addr(), hrpc)
	c.context()

	t.Run("listing-pages", func(t *testing.T) {
		var got []string
		after := []byte{}
		for page := 0; ; page++ {
			resp := &pb.GetListingResponseProto{}
			if h := c.call("getListing", clientProtocol, &pb.GetListingRequestProto{Src: proto.String("/"), StartAfter: after, NeedLocation: proto.Bool(false)}, resp); h.GetStatus() != pb.RpcResponseHeaderProto_SUCCESS {
				t.Fatal(h)
			}
			list := resp.GetDirList().GetPartialListing()
			if len(list) > 2 {
				t.Errorf("page %d: %d entries, more than the limit of 2", page, len(list))
			}
			for _, st := range list {
				got = append(got, string(st.GetPath()))
			}
			if resp.GetDirList().GetRemainingEntries() == 0 {
				break
			}
			after = list[len(list)-1].GetPath()
		}
		if strings.Join(got, ",") != "a,b,c,d,e" {
			t.Errorf("listing in pages: %v", got)
		}
	})
	t.Run("rename-no-overwrite", func(t *testing.T) {
		h := c.call("rename2", clientProtocol, &pb.Rename2RequestProto{Src: proto.String("/a"), Dst: proto.String("/b"), OverwriteDest: proto.Bool(false)}, &pb.Rename2ResponseProto{})
		if h.GetExceptionClassName() != "org.apache.hadoop.fs.FileAlreadyExistsException" {
			t.Errorf("rename2 onto an existing file without overwrite: %v", h)
		}
		if h := c.call("rename2", clientProtocol, &pb.Rename2RequestProto{Src: proto.String("/a"), Dst: proto.String("/z"), OverwriteDest: proto.Bool(false)}, &pb.Rename2ResponseProto{}); h.GetStatus() != pb.RpcResponseHeaderProto_SUCCESS {
			t.Errorf("rename2 to a new name without overwrite: %v", h)
		}
	})
	t.Run("old-rename", func(t *testing.T) {
		if err := cl.Mkdir("/dir", 0o755); err != nil {
			t.Fatal(err)
		}
		for _, r := range []struct {
			src, dst string
			want     bool
		}{
			{"/c", "/dir", true}, // into the directory
			{"/missing", "/x", false},
			{"/d", "/e", false}, // never replaces
			{"/d", "/no/such/dir", false},
			{"/d", "/d2", true},
		} {
			resp := &pb.RenameResponseProto{}
			if h := c.call("rename", clientProtocol, &pb.RenameRequestProto{Src: &r.src, Dst: &r.dst}, resp); h.GetStatus() != pb.RpcResponseHeaderProto_SUCCESS || resp.GetResult() != r.want {
				t.Errorf("rename(%s, %s) = %v, %v; want %v", r.src, r.dst, h, resp.GetResult(), r.want)
			}
		}
		for _, name := range []string{"/dir/c", "/d2", "/e"} {
			if _, err := cl.Stat(name); err != nil {
				t.Errorf("after the renames: Stat(%s) = %v", name, err)
			}
		}
	})
	t.Run("complete-waits-for-the-datanode", func(t *testing.T) {
		create := &pb.CreateResponseProto{}
		if h := c.call("create", clientProtocol, &pb.CreateRequestProto{
			Src: proto.String("/pending"), Masked: &pb.FsPermissionProto{Perm: proto.Uint32(0o644)}, ClientName: proto.String("raw-client"),
			CreateFlag: proto.Uint32(1), CreateParent: proto.Bool(false), Replication: proto.Uint32(1), BlockSize: proto.Uint64(1 << 20),
		}, create); h.GetStatus() != pb.RpcResponseHeaderProto_SUCCESS {
			t.Fatal(h)
		}
		add := &pb.AddBlockResponseProto{}
		if h := c.call("addBlock", clientProtocol, &pb.AddBlockRequestProto{Src: proto.String("/pending"), ClientName: proto.String("raw-client"), FileId: create.GetFs().FileId}, add); h.GetStatus() != pb.RpcResponseHeaderProto_SUCCESS {
			t.Fatal(h)
		}
		last := add.GetBlock().GetB()
		last.NumBytes = proto.Uint64(10)
		// The datanode never saw the block: the file stays open.
		resp := &pb.CompleteResponseProto{}
		if h := c.call("complete", clientProtocol, &pb.CompleteRequestProto{Src: proto.String("/pending"), ClientName: proto.String("raw-client"), Last: last, FileId: create.GetFs().FileId}, resp); h.GetStatus() != pb.RpcResponseHeaderProto_SUCCESS || resp.GetResult() {
			t.Errorf("complete before the datanode has the block = %v, %v; want false", h, resp.GetResult())
		}
		// Another client's complete is refused.
		if h := c.call("complete", clientProtocol, &pb.CompleteRequestProto{Src: proto.String("/pending"), ClientName: proto.String("other"), FileId: create.GetFs().FileId}, resp); h.GetExceptionClassName() != "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException" {
			t.Errorf("complete by a client without the lease: %v", h)
		}
		// And so is creating the file again while it is open.
		if _, err := cl.CreateFile("/pending", 1, 1<<20, 0o644); !errors.Is(err, os.ErrExist) {
			t.Errorf("create of a file being written = %v, want os.ErrExist", err)
		}
	})
}

// TestPause: a paused server answers nothing, as a process stopped with
// SIGSTOP, and answers the calls it held once resumed; Close ends a pause.
func TestPause(t *testing.T) {
	s := start(t, t.TempDir())
	c := connect(t, s)
	w, err := c.Create("/f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	s.Pause()
	done := make(chan error, 1)
	go func() {
		_, err := c.Stat("/f")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("a paused server answered getFileInfo (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	s.Resume()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("after Resume: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("getFileInfo still unanswered 30s after Resume")
	}

	s.Pause()
	go func() {
		_, err := c.ReadFile("/f")
		done <- err
	}()
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close of a paused server did not return")
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("a read from a server closed while paused succeeded")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a call to a server closed while paused never returned")
	}
}
