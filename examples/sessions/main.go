// Command sessions finds each viewer's activity sessions (session windows)
// and counts their page views:
//
//	sessions --bind pageviews=file://views.jsonl --bind sessions=file://sessions.jsonl
package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
)

func main() {
	var c pipelines.SessionsConfig
	pflag.DurationVar(&c.Gap, "gap", 30*time.Minute, "inactivity gap that ends a session")
	pflag.DurationVar(&c.OutOfOrderness, "out-of-orderness", 5*time.Minute, "watermark delay of the input")
	runner.Main(func() (*sdk.Pipeline, error) { return pipelines.Sessions(c) })
}
