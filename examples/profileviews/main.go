// Command profileviews is "who viewed your profile": it counts the views of
// each member's profile per event-time window.
//
//	profileviews --bind pageviews=file://views.jsonl --bind counts=file://counts.jsonl --bind late=file://late.jsonl
//
// The same program runs as a backfill over files or as a stream (--mode=stream)
// over any source bound at launch.
package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/weir-dev/weir/examples/pipelines"
	"github.com/weir-dev/weir/runner"
	"github.com/weir-dev/weir/sdk"
)

func main() {
	var c pipelines.ProfileViewsConfig
	pflag.DurationVar(&c.Window, "window", time.Hour, "size of the event-time windows")
	pflag.DurationVar(&c.Slide, "slide", 0, "make the windows sliding, starting every this long")
	pflag.DurationVar(&c.AllowedLateness, "allowed-lateness", 0, "keep windows open this long for late views (panes then accumulate)")
	pflag.DurationVar(&c.OutOfOrderness, "out-of-orderness", 5*time.Minute, "watermark delay: how late a view may arrive without being late")
	runner.Main(func() (*sdk.Pipeline, error) { return pipelines.ProfileViews(c) })
}
