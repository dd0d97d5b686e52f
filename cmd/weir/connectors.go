package main

// The connectors that weir binds URIs to, registered by their init functions.
import (
	_ "github.com/weir-dev/weir/io/discard" // discard://
	_ "github.com/weir-dev/weir/io/file"    // file:// and bare paths
	_ "github.com/weir-dev/weir/io/kafka"   // kafka://
	_ "github.com/weir-dev/weir/io/nexmark" // nexmark://
)
