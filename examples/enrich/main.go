// Command enrich joins each page view with the viewer's profile as of the
// view's event time (a stream-table join):
//
//	enrich --bind pageviews=file://views.jsonl --bind profiles=file://profiles.jsonl --bind enriched=file://enriched.jsonl
package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
)

func main() {
	var c pipelines.EnrichConfig
	pflag.DurationVar(&c.OutOfOrderness, "out-of-orderness", 5*time.Minute, "watermark delay of both inputs")
	pflag.DurationVar(&c.HistoryRetention, "history-retention", 7*24*time.Hour, "how long superseded profile versions are kept for late views")
	runner.Main(func() (*sdk.Pipeline, error) { return pipelines.Enrich(c) })
}
