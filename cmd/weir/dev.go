package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"
)

func newDevCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run services for local work and demos (an embedded Kafka broker)",
	}
	cmd.AddCommand(newDevKafkaCmd(a))
	cmd.AddCommand(newDevHDFSCmd(a))
	return cmd
}

func newDevKafkaCmd(a *app) *cobra.Command {
	var listen, topics string
	cmd := &cobra.Command{
		Use:   "kafka [--listen 127.0.0.1:9092] [--topics name:partitions,...]",
		Short: "Run an embedded Kafka broker (franz-go's kfake) in the foreground",
		Long: `Run an in-process Kafka broker that speaks the Kafka protocol (franz-go's
kfake), so that stream mode can be tried with nothing else installed. It keeps
its data in memory and stops on Ctrl-C.`,
		Example: "  weir dev kafka --topics pageviews:4,counts:1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			seeds, err := parseTopics(topics)
			if err != nil {
				return err
			}
			opts := []kfake.Opt{kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(1),
				kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, listen) })}
			for _, s := range seeds {
				opts = append(opts, kfake.SeedTopics(s.partitions, s.name))
			}
			c, err := kfake.NewCluster(opts...)
			if err != nil {
				return fmt.Errorf("starting the broker on %s: %w", listen, err)
			}
			defer c.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "kafka broker listening on %s (in memory; Ctrl-C stops it)\n", strings.Join(c.ListenAddrs(), ","))
			for _, s := range seeds {
				fmt.Fprintf(cmd.OutOrStdout(), "  topic %s: %d partitions\n", s.name, s.partitions)
			}
			<-cmd.Context().Done()
			a.log.Info("broker stopping")
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9092", "address to listen on")
	cmd.Flags().StringVar(&topics, "topics", "", "topics to create, as name:partitions,... (others are created on first use with one partition)")
	return cmd
}

type topicSeed struct {
	name       string
	partitions int32
}

func parseTopics(s string) ([]topicSeed, error) {
	var out []topicSeed
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, n, found := strings.Cut(part, ":")
		p := int64(1)
		if found {
			var err error
			if p, err = strconv.ParseInt(n, 10, 32); err != nil || p < 1 {
				return nil, fmt.Errorf("--topics %q: want name:partitions with partitions >= 1", part)
			}
		}
		if name == "" {
			return nil, fmt.Errorf("--topics %q: empty topic name", part)
		}
		out = append(out, topicSeed{name, int32(p)})
	}
	return out, nil
}
