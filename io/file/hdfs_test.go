package file_test

import (
	"testing"

	"github.com/weir-dev/weir/io/hdfs/hdfstest"
	"github.com/weir-dev/weir/io/iotest"
)

// TestHDFS runs the file connector's conformance suite on hdfs:// against
// the in-repo HDFS server, with 64 KiB blocks so that Parquet footers and
// reads cross block boundaries.
func TestHDFS(t *testing.T) {
	srv, err := hdfstest.Start(t.TempDir(), hdfstest.BlockSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	iotest.RunFileLike(t, srv.URI()+"conformance")
}
