package fsys

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// Every HDFS call has a deadline, so that a namenode or datanode that
// accepts connections and never answers (a process stopped with SIGSTOP, a
// machine that froze, a firewall dropping packets) fails the call with a
// TimeoutError instead of hanging the job for good: the HDFS client has no
// deadline of its own.
//
// A namenode call gets the whole timeout, from its request to the last
// byte of its answer. A datanode transfer (a block read or written) may
// take longer than that as a whole, so each of its reads and writes gets
// the timeout instead: a transfer fails when the datanode makes no
// progress for that long.

// DefaultHDFSTimeout is the deadline of an HDFS call when HDFSTimeoutEnv
// is not set.
const DefaultHDFSTimeout = 30 * time.Second

// HDFSTimeoutEnv is the environment variable that sets the deadline of
// every HDFS call, as a Go duration (10s, 2m). It is read when a namenode
// is first used.
const HDFSTimeoutEnv = "WEIR_HDFS_TIMEOUT"

// ErrTimeout is wrapped by the error of an HDFS call that got no answer
// within its deadline (a *TimeoutError).
var ErrTimeout = errors.New("fsys: hdfs call timed out")

// TimeoutError is the error of an HDFS call that got no answer within its
// deadline. errors.Is(err, ErrTimeout) and errors.Is(err,
// os.ErrDeadlineExceeded) hold for it.
type TimeoutError struct {
	// Node is "namenode" or "datanode"; Addr is its host:port.
	Node, Addr string
	// Call is the namenode method (getFileInfo, create, ...), or for a
	// datanode "read" or "write".
	Call string
	// Path is the file or directory the call was for, when known.
	Path string
	// After is the deadline that passed.
	After time.Duration
}

func (e *TimeoutError) Error() string {
	call := e.Call
	if e.Node == "datanode" {
		call = "a block " + call
		if e.Path != "" {
			call += " of"
		}
	}
	if e.Path != "" {
		call += " " + e.Path
	}
	return fmt.Sprintf("fsys: hdfs %s %s did not answer %s within %s", e.Node, e.Addr, call, e.After)
}

// Is makes the error match ErrTimeout and os.ErrDeadlineExceeded.
func (e *TimeoutError) Is(target error) bool {
	return target == ErrTimeout || target == os.ErrDeadlineExceeded
}

// Timeout reports true, as a net.Error's timeout does.
func (e *TimeoutError) Timeout() bool { return true }

// hdfsTimeout reads HDFSTimeoutEnv.
func hdfsTimeout() (time.Duration, error) {
	s, ok := os.LookupEnv(HDFSTimeoutEnv)
	if !ok || s == "" {
		return DefaultHDFSTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("fsys: %s=%s is not a positive duration (want e.g. 30s)", HDFSTimeoutEnv, s)
	}
	return d, nil
}

// dialer returns a dial function for the HDFS client whose connections
// have deadlines: one per call for a namenode (perCall), one per read or
// write for a datanode.
func dialer(node string, timeout time.Duration, perCall bool) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &deadlineConn{Conn: c, node: node, addr: addr, timeout: timeout, perCall: perCall}, nil
	}
}

// deadlineConn is a connection whose reads and writes fail with a
// *TimeoutError once its deadline passes; the connection is then closed,
// since what arrives late would be taken for the answer to a later call.
type deadlineConn struct {
	net.Conn
	node, addr string
	timeout    time.Duration
	// perCall sets the deadline when a request is written, for the write
	// and the reads of its answer (a namenode's RPC calls, which the
	// client makes one at a time on a connection); otherwise every read
	// and write gets its own.
	perCall bool

	mu struct {
		sync.Mutex
		call   string    // the namenode method in flight
		client time.Time // a deadline the client itself set (zero: none)
		// timedOut is the error of the call that timed out: the calls
		// after it fail with it too (the client then connects again).
		timedOut error
	}
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if err := c.mu.timedOut; err != nil {
		c.mu.Unlock()
		return 0, err
	}
	if c.perCall {
		c.mu.call = rpcMethod(b)
	}
	c.mu.Unlock()
	c.arm()
	n, err := c.Conn.Write(b)
	return n, c.check(err, "write")
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	err := c.mu.timedOut
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	if !c.perCall {
		c.arm()
	}
	n, err := c.Conn.Read(b)
	return n, c.check(err, "read")
}

// arm sets the deadline: the timeout from now, or the client's own
// deadline if that comes first.
func (c *deadlineConn) arm() {
	c.mu.Lock()
	d := time.Now().Add(c.timeout)
	if !c.mu.client.IsZero() && c.mu.client.Before(d) {
		d = c.mu.client
	}
	c.mu.Unlock()
	c.Conn.SetDeadline(d)
}

// check turns a deadline that passed into a *TimeoutError, and closes the
// connection.
func (c *deadlineConn) check(err error, dir string) error {
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	c.Conn.Close()
	c.mu.Lock()
	defer c.mu.Unlock()
	call := dir
	if c.perCall {
		call = c.mu.call
	}
	c.mu.timedOut = &TimeoutError{Node: c.node, Addr: c.addr, Call: call, After: c.timeout}
	return c.mu.timedOut
}

// The client sets deadlines of its own (none, unless a caller asks): they
// are kept, and the earlier of theirs and ours applies.

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.mu.client = t
	c.mu.Unlock()
	return nil
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error  { return c.SetDeadline(t) }
func (c *deadlineConn) SetWriteDeadline(t time.Time) error { return c.SetDeadline(t) }

// rpcMethod returns the method a Hadoop RPC request calls: the packet is a
// 4-byte length, then varint-delimited an RpcRequestHeaderProto and a
// RequestHeaderProto, whose field 1 is the method's name. Anything else
// (the connection's handshake) is "a call".
func rpcMethod(b []byte) string {
	const unknown = "a call"
	if len(b) < 4 || string(b[:4]) == "hrpc" || int(binary.BigEndian.Uint32(b)) != len(b)-4 {
		return unknown
	}
	b = b[4:]
	n, k := protowire.ConsumeVarint(b) // the RpcRequestHeaderProto
	if k < 0 || uint64(len(b)-k) < n {
		return unknown
	}
	b = b[k+int(n):]
	hdr, k := protowire.ConsumeBytes(b) // the RequestHeaderProto
	if k < 0 {
		return unknown
	}
	for len(hdr) > 0 {
		num, typ, k := protowire.ConsumeTag(hdr)
		if k < 0 {
			return unknown
		}
		hdr = hdr[k:]
		if num == 1 && typ == protowire.BytesType {
			name, k := protowire.ConsumeBytes(hdr)
			if k < 0 {
				return unknown
			}
			return string(name)
		}
		k = protowire.ConsumeFieldValue(num, typ, hdr)
		if k < 0 {
			return unknown
		}
		hdr = hdr[k:]
	}
	return unknown
}
