// Command weir-bench compares Weir with Beam's prism runner on the Nexmark
// queries: weir-bench nexmark --vs prism runs each query on Weir as weir
// bench nexmark does, then its Beam version (package beamnexmark) on prism
// over the same events, and prints both rates. It is built from the bench
// module, apart from Weir's, so that the weir tool and the examples do not
// link the Beam SDK, prism and the Google Cloud packages those bring in.
//
// Errors are printed to stderr as one line prefixed with "weir-bench: " and
// the subcommand, with exit code 1; logs go to stderr through log/slog.
//
// Dependency direction: weir-bench imports beamnexmark and Weir's
// internal/nexbench; nothing imports it.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs weir-bench with the given arguments and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if cmd, err := root.ExecuteContextC(ctx); err != nil {
		msg := oneLine(err.Error())
		if _, name, _ := strings.Cut(cmd.CommandPath(), " "); name != "" && !strings.HasPrefix(msg, name+":") {
			msg = name + ": " + msg
		}
		fmt.Fprintf(stderr, "weir-bench: %s\n", msg)
		return 1
	}
	return 0
}

// app is the state the subcommands share.
type app struct {
	log *slog.Logger // set before any subcommand runs
}

func newRootCmd() *cobra.Command {
	a := &app{log: slog.New(slog.DiscardHandler)}
	var verbose bool
	root := &cobra.Command{
		Use:           "weir-bench",
		Short:         "Compare Weir with Beam's prism runner",
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			a.log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{
				Level: level,
				ReplaceAttr: func(groups []string, at slog.Attr) slog.Attr {
					if len(groups) == 0 && at.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return at
				},
			}))
		},
	}
	root.PersistentFlags().BoolVarP(&verbose, "verbose", "v", false, "log debug messages (Weir's, prism's and the Beam SDK's) to stderr")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})
	root.AddCommand(newNexmarkCmd(a))
	return root
}

// oneLine joins the lines of an error message with "; ".
func oneLine(s string) string {
	var parts []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}
