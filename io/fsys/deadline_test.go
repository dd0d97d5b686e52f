package fsys_test

import (
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/io/fsys"
	"github.com/weir-dev/weir/io/hdfs/hdfstest"
)

// within runs f and fails the test if it has not returned after a minute:
// a call with a deadline of a fraction of a second that takes that long
// has no deadline.
func within[T any](t *testing.T, what string, f func() (T, error)) (T, error) {
	t.Helper()
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := f()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-time.After(time.Minute):
		t.Fatalf("%s still hanging after a minute: the call has no deadline", what)
		panic("unreachable")
	}
}

// silentNamenode listens, accepts connections, reads what they send and
// never answers: a namenode stopped with SIGSTOP, or an address whose
// process hangs.
func silentNamenode(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			go io.Copy(io.Discard, c)
		}
	}()
	return ln.Addr().String()
}

// TestHDFSSilentNamenode: a call to a namenode that accepts and never
// answers fails once its deadline passes, with an error naming the
// namenode, the call and the path; and the calls after it fail too rather
// than hang or read the late answer of another.
func TestHDFSSilentNamenode(t *testing.T) {
	t.Setenv(fsys.HDFSTimeoutEnv, "300ms")
	addr := silentNamenode(t)
	u, _ := url.Parse("hdfs://" + addr + "/x")
	f, p, err := fsys.Resolve(u)
	if err != nil {
		t.Fatal(err)
	}
	_, err = within(t, "Stat", func() (os.FileInfo, error) { return f.Stat(p) })
	want := "fsys: hdfs namenode " + addr + " did not answer getFileInfo /x within 300ms"
	if err == nil || err.Error() != want {
		t.Fatalf("Stat on a silent namenode: %v\nwant: %s", err, want)
	}
	var te *fsys.TimeoutError
	if !errors.Is(err, fsys.ErrTimeout) || !errors.Is(err, os.ErrDeadlineExceeded) || !errors.As(err, &te) || te.Call != "getFileInfo" || te.Path != "/x" {
		t.Errorf("Stat's error %#v: want a *fsys.TimeoutError for getFileInfo /x matching fsys.ErrTimeout", err)
	}
	for _, call := range []string{"ReadDir", "Create"} {
		_, err = within(t, call, func() (any, error) {
			if call == "ReadDir" {
				return f.ReadDir("/")
			}
			return f.Create("/y")
		})
		if err == nil {
			t.Errorf("%s on a silent namenode succeeded", call)
		}
	}
}

// TestHDFSBadTimeout: a timeout that is not a duration is refused, naming
// the variable.
func TestHDFSBadTimeout(t *testing.T) {
	t.Setenv(fsys.HDFSTimeoutEnv, "soon")
	u, _ := url.Parse("hdfs://" + silentNamenode(t) + "/x")
	_, _, err := fsys.Resolve(u)
	if err == nil || !strings.Contains(err.Error(), fsys.HDFSTimeoutEnv+"=soon") {
		t.Errorf("Resolve with %s=soon: %v, want an error naming it", fsys.HDFSTimeoutEnv, err)
	}
}

// TestHDFSPausedServer: a namenode and datanode that stop answering in the
// middle of a job (hdfstest paused, as by SIGSTOP) fail the calls of a
// reader and a writer once their deadlines pass, and the file system
// works again once they answer.
func TestHDFSPausedServer(t *testing.T) {
	t.Setenv(fsys.HDFSTimeoutEnv, "300ms")
	srv, err := hdfstest.Start(t.TempDir(), hdfstest.BlockSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	u, _ := url.Parse(srv.URI())
	f, _, err := fsys.Resolve(u)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat("x", 100<<10))
	if err := fsys.WriteFile(f, "/f", data); err != nil {
		t.Fatal(err)
	}

	// A reader whose datanode stops answering: it has the block
	// locations, and reads the second block.
	r, err := f.Open("/f")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	_, err = within(t, "ReadAt", func() (int, error) { return r.ReadAt(make([]byte, 10), 80<<10) })
	want := "fsys: hdfs datanode " + srv.DatanodeAddr() + " did not answer a block read of /f within 300ms"
	if !errors.Is(err, fsys.ErrTimeout) || err.Error() != want {
		t.Errorf("Read from a paused datanode: %v\nwant: %s", err, want)
	}

	// A writer whose namenode and datanode stop answering.
	srv.Resume()
	w, err := within(t, "Create", func() (fsys.Writer, error) { return f.Create("/g") })
	if err != nil {
		t.Fatalf("Create once resumed: %v", err)
	}
	srv.Pause()
	_, err = within(t, "Write and Close", func() (any, error) {
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
		return nil, w.Close()
	})
	if !errors.Is(err, fsys.ErrTimeout) || !strings.Contains(err.Error(), "/g within 300ms") {
		t.Errorf("Write and Close on a paused server: %v, want a timeout naming /g", err)
	}

	// Answering again, the server serves the next calls.
	srv.Resume()
	var b []byte
	for i := 0; ; i++ {
		// The client waits a few seconds before it dials a namenode
		// that failed again.
		b, err = within(t, "ReadFile", func() ([]byte, error) { return fsys.ReadFile(f, "/f") })
		if err == nil || i == 20 {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil || len(b) != len(data) {
		t.Errorf("ReadFile once resumed: %d bytes, %v", len(b), err)
	}
}
