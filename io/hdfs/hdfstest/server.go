package hdfstest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// DefaultBlockSize is a Server's block size unless BlockSize says
// otherwise: 1 MiB, so that tests cross block boundaries with little data.
// (Hadoop's default, for comparison, is 128 MiB.)
const DefaultBlockSize = 1 << 20

// DefaultListingLimit is how many entries a listing returns per call unless
// ListingLimit says otherwise (Hadoop's dfs.ls.limit).
const DefaultListingLimit = 1000

// config is what the options set.
type config struct {
	addr         string
	dnAddr       string
	blockSize    int64
	listingLimit int
	log          *slog.Logger
}

// An Option configures a Server.
type Option func(*config)

// ListenAddr is the namenode's address (host:port). The default is
// 127.0.0.1:0, a free port on loopback.
func ListenAddr(addr string) Option { return func(c *config) { c.addr = addr } }

// DatanodeListenAddr is the datanode's address (host:port). The default is
// a free port on the namenode's host.
func DatanodeListenAddr(addr string) Option { return func(c *config) { c.dnAddr = addr } }

// BlockSize is the block size the server reports to clients (who use it for
// the files they create): a positive multiple of 512 bytes. The default is
// DefaultBlockSize.
func BlockSize(n int64) Option { return func(c *config) { c.blockSize = n } }

// ListingLimit is how many entries one getListing call returns at most,
// so that small limits exercise a client's paging. The default is
// DefaultListingLimit.
func ListingLimit(n int) Option { return func(c *config) { c.listingLimit = n } }

// Logger receives the server's log: connections that failed, at level
// Warn, and clients that went away mid-call, at level Debug. The default
// discards it.
func Logger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// validate reports every bad option at once.
func (c *config) validate() error {
	var errs []error
	if c.blockSize < chunkSize || c.blockSize%chunkSize != 0 {
		errs = append(errs, fmt.Errorf("hdfstest: block size %d is not a positive multiple of %d", c.blockSize, chunkSize))
	}
	if c.listingLimit < 1 {
		errs = append(errs, fmt.Errorf("hdfstest: listing limit %d is not positive", c.listingLimit))
	}
	if c.log == nil {
		errs = append(errs, errors.New("hdfstest: nil logger"))
	}
	return errors.Join(errs...)
}

// Server is a running namenode and datanode. Its methods are safe for
// concurrent use.
type Server struct {
	cfg        config
	nn         *namenode
	dn         *datanode
	nnLn, dnLn net.Listener
	wg         sync.WaitGroup // the accept loops and every connection

	mu struct {
		sync.Mutex
		conns  map[net.Conn]struct{} // open connections, closed by Close
		closed bool
		// paused is open while the server is paused (Pause), and closed
		// by Resume or Close; nil when running.
		paused chan struct{}
	}
}

// Start starts a server that keeps its namespace and blocks under dir
// (created if need be). A directory a server used before brings back the
// files it held.
func Start(dir string, opts ...Option) (*Server, error) {
	cfg := config{addr: "127.0.0.1:0", blockSize: DefaultBlockSize, listingLimit: DefaultListingLimit, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	if dir == "" {
		return nil, errors.New("hdfstest: no directory to keep the files in")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("hdfstest: %w", err)
	}
	store, err := openBlockStore(filepath.Join(dir, "blocks"))
	if err != nil {
		return nil, fmt.Errorf("hdfstest: opening the block store: %w", err)
	}
	nn := &namenode{cfg: cfg, store: store, image: filepath.Join(dir, imageName)}
	nn.mu.open = make(map[uint64]*inode)
	nn.mu.blocks = make(map[uint64]*inode)
	loaded, err := nn.loadLocked()
	if err != nil {
		return nil, err
	}
	if !loaded {
		now := time.Now().UnixMilli()
		nn.poolID = fmt.Sprintf("BP-%d-127.0.0.1-%d", now%1e9, now)
		nn.mu.root = &inode{id: rootInodeID, dir: true, children: make(map[string]*inode), perm: 0o755,
			owner: superuser(), group: supergroup, mtime: now}
		nn.mu.nextInode, nn.mu.nextBlock, nn.mu.genStamp = rootInodeID+1, firstBlockID, firstGenStamp
		if err := nn.saveLocked(); err != nil {
			return nil, err
		}
	}

	s := &Server{cfg: cfg, nn: nn, dn: &datanode{store: store, blockSize: nn.blockLimit}}
	s.mu.conns = make(map[net.Conn]struct{})
	if s.nnLn, err = net.Listen("tcp", cfg.addr); err != nil {
		return nil, fmt.Errorf("hdfstest: namenode: %w", err)
	}
	host, _, _ := net.SplitHostPort(s.nnLn.Addr().String())
	dnAddr := cfg.dnAddr
	if dnAddr == "" {
		dnAddr = net.JoinHostPort(host, "0")
	}
	if s.dnLn, err = net.Listen("tcp", dnAddr); err != nil {
		s.nnLn.Close()
		return nil, fmt.Errorf("hdfstest: datanode: %w", err)
	}
	dnHost, dnPort, _ := net.SplitHostPort(s.dnLn.Addr().String())
	if ip := net.ParseIP(dnHost); ip == nil || ip.IsUnspecified() {
		dnHost = "127.0.0.1" // listening everywhere: advertise loopback
	}
	port, _ := strconv.Atoi(dnPort)
	nn.dn = dnInfo{ip: dnHost, host: dnHost, uuid: newUUID(), port: port}
	if net.ParseIP(dnHost).IsLoopback() {
		nn.dn.host = "localhost"
	}

	s.wg.Add(2)
	go s.accept(s.nnLn, "namenode", s.serveRPC)
	go s.accept(s.dnLn, "datanode", s.dn.serve)
	return s, nil
}

// Addr returns the namenode's address, host:port: what a client connects
// to.
func (s *Server) Addr() string { return s.nnLn.Addr().String() }

// DatanodeAddr returns the datanode's address, host:port. Clients learn it
// from the namenode.
func (s *Server) DatanodeAddr() string { return s.dnLn.Addr().String() }

// URI returns the server's hdfs:// URI, hdfs://host:port/.
func (s *Server) URI() string { return "hdfs://" + s.Addr() + "/" }

// BlockFiles returns the local files that hold the finalized blocks of the
// file at path name, in order, so that tests can inspect or corrupt them.
func (s *Server) BlockFiles(name string) ([]string, error) {
	comps, err := splitPath(name)
	if err != nil {
		return nil, fmt.Errorf("hdfstest: %s: not an absolute path", name)
	}
	s.nn.mu.Lock()
	defer s.nn.mu.Unlock()
	in := s.nn.lookupLocked(comps)
	if in == nil || in.dir {
		return nil, fmt.Errorf("hdfstest: %s: no such file", name)
	}
	var out []string
	for _, b := range in.blocks {
		p, ok := s.nn.store.dataFile(b.id)
		if !ok {
			return nil, fmt.Errorf("hdfstest: %s: blk_%d is not finalized", name, b.id)
		}
		out = append(out, p)
	}
	return out, nil
}

// Close stops the server: it closes the listeners and every connection,
// and returns once all of its goroutines have. Writes in progress fail.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	if s.mu.paused != nil {
		close(s.mu.paused)
		s.mu.paused = nil
	}
	s.nnLn.Close()
	s.dnLn.Close()
	for c := range s.mu.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// Pause makes the server stop answering, as a server process stopped with
// SIGSTOP does: connections are still accepted and what clients send is
// buffered, but nothing is read, served or answered until Resume (or
// Close). Tests use it to see what a client does when a namenode or
// datanode hangs.
func (s *Server) Pause() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.paused == nil && !s.mu.closed {
		s.mu.paused = make(chan struct{})
	}
}

// Resume undoes Pause: the server reads and answers again.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.paused != nil {
		close(s.mu.paused)
		s.mu.paused = nil
	}
}

// waitRunning returns at once unless the server is paused, and then once
// it resumes or closes.
func (s *Server) waitRunning() {
	s.mu.Lock()
	p := s.mu.paused
	s.mu.Unlock()
	if p != nil {
		<-p
	}
}

// pausableConn is a served connection that neither reads nor writes while
// the server is paused.
type pausableConn struct {
	net.Conn
	s *Server
}

func (c *pausableConn) Read(b []byte) (int, error) {
	c.s.waitRunning()
	n, err := c.Conn.Read(b)
	c.s.waitRunning() // a read already waiting when Pause came
	return n, err
}

func (c *pausableConn) Write(b []byte) (int, error) {
	c.s.waitRunning()
	return c.Conn.Write(b)
}

// accept serves the connections of one listener until Close.
func (s *Server) accept(ln net.Listener, what string, serve func(net.Conn) error) {
	defer s.wg.Done()
	for {
		conn, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.mu.closed
			s.mu.Unlock()
			if closed {
				return
			}
			s.cfg.log.Warn("accept failed", "server", what, "err", err)
			time.Sleep(100 * time.Millisecond) // out of file descriptors, say
			continue
		}
		s.mu.Lock()
		if s.mu.closed {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.mu.conns[conn] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		served := &pausableConn{Conn: conn, s: s}
		go func() {
			defer s.wg.Done()
			err := serve(served)
			conn.Close()
			s.mu.Lock()
			delete(s.mu.conns, conn)
			closed := s.mu.closed
			s.mu.Unlock()
			switch {
			case err == nil || closed:
			case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
				// A reader that stopped early, or a client that went away.
				s.cfg.log.Debug("client closed the connection", "server", what, "remote", conn.RemoteAddr(), "err", err)
			default:
				s.cfg.log.Warn("connection failed", "server", what, "remote", conn.RemoteAddr(), "err", err)
			}
		}()
	}
}

// superuser is the owner of the root directory: whoever runs the server,
// as whoever formats a namenode owns its root.
func superuser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "hdfs"
}

func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
