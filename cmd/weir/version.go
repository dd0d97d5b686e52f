package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is the release, set when building one:
//
//	go build -ldflags "-X main.version=v0.1.0" ./cmd/weir
var version string

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print weir's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), versionString())
			return err
		},
	}
}

// versionString is "weir VERSION GOVERSION OS/ARCH". Without a release
// version it is the module's version, or "devel" with the VCS revision when
// the build recorded one.
func versionString() string {
	v := version
	if bi, ok := debug.ReadBuildInfo(); ok && v == "" {
		v = bi.Main.Version
		if v == "" || v == "(devel)" {
			v = "devel"
			var rev, modified string
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value
				}
			}
			if rev != "" {
				v += "-" + rev[:min(len(rev), 12)]
				if modified == "true" {
					v += "-dirty"
				}
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	return fmt.Sprintf("weir %s %s %s/%s", v, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
