package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/weir-dev/weir/io/hdfs/hdfstest"
)

// hadoopBlockSize is Hadoop's default block size, the default of weir dev
// hdfs (the test server's own default is smaller, for tests).
const hadoopBlockSize = 128 << 20

func newDevHDFSCmd(a *app) *cobra.Command {
	var listen, dir string
	var blockSize int64
	cmd := &cobra.Command{
		Use:   "hdfs [--listen 127.0.0.1:8020] --dir DIR",
		Short: "Run an HDFS namenode and datanode (Weir's hdfstest) in the foreground",
		Long: `Run an in-process HDFS namenode and one datanode that speak the real
protocols (Hadoop IPC and data transfer), so that hdfs:// URIs can be tried
with no Hadoop installed. Files and blocks are kept under --dir, so a restart
finds them again. The datanode listens on a free port of the same host;
clients learn it from the namenode. There is no security, permissions are
not checked and files cannot be appended to. It stops on Ctrl-C.`,
		Example: `  weir dev hdfs --dir /tmp/weir-hdfs
  weir gen pageviews --pageviews hdfs://127.0.0.1:8020/demo/pageviews.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := hdfstest.Start(dir, hdfstest.ListenAddr(listen), hdfstest.BlockSize(blockSize), hdfstest.Logger(a.log))
			if err != nil {
				return err
			}
			defer s.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "hdfs namenode listening on %s, datanode on %s (files under %s; Ctrl-C stops it)\n",
				s.Addr(), s.DatanodeAddr(), dir)
			fmt.Fprintf(cmd.OutOrStdout(), "  use %s\n", s.URI())
			<-cmd.Context().Done()
			a.log.Info("hdfs stopping")
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8020", "the namenode's address")
	cmd.Flags().StringVar(&dir, "dir", "", "the directory to keep the namespace and the blocks in (required)")
	cmd.Flags().Int64Var(&blockSize, "block-size", hadoopBlockSize, "the block size in bytes that clients are told to use (a multiple of 512)")
	cmd.MarkFlagRequired("dir")
	return cmd
}
