package hdfstest

import (
	"errors"
	"fmt"

	pb "github.com/weir-dev/weir/io/hdfs/hdfstest/internal/hdfspb"
)

// The Java exception classes the namenode reports; clients map some of them
// to their own errors (java.io.FileNotFoundException to os.ErrNotExist, for
// one), so they are Hadoop's names.
const (
	excIO                      = "java.io.IOException"
	excFileNotFound            = "java.io.FileNotFoundException"
	excFileAlreadyExists       = "org.apache.hadoop.fs.FileAlreadyExistsException"
	excParentNotDirectory      = "org.apache.hadoop.fs.ParentNotDirectoryException"
	excPathIsNotEmptyDirectory = "org.apache.hadoop.fs.PathIsNotEmptyDirectoryException"
	excInvalidPath             = "org.apache.hadoop.fs.InvalidPathException"
	excAlreadyBeingCreated     = "org.apache.hadoop.hdfs.protocol.AlreadyBeingCreatedException"
	excLeaseExpired            = "org.apache.hadoop.hdfs.server.namenode.LeaseExpiredException"
	excIllegalArgument         = "org.apache.hadoop.HadoopIllegalArgumentException"
	excUnsupported             = "java.lang.UnsupportedOperationException"
	excNoSuchMethod            = "org.apache.hadoop.ipc.RpcNoSuchMethodException"
	excNoSuchProtocol          = "org.apache.hadoop.ipc.RpcNoSuchProtocolException"
	excRPCServer               = "org.apache.hadoop.ipc.RpcServerException"
	excFatal                   = "org.apache.hadoop.ipc.IpcException"
)

// remoteError is a failed call as the client sees it: a Java exception
// class and its message.
type remoteError struct {
	class string
	msg   string
	code  pb.RpcResponseHeaderProto_RpcErrorCodeProto // 0: ERROR_APPLICATION
}

func (e *remoteError) Error() string { return e.class + ": " + e.msg }

func (e *remoteError) errorCode() pb.RpcResponseHeaderProto_RpcErrorCodeProto {
	if e.code == 0 {
		return pb.RpcResponseHeaderProto_ERROR_APPLICATION
	}
	return e.code
}

func remote(class, format string, args ...any) *remoteError {
	return &remoteError{class: class, msg: fmt.Sprintf(format, args...)}
}

// isClass reports whether err is a remote error of the given class.
func isClass(err error, class string) bool {
	var re *remoteError
	return errors.As(err, &re) && re.class == class
}
