package main

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-dev/weir/io/nexmark/model"
)

// genNexmarkFlags are the flags of weir gen nexmark.
type genNexmarkFlags struct {
	out    string
	events int64
	rate   float64
	seed   uint64
	group  int64
	start  string
}

func newGenNexmarkCmd(a *app) *cobra.Command {
	var f genNexmarkFlags
	cmd := &cobra.Command{
		Use:   "nexmark --out URI [--events N] [flags]",
		Short: "Generate Nexmark events (persons, auctions, bids)",
		Long: `Generate the Nexmark benchmark's events, one record per event with one of
person, auction or bid set, in event-time order, as nexmark://?events=N
produces them: the same flags and seed give the same events, so a query
can run over them as a backfill (files) or a stream (Kafka) and be
compared with a run over the generator itself.`,
		Example: `  weir gen nexmark --out data/nexmark.parquet --events 1000000
  weir gen nexmark --out 'kafka://127.0.0.1:9092/nexmark' --events 100000 --rate 1000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config()
			if err != nil {
				return err
			}
			g, err := model.NewGenerator(cfg)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			out, err := openOut(ctx, a, "events", f.out, reflect.TypeFor[model.Event]())
			if err != nil {
				return err
			}
			defer out.abort()
			start := time.Now()
			for n := range cfg.Events {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("interrupted after %d of %d events: nothing written", n, cfg.Events)
				}
				e := g.Event(n)
				ts, _ := e.Time()
				if err := out.add(ctx, e, ts); err != nil {
					return err
				}
			}
			line := "wrote " + out.summary("events")
			if err := out.commit(ctx); err != nil {
				return err
			}
			a.log.Debug("generated", "seed", cfg.Seed, "elapsed", time.Since(start).Round(time.Millisecond))
			_, err = fmt.Fprintln(cmd.OutOrStdout(), line)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.out, "out", "", "sink `URI` of the events (required)")
	fl.Int64Var(&f.events, "events", model.DefaultEvents, "number of events")
	fl.Float64Var(&f.rate, "rate", model.DefaultRate, "events per second of event time")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the data set")
	fl.Int64Var(&f.group, "out-of-order-group", 1, "permute event ids within groups of this many events")
	fl.StringVar(&f.start, "start", model.DefaultStart.Format(time.RFC3339), "event `time` of the first event, RFC 3339 or YYYY-MM-DD")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

// config turns the flags into a model.Config, reporting every bad flag at
// once.
func (f *genNexmarkFlags) config() (model.Config, error) {
	var bad []string
	if f.events < 1 {
		bad = append(bad, fmt.Sprintf("--events is %d, want at least 1", f.events))
	}
	if !(f.rate > 0) {
		bad = append(bad, fmt.Sprintf("--rate is %v, want more than 0", f.rate))
	}
	if f.group < 1 {
		bad = append(bad, fmt.Sprintf("--out-of-order-group is %d, want at least 1", f.group))
	}
	start, err := parseStart(f.start)
	if err != nil {
		bad = append(bad, err.Error())
	}
	if len(bad) > 0 {
		return model.Config{}, errors.New(strings.Join(bad, "; "))
	}
	cfg := model.Config{Seed: f.seed, Events: f.events, Rate: f.rate, OutOfOrderGroupSize: f.group, Start: start}
	return cfg, cfg.Validate()
}
