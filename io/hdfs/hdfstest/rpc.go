package hdfstest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/protobuf/proto"

	pb "github.com/weir-dev/weir/io/hdfs/hdfstest/internal/hdfspb"
)

// Hadoop IPC, as the namenode speaks it. A connection starts with "hrpc",
// the IPC version (9), a service class and an auth protocol (0: none), then
// carries frames: a big-endian uint32 length and that many bytes. The first
// frame has call id -3 and holds the RpcRequestHeaderProto and the
// IpcConnectionContextProto (who the caller is); each later one holds an
// RpcRequestHeaderProto, a RequestHeaderProto (the method) and the request,
// each varint-delimited. A response frame holds an RpcResponseHeaderProto
// and, if the call succeeded, the response.
const (
	ipcVersion              = 9
	authNone                = 0
	connectionContextCallID = -3
	clientProtocol          = "org.apache.hadoop.hdfs.protocol.ClientProtocol"
	// maxFrame bounds a request frame (Hadoop's ipc.maximum.data.length).
	maxFrame = 64 << 20
)

// caller is what the namenode knows about the other end of a connection.
type caller struct {
	user string // the effective user of the connection context
}

// serveRPC serves one namenode connection until the client closes it.
func (s *Server) serveRPC(conn net.Conn) error {
	r := bufio.NewReader(conn)
	w := bufio.NewWriter(conn)
	var hdr [7]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil // a connection that sent nothing is no error
	}
	if string(hdr[:4]) != "hrpc" {
		return fmt.Errorf("not a Hadoop IPC connection (it starts with %q)", hdr[:4])
	}
	if hdr[4] != ipcVersion {
		return fatal(w, pb.RpcResponseHeaderProto_FATAL_VERSION_MISMATCH,
			"IPC version %d, want %d", hdr[4], ipcVersion)
	}
	if hdr[6] != authNone {
		return fatal(w, pb.RpcResponseHeaderProto_FATAL_UNAUTHORIZED,
			"auth protocol 0x%x: hdfstest supports simple authentication only (no SASL, no Kerberos)", hdr[6])
	}
	var c *caller
	for {
		frame, err := readFrame(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		rh := &pb.RpcRequestHeaderProto{}
		rest, err := unmarshalDelimited(frame, rh)
		if err != nil {
			return fatal(w, pb.RpcResponseHeaderProto_FATAL_INVALID_RPC_HEADER, "bad RpcRequestHeaderProto: %v", err)
		}
		switch {
		case rh.GetCallId() == connectionContextCallID:
			cc := &pb.IpcConnectionContextProto{}
			if _, err := unmarshalDelimited(rest, cc); err != nil {
				return fatal(w, pb.RpcResponseHeaderProto_FATAL_DESERIALIZING_REQUEST, "bad IpcConnectionContextProto: %v", err)
			}
			c = &caller{user: cc.GetUserInfo().GetEffectiveUser()}
			if c.user == "" {
				c.user = cc.GetUserInfo().GetRealUser()
			}
			continue
		case rh.GetRpcOp() == pb.RpcRequestHeaderProto_RPC_CLOSE_CONNECTION:
			return nil
		case rh.GetCallId() < 0:
			continue // a ping, or another call that wants no answer
		case c == nil:
			return fatal(w, pb.RpcResponseHeaderProto_FATAL_INVALID_RPC_HEADER, "call %d before the connection context", rh.GetCallId())
		case rh.GetRpcKind() != pb.RpcKindProto_RPC_PROTOCOL_BUFFER:
			return fatal(w, pb.RpcResponseHeaderProto_FATAL_UNSUPPORTED_SERIALIZATION, "RPC kind %v, want RPC_PROTOCOL_BUFFER", rh.GetRpcKind())
		}
		resp := &pb.RpcResponseHeaderProto{
			CallId:              proto.Uint32(uint32(rh.GetCallId())),
			Status:              pb.RpcResponseHeaderProto_SUCCESS.Enum(),
			ServerIpcVersionNum: proto.Uint32(ipcVersion),
			ClientId:            rh.GetClientId(),
			RetryCount:          rh.RetryCount,
		}
		result, err := s.call(c, rest)
		var body []byte
		if err == nil {
			if body, err = proto.Marshal(result); err != nil {
				err = &remoteError{class: excRPCServer, code: pb.RpcResponseHeaderProto_ERROR_SERIALIZING_RESPONSE, msg: err.Error()}
			}
		}
		if err != nil {
			var re *remoteError
			if !errors.As(err, &re) {
				re = &remoteError{class: excIO, msg: err.Error()}
			}
			resp.Status = pb.RpcResponseHeaderProto_ERROR.Enum()
			resp.ExceptionClassName = &re.class
			resp.ErrorMsg = &re.msg
			resp.ErrorDetail = re.errorCode().Enum()
			body = nil
		}
		if err := writeFrame(w, resp, body); err != nil {
			return err
		}
	}
}

// call decodes the RequestHeaderProto and the request that follow a call's
// RpcRequestHeaderProto and runs the method.
func (s *Server) call(c *caller, frame []byte) (proto.Message, error) {
	h := &pb.RequestHeaderProto{}
	rest, err := unmarshalDelimited(frame, h)
	if err != nil {
		return nil, &remoteError{class: excRPCServer, code: pb.RpcResponseHeaderProto_ERROR_RPC_SERVER, msg: "bad RequestHeaderProto: " + err.Error()}
	}
	if p := h.GetDeclaringClassProtocolName(); p != clientProtocol {
		return nil, &remoteError{class: excNoSuchProtocol, code: pb.RpcResponseHeaderProto_ERROR_NO_SUCH_PROTOCOL,
			msg: fmt.Sprintf("unknown protocol %s (hdfstest serves %s)", p, clientProtocol)}
	}
	m, ok := methods[h.GetMethodName()]
	if !ok {
		return nil, &remoteError{class: excNoSuchMethod, code: pb.RpcResponseHeaderProto_ERROR_NO_SUCH_METHOD,
			msg: fmt.Sprintf("unknown method %s called on %s protocol (hdfstest does not implement it)", h.GetMethodName(), clientProtocol)}
	}
	n, size := binary.Uvarint(rest)
	if size <= 0 || n != uint64(len(rest)-size) {
		return nil, &remoteError{class: excRPCServer, code: pb.RpcResponseHeaderProto_ERROR_RPC_SERVER,
			msg: fmt.Sprintf("%s: the request is not one varint-delimited message", h.GetMethodName())}
	}
	return m(s.nn, c, rest[size:])
}

// fatal answers a connection-level failure, after which the connection
// closes, and returns it as an error.
func fatal(w *bufio.Writer, code pb.RpcResponseHeaderProto_RpcErrorCodeProto, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	err := writeFrame(w, &pb.RpcResponseHeaderProto{
		CallId:              proto.Uint32(^uint32(0)), // -1: no call
		Status:              pb.RpcResponseHeaderProto_FATAL.Enum(),
		ServerIpcVersionNum: proto.Uint32(ipcVersion),
		ExceptionClassName:  proto.String(excFatal),
		ErrorMsg:            &msg,
		ErrorDetail:         code.Enum(),
	}, nil)
	return errors.Join(errors.New(msg), err)
}

func readFrame(r io.Reader) ([]byte, error) {
	var l [4]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(l[:])
	if n > maxFrame {
		return nil, fmt.Errorf("a request of %d bytes (at most %d)", n, maxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("reading a request: %w", err)
	}
	return b, nil
}

// writeFrame writes and flushes a response: the header and, if body is not
// nil, the marshalled response, each varint-delimited.
func writeFrame(w *bufio.Writer, h *pb.RpcResponseHeaderProto, body []byte) error {
	hb, err := proto.Marshal(h)
	if err != nil {
		return err
	}
	n := binary.AppendUvarint(nil, uint64(len(hb)))
	frame := binary.BigEndian.AppendUint32(nil, 0)
	frame = append(append(frame, n...), hb...)
	if body != nil {
		frame = binary.AppendUvarint(frame, uint64(len(body)))
		frame = append(frame, body...)
	}
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	if _, err := w.Write(frame); err != nil {
		return err
	}
	return w.Flush()
}

// unmarshalDelimited decodes the varint-delimited message at the start of b
// into m and returns the rest of b.
func unmarshalDelimited(b []byte, m proto.Message) ([]byte, error) {
	n, size := binary.Uvarint(b)
	if size <= 0 || n > uint64(len(b)-size) {
		return nil, errors.New("truncated message")
	}
	if err := proto.Unmarshal(b[size:size+int(n)], m); err != nil {
		return nil, err
	}
	return b[size+int(n):], nil
}

// readDelimited reads a varint-delimited message.
func readDelimited(r *bufio.Reader, m proto.Message) error {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return err
	}
	if n > maxFrame {
		return fmt.Errorf("a message of %d bytes", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return proto.Unmarshal(b, m)
}

// writeDelimited writes a varint-delimited message.
func writeDelimited(w io.Writer, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return err
	}
	_, err = w.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
	return err
}
