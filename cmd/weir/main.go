// Command weir is the command-line interface of Weir: it generates the
// examples' data sets (weir gen), prints any bound source (weir cat) and
// reports its version (weir version). Running pipelines (weir dev ...) and
// moving data (weir cp, weir validate) come as further subcommands, each in
// its own file.
//
// Errors are printed to stderr as one line prefixed with "weir: " and the
// subcommand ("weir: cat: ..."), with exit code 1 (weir validate: 1 when its
// inputs differ, 2 on other errors); logs go to stderr through log/slog.
//
// Dependency direction: weir imports the connector registry, the connectors
// it binds URIs to (connectors.go), the examples' event types and
// internal/validate; nothing imports weir.
package main

import (
	"context"
	"errors"
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

// run runs weir with the given arguments and returns its exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if cmd, err := root.ExecuteContextC(ctx); err != nil {
		msg := oneLine(err.Error())
		if name := subcommand(cmd); name != "" && !strings.HasPrefix(msg, name+":") {
			msg = name + ": " + msg
		}
		fmt.Fprintf(stderr, "weir: %s\n", msg)
		var ee *exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		return 1
	}
	return 0
}

// exitError is an error that ends weir with its own exit code instead of 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// app is the state the subcommands share.
type app struct {
	verbose bool
	log     *slog.Logger // set before any subcommand runs
}

func newRootCmd() *cobra.Command {
	a := &app{log: slog.New(slog.DiscardHandler)}
	root := &cobra.Command{
		Use:           "weir",
		Short:         "Weir runs Beam-style data pipelines",
		Version:       versionString(),
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			level := slog.LevelInfo
			if a.verbose {
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
	root.SetVersionTemplate("{{.Version}}\n")
	root.PersistentFlags().BoolVarP(&a.verbose, "verbose", "v", false, "log debug messages to stderr")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%w (see '%s --help')", err, cmd.CommandPath())
	})
	root.AddCommand(
		newGenCmd(a),
		newCatCmd(a),
		newCpCmd(a),
		newValidateCmd(a),
		newDevCmd(a),
		newBenchCmd(a),
		newVersionCmd(),
	)
	return root
}

// subcommand returns the path of cmd below the root: "gen pageviews".
func subcommand(cmd *cobra.Command) string {
	_, name, _ := strings.Cut(cmd.CommandPath(), " ")
	return name
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
