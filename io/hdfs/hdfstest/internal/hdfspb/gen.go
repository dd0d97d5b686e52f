// Package hdfspb holds the Go types of the Hadoop RPC and HDFS messages that
// package hdfstest speaks, generated from hadoop.proto (see its header for
// where the definitions come from and why they live in their own package).
//
// Regenerate with protoc (3.21; Debian's protobuf-compiler) and
// protoc-gen-go v1.36.12 on the PATH
// (go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12):
//
//	go generate ./io/hdfs/hdfstest/internal/hdfspb
//
// Dependency direction: hdfspb imports google.golang.org/protobuf only; only
// hdfstest imports it.
package hdfspb

//go:generate protoc -I=../../../../.. --go_out=../../../../.. --go_opt=paths=source_relative io/hdfs/hdfstest/internal/hdfspb/hadoop.proto
