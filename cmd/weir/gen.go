package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/weir-dev/weir/examples/events"
	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/windowing"
)

func newGenCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gen DATASET",
		Short: "Generate the examples' data sets",
		Long: `Generate the examples' data sets, deterministically from a seed, to any
bound sink URI (a path or file:// URI ending in .jsonl or .parquet).`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("unknown data set %q (known: pageviews, nexmark)", args[0])
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(newGenPageViewsCmd(a), newGenNexmarkCmd(a))
	return cmd
}

// genFlags are the flags of weir gen pageviews.
type genFlags struct {
	pageviews, profilesOut string
	seed                   uint64
	events, profiles       int
	profileEdits           int
	start                  string
	span, disorder, lateBy time.Duration
	lateFraction, pvf      float64
}

func newGenPageViewsCmd(a *app) *cobra.Command {
	var d events.GenConfig
	d.EnsureDefaults()
	var f genFlags
	cmd := &cobra.Command{
		Use:   "pageviews --pageviews URI [--profiles-out URI] [flags]",
		Short: "Generate page views and profile edits",
		Long: `Generate page views (and, with --profiles-out, profile edits) in arrival
order: out of order by up to --disorder, with a --late-fraction of views
arriving --late-by behind. The same flags and seed give the same data.`,
		Example: `  weir gen pageviews --pageviews data/pageviews.jsonl --profiles-out data/profiles.parquet
  weir gen pageviews --pageviews pv.jsonl --events 1000 --late-fraction 0 --disorder 0`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.config(cmd)
			if err != nil {
				return err
			}
			line, err := generate(cmd.Context(), a, cfg, f.pageviews, f.profilesOut)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), line)
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.pageviews, "pageviews", "", "sink `URI` of the page views (required)")
	fl.StringVar(&f.profilesOut, "profiles-out", "", "sink `URI` of the profile edits (none if empty)")
	fl.Uint64Var(&f.seed, "seed", d.Seed, "seed of the data set (0 is taken as 1)")
	fl.IntVar(&f.events, "events", d.PageViews, "number of page views")
	fl.IntVar(&f.profiles, "profiles", d.Profiles, "number of distinct profile ids")
	fl.IntVar(&f.profileEdits, "profile-edits", 0, "number of profile edits, 0 for none (default events/20)")
	fl.StringVar(&f.start, "start", d.Start.Format(time.RFC3339), "earliest event `time`, RFC 3339 or YYYY-MM-DD")
	fl.DurationVar(&f.span, "span", d.Span, "event-time range covered")
	fl.DurationVar(&f.disorder, "disorder", d.Disorder, "greatest arrival delay of events that are not very late, 0 for in order")
	fl.Float64Var(&f.lateFraction, "late-fraction", d.LateFraction, "fraction of page views that arrive very late, 0 for none")
	fl.DurationVar(&f.lateBy, "late-by", d.LateBy, "how far behind very late page views arrive")
	fl.Float64Var(&f.pvf, "profile-view-fraction", d.ProfileViewFraction, `share of page views with pageKey "profile-view"`)
	_ = cmd.MarkFlagRequired("pageviews")
	return cmd
}

// config turns the flags into a GenConfig, reporting every bad flag at once.
// A flag set to zero explicitly means none, where GenConfig's zero means the
// default.
func (f *genFlags) config(cmd *cobra.Command) (events.GenConfig, error) {
	var bad []string
	changed := cmd.Flags().Changed
	cfg := events.GenConfig{
		Seed:                f.seed,
		PageViews:           f.events,
		Profiles:            f.profiles,
		ProfileEdits:        f.profileEdits,
		Span:                f.span,
		Disorder:            f.disorder,
		LateFraction:        f.lateFraction,
		LateBy:              f.lateBy,
		ProfileViewFraction: f.pvf,
	}
	positive := func(name string, v int) {
		if v <= 0 {
			bad = append(bad, fmt.Sprintf("--%s is %d, want at least 1", name, v))
		}
	}
	positive("events", f.events)
	positive("profiles", f.profiles)
	if f.profiles > events.MaxProfiles {
		bad = append(bad, fmt.Sprintf("--profiles is %d, want at most %d", f.profiles, events.MaxProfiles))
	}
	for _, fr := range []struct {
		name string
		v    float64
	}{{"late-fraction", f.lateFraction}, {"profile-view-fraction", f.pvf}} {
		if math.IsNaN(fr.v) || fr.v > 1 {
			bad = append(bad, fmt.Sprintf("--%s is %v, want it in [0, 1]", fr.name, fr.v))
		}
	}
	if f.span <= 0 {
		bad = append(bad, fmt.Sprintf("--span is %v, want at least 1ms", f.span))
	}
	if f.lateBy <= 0 {
		bad = append(bad, fmt.Sprintf("--late-by is %v, want more than 0", f.lateBy))
	}
	// Zero means none for these; GenConfig says none with a negative value.
	noneIfZero := func(name string, isZero, isNegative bool, set func()) {
		switch {
		case isNegative:
			bad = append(bad, fmt.Sprintf("--%s is negative", name))
		case isZero && changed(name):
			set()
		}
	}
	noneIfZero("profile-edits", f.profileEdits == 0, f.profileEdits < 0, func() { cfg.ProfileEdits = -1 })
	noneIfZero("disorder", f.disorder == 0, f.disorder < 0, func() { cfg.Disorder = -1 })
	noneIfZero("late-fraction", f.lateFraction == 0, f.lateFraction < 0, func() { cfg.LateFraction = -1 })
	noneIfZero("profile-view-fraction", f.pvf == 0, f.pvf < 0, func() { cfg.ProfileViewFraction = -1 })
	start, err := parseStart(f.start)
	if err != nil {
		bad = append(bad, err.Error())
	}
	cfg.Start = start
	if f.lateFraction > 0 && f.span > 0 && f.span <= f.lateBy+max(f.disorder, 0) {
		bad = append(bad, fmt.Sprintf("--span is %v, want more than --late-by plus --disorder (%v) for very late views (or --late-fraction 0)", f.span, f.lateBy+max(f.disorder, 0)))
	}
	if len(bad) > 0 {
		return cfg, errors.New(strings.Join(bad, "; "))
	}
	return cfg, cfg.Validate()
}

func parseStart(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--start %q is not an RFC 3339 time or YYYY-MM-DD date", s)
}

// generate writes the data set of cfg to the sinks and returns the summary
// line. profilesURI may be empty.
func generate(ctx context.Context, a *app, cfg events.GenConfig, viewsURI, profilesURI string) (string, error) {
	views, err := openOut(ctx, a, "pageviews", viewsURI, reflect.TypeFor[events.PageViewEvent]())
	if err != nil {
		return "", err
	}
	defer views.abort()
	var onEdit func(events.ProfileEditEvent) error
	var edits *output
	if profilesURI != "" {
		if edits, err = openOut(ctx, a, "profiles", profilesURI, reflect.TypeFor[events.ProfileEditEvent]()); err != nil {
			return "", err
		}
		defer edits.abort()
		onEdit = func(e events.ProfileEditEvent) error { return edits.add(ctx, e, e.Timestamp) }
	}
	start := time.Now()
	err = cfg.Each(func(v events.PageViewEvent) error { return views.add(ctx, v, v.Timestamp) }, onEdit)
	if err != nil {
		return "", err
	}
	line := "wrote " + views.summary("page views")
	if err := views.commit(ctx); err != nil {
		return "", err
	}
	if edits != nil {
		line += " and " + edits.summary("profile edits")
		if err := edits.commit(ctx); err != nil {
			return "", err
		}
	}
	a.log.Debug("generated", "seed", cfg.Seed, "elapsed", time.Since(start).Round(time.Millisecond))
	return line, nil
}

// output batches the values written to one sink and keeps what the summary
// line reports.
type output struct {
	binding, name string
	sink          connector.Sink
	batch         []any
	n             int
	first, last   int64 // event times, ms
	done          bool  // committed or aborted
}

const batchSize = 1024

func openOut(ctx context.Context, a *app, binding, uri string, t reflect.Type) (*output, error) {
	u, err := connector.ParseURI(uri)
	if err != nil {
		return nil, err
	}
	s, err := connector.OpenSink(ctx, connector.SinkSpec{Binding: binding, URI: u, Type: t})
	if err != nil {
		return nil, err
	}
	a.log.Debug("opened sink", "binding", binding, "uri", u.Redacted())
	return &output{binding: binding, name: displayURI(uri, u), sink: s, batch: make([]any, 0, batchSize)}, nil
}

func (o *output) add(ctx context.Context, v any, ts int64) error {
	if o.n == 0 || ts < o.first {
		o.first = ts
	}
	if o.n == 0 || ts > o.last {
		o.last = ts
	}
	o.n++
	o.batch = append(o.batch, v)
	if len(o.batch) == batchSize {
		return o.flush(ctx)
	}
	return nil
}

func (o *output) flush(ctx context.Context) error {
	if len(o.batch) == 0 {
		return nil
	}
	if err := o.sink.Write(ctx, o.batch); err != nil {
		return fmt.Errorf("binding %q: %w", o.binding, err)
	}
	clear(o.batch)
	o.batch = o.batch[:0]
	return nil
}

func (o *output) commit(ctx context.Context) error {
	if err := o.flush(ctx); err != nil {
		return err
	}
	o.done = true
	if err := o.sink.Commit(ctx); err != nil {
		return fmt.Errorf("binding %q: %w", o.binding, err)
	}
	return nil
}

// abort discards the output unless it was committed.
func (o *output) abort() {
	if !o.done {
		o.done = true
		_ = o.sink.Abort()
	}
}

func (o *output) summary(what string) string {
	if o.n == 0 {
		return fmt.Sprintf("0 %s to %s", what, o.name)
	}
	return fmt.Sprintf("%d %s (%s to %s) to %s", o.n, what, windowing.Time(o.first), windowing.Time(o.last), o.name)
}

// displayURI is the URI as the user wrote it, less any password.
func displayURI(s string, u *url.URL) string {
	if _, hasPassword := u.User.Password(); hasPassword {
		return u.Redacted()
	}
	return s
}
