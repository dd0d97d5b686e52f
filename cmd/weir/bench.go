package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"github.com/weir-dev/weir/internal/nexbench"
)

func newBenchCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench SUITE",
		Short: "Run benchmarks (nexmark)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown benchmark suite %q (known: nexmark)", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newBenchNexmarkCmd(a))
	return cmd
}

func newBenchNexmarkCmd(a *app) *cobra.Command {
	var f nexbench.Flags
	var cpuProfile, vs string
	cmd := &cobra.Command{
		Use:   "nexmark --query qN [--events N] [--parallelism N] [--checkpoints=false]",
		Short: "Run a Nexmark query in stream mode over generated events",
		Long: `Run one Nexmark query in stream mode, reading events generated in the
process (nexmark://, one split per worker) and discarding its output, with
keyed state on Pebble and checkpoints at the default interval into a
temporary directory; then print the events per second, the elapsed time
and the peak resident memory of the process. The run ends when the
generator has produced --events events.`,
		Example: `  weir bench nexmark --query q5 --events 10000000
  weir bench nexmark --query q7 --events 1000000 --parallelism 1 --checkpoints=false`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if vs != "" {
				return fmt.Errorf("--vs %s: the comparison with prism is weir-bench nexmark --vs %[1]s now (make weir-bench builds bin/weir-bench)", vs)
			}
			if cpuProfile != "" {
				pf, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer pf.Close()
				if err := pprof.StartCPUProfile(pf); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			r, err := nexbench.Run(cmd.Context(), f, a.log)
			if err != nil {
				return err
			}
			if f.Format == "markdown" {
				if f.Header {
					fmt.Fprint(cmd.OutOrStdout(), nexbench.TableHeader)
				}
				return r.PrintRow(cmd.OutOrStdout())
			}
			return r.Print(cmd.OutOrStdout())
		},
	}
	fl := cmd.Flags()
	f.Register(fl)
	fl.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof reads it)")
	// The comparison with prism moved to weir-bench: say so to those who
	// call it here.
	fl.StringVar(&vs, "vs", "", "moved to weir-bench nexmark --vs")
	_ = fl.MarkHidden("vs")
	_ = cmd.MarkFlagRequired("query")
	return cmd
}
