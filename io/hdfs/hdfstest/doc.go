// Package hdfstest is an HDFS server for tests and demos: a namenode and one
// datanode in the process, on loopback, that speak the real protocols, so
// that an unmodified HDFS client can stat, list, read, create, write,
// rename and delete files with nothing installed. It is tested with
// github.com/colinmarc/hdfs/v2; Hadoop's own client speaks the same
// protocols, but has not been tried. Like franz-go's kfake for Kafka, it is a fake that
// speaks the protocol, not a mock.
//
// The namenode speaks Hadoop IPC (the "hrpc" connection header, an
// IpcConnectionContextProto, then calls framed as RpcRequestHeaderProto,
// RequestHeaderProto and the request, varint-delimited, answered with an
// RpcResponseHeaderProto and the response) for the ClientProtocol calls a
// client makes to stat, list, read and write: getFileInfo, getListing (in
// pages), getBlockLocations, getServerDefaults, mkdirs, create, addBlock,
// updateBlockForPipeline, abandonBlock, complete, rename2, rename, delete,
// renewLease, getFsStats, getContentSummary, setPermission, setOwner and
// setTimes. Any other method gets an RpcNoSuchMethodException that names it.
//
// The datanode speaks the data-transfer protocol: READ_BLOCK (packets of
// data with a CRC32C checksum per 512-byte chunk, from any offset),
// WRITE_BLOCK (a pipeline of one, each packet's checksums verified and
// acknowledged) and BLOCK_CHECKSUM. Blocks are files under the server's
// directory, next to a meta file of their checksums written as the data
// arrived, so a block file corrupted on disk fails the client's checksum
// check as it would on a real datanode.
//
// What it simplifies, compared with a real cluster:
//
//   - One namenode and one datanode; every block has one replica, whatever
//     replication a client asks for. No high availability, no block reports,
//     no re-replication, no balancer.
//   - No security: no Kerberos or SASL (a client that asks for it is turned
//     away), no block tokens, no encryption of data transfer.
//   - No permissions: modes, owners and groups are stored and reported but
//     never checked; every caller is a superuser. No ACLs, extended
//     attributes, quotas, snapshots, symlinks, storage policies, erasure
//     coding, encryption zones or trash.
//   - A file is written once, from create to complete: no append, truncate
//     or concat, and no pipeline recovery (a failed write fails). While a
//     file is being written, its length counts the blocks finished so far.
//   - Leases never expire: a file left open by a client that went away stays
//     open until it is deleted or the server restarts (which closes it with
//     the blocks its writer finished).
//   - The namespace is kept in memory (and written to namespace.json under
//     the directory after every change, so a restarted server sees the files
//     it had); block files are not fsynced. Edits are not logged.
//   - The datanode is advertised at the address it listens on (by default
//     the namenode's host; 127.0.0.1 if that is every interface), so clients
//     must reach that address.
//
// Dependency direction: hdfstest imports its generated protocol types
// (internal/hdfspb) and google.golang.org/protobuf; it never imports an HDFS
// client. Tests (its conformance suite) and cmd/weir (weir dev hdfs) import
// it.
package hdfstest
