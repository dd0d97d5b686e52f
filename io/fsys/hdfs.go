package fsys

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/colinmarc/hdfs/v2"
	"github.com/colinmarc/hdfs/v2/hadoopconf"
)

// hdfsClients keeps one client per namenode address (or "" for the
// configuration's default file system), for the life of the process.
var hdfsClients struct {
	sync.Mutex
	m map[string]*hdfsFS
}

// hdfsFor returns the file system of the namenode at host ("" for
// HADOOP_CONF_DIR's fs.defaultFS).
func hdfsFor(host string) (*hdfsFS, error) {
	hdfsClients.Lock()
	defer hdfsClients.Unlock()
	if c, ok := hdfsClients.m[host]; ok {
		return c, nil
	}
	conf, err := hadoopconf.LoadFromEnvironment()
	if err != nil {
		return nil, fmt.Errorf("fsys: reading HADOOP_CONF_DIR: %w", err)
	}
	opts := hdfs.ClientOptionsFromConf(conf)
	if host != "" && !isNameservice(conf, host) {
		opts.Addresses = []string{host}
	}
	if len(opts.Addresses) == 0 {
		return nil, fmt.Errorf("fsys: hdfs:/// names no namenode and HADOOP_CONF_DIR sets no fs.defaultFS: write hdfs://host:port/path")
	}
	if opts.KerberosClient != nil {
		return nil, fmt.Errorf("fsys: the Hadoop configuration asks for Kerberos, which Weir does not support yet")
	}
	timeout, err := hdfsTimeout()
	if err != nil {
		return nil, err
	}
	opts.NamenodeDialFunc = dialer("namenode", timeout, true)
	opts.DatanodeDialFunc = dialer("datanode", timeout, false)
	if opts.User = os.Getenv("HADOOP_USER_NAME"); opts.User == "" {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("fsys: hdfs: no user name (set HADOOP_USER_NAME): %v", err)
		}
		opts.User = u.Username
	}
	cl, err := hdfs.NewClient(opts)
	if err != nil {
		return nil, fmt.Errorf("fsys: connecting to the namenode at %s: %w", strings.Join(opts.Addresses, ","), err)
	}
	name := host
	if name == "" {
		name = strings.Join(opts.Addresses, ",")
	}
	c := &hdfsFS{cl: cl, name: "hdfs://" + name}
	if hdfsClients.m == nil {
		hdfsClients.m = map[string]*hdfsFS{}
	}
	hdfsClients.m[host] = c
	return c, nil
}

// isNameservice reports whether host is an HA nameservice the configuration
// defines (its namenodes then come from the configuration).
func isNameservice(conf hadoopconf.HadoopConf, host string) bool {
	for _, ns := range strings.Split(conf["dfs.nameservices"], ",") {
		if strings.TrimSpace(ns) == host {
			return true
		}
	}
	return false
}

type hdfsFS struct {
	cl   *hdfs.Client
	name string
}

func (h *hdfsFS) String() string { return h.name }

// pathErr names the file of a call that timed out: the connection knows
// the call, not the path.
func pathErr(err error, name string) error {
	var te *TimeoutError
	if errors.As(err, &te) {
		e := *te
		e.Path = name
		return &e
	}
	return err
}

func (h *hdfsFS) Open(name string) (File, error) {
	f, err := h.cl.Open(name)
	if err != nil {
		return nil, pathErr(err, name)
	}
	return hdfsFile{f, name}, nil
}

type hdfsFile struct {
	*hdfs.FileReader
	name string
}

func (f hdfsFile) Size() int64 { return f.FileReader.Stat().Size() }

func (f hdfsFile) Read(b []byte) (int, error) {
	n, err := f.FileReader.Read(b)
	return n, pathErr(err, f.name)
}

func (f hdfsFile) ReadAt(b []byte, off int64) (int, error) {
	n, err := f.FileReader.ReadAt(b, off)
	return n, pathErr(err, f.name)
}

// Create replaces any file at name.
func (h *hdfsFS) Create(name string) (Writer, error) {
	if err := h.cl.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, pathErr(err, name)
	}
	w, err := h.cl.Create(name)
	if err != nil {
		return nil, pathErr(err, name)
	}
	return hdfsWriter{w, name}, nil
}

type hdfsWriter struct {
	*hdfs.FileWriter
	name string
}

// replicationWait bounds how long Close retries while the namenode reports
// the last block still replicating.
const replicationWait = time.Minute

func (w hdfsWriter) Write(b []byte) (int, error) {
	n, err := w.FileWriter.Write(b)
	return n, pathErr(err, w.name)
}

// Close flushes the file and completes it, retrying while the namenode
// says its last block is still replicating (the Java client does too).
func (w hdfsWriter) Close() error {
	err := w.FileWriter.Close()
	for wait, begin := 50*time.Millisecond, time.Now(); hdfs.IsErrReplicating(err); wait = min(2*wait, 2*time.Second) {
		if time.Since(begin) > replicationWait {
			return fmt.Errorf("fsys: %w: still replicating after %s", err, replicationWait)
		}
		time.Sleep(wait)
		err = w.FileWriter.Close()
	}
	return pathErr(err, w.name)
}

func (h *hdfsFS) Stat(name string) (fs.FileInfo, error) {
	fi, err := h.cl.Stat(name)
	return fi, pathErr(err, name)
}

func (h *hdfsFS) ReadDir(name string) ([]fs.FileInfo, error) {
	infos, err := h.cl.ReadDir(name)
	if err != nil {
		return nil, pathErr(err, name)
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name() < infos[j].Name() })
	return infos, nil
}

func (h *hdfsFS) MkdirAll(name string) error   { return pathErr(h.cl.MkdirAll(name, 0o755), name) }
func (h *hdfsFS) Rename(from, to string) error { return pathErr(h.cl.Rename(from, to), from) }
func (h *hdfsFS) Remove(name string) error     { return pathErr(h.cl.Remove(name), name) }
func (h *hdfsFS) RemoveAll(name string) error  { return pathErr(h.cl.RemoveAll(name), name) }

// SyncDir does nothing: the namenode logs every namespace change before it
// answers.
func (h *hdfsFS) SyncDir(string) error { return nil }
