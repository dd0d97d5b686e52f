package file_test

import (
	"testing"

	_ "github.com/weir-dev/weir/io/file"
	"github.com/weir-dev/weir/io/iotest"
)

func TestFile(t *testing.T) {
	iotest.RunFileLike(t, "file://"+t.TempDir())
}
