// Package beamnexmark holds Nexmark queries written on the Apache Beam Go
// SDK, as a Beam user would write them, with the definitions and parameters
// of Weir's own (examples/nexmark): Q0, Q1, Q2, Q3, Q5, Q7, Q8 and Q11.
// They read the events of Weir's generator (io/nexmark/model), split as
// nexmark:// splits them, and run on prism, Beam's local runner, inside
// this process; their results are counted, not written. weir-bench nexmark
// --vs prism runs them beside Weir's to compare the two on equal work.
//
// Dependency direction: beamnexmark imports Beam, examples/nexmark (the
// queries' parameters and names) and io/nexmark/model. It lives in the bench
// module, so that no package of Weir's own module imports Beam; weir-bench
// imports it.
package beamnexmark

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	// Beam's callers of common function shapes without reflection, as
	// beamx imports them.
	_ "github.com/apache/beam/sdks/v2/go/pkg/beam/core/runtime/exec/optimized"
	jobpb "github.com/apache/beam/sdks/v2/go/pkg/beam/model/jobmanagement_v1"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/options/jobopts"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/runners/prism"

	"github.com/weir-dev/weir/examples/nexmark"
	"github.com/weir-dev/weir/io/nexmark/model"
)

// Names returns the names of the queries, in numeric order.
func Names() []string { return nexmark.SortedNames(Queries) }

// Input is the events a run reads: those of the generator's configuration,
// in Splits splits (nexmark://?splits=Splits).
type Input struct {
	Generator model.Config
	Splits    int
}

// Options are how a run runs on prism. The zero value is prism's default
// configuration.
type Options struct {
	// Fingerprint: also add up the results' fingerprints
	// (Result.Fingerprint). Default false: only count them.
	Fingerprint bool
	// NoSplits runs the job with prism's experiment prism_disable_sdf_split:
	// prism then never splits a running bundle, where by default it splits
	// any bundle that makes no progress between two of its progress
	// reports. Such a split of a stateful DoFn's bundle can lose state
	// (v2.77.0, engine.stageState.splitBundle): prism takes the keys of the
	// elements it split off out of the keys in progress while the bundle
	// still runs, so the rest of a key's elements may run in a second bundle
	// at once, each bundle on its own copy of the key's state, and the last
	// to finish overwrites what the other wrote. Q3's join, a stateful DoFn
	// keyed by seller, then misses auctions, as many as the load makes
	// bundles slow. The cost: prism does not split the generator's ranges
	// either, which is how the generation spreads over the cores (see
	// generate). Default false.
	NoSplits bool
}

// Result is what a run counted.
type Result struct {
	// Events is the number of events generated, Results the number of
	// results.
	Events, Results int64
	// Fingerprint is the sum of the results' fingerprints (see
	// Fingerprint), when the run was asked for it.
	Fingerprint int64
	// Elapsed is the time from the pipeline's submission to its end.
	Elapsed time.Duration
}

// ErrTimeout is returned by Run when its context ends before the job does.
var ErrTimeout = errors.New("beamnexmark: the job did not finish in time")

// runs serializes Run: prism's job service and Beam's options are global.
var runs sync.Mutex

var jobSeq atomic.Int64

var (
	initOnce   sync.Once
	initErr    error
	jobService jobpb.JobServiceClient // prism's, in this process
)

// startJobService starts prism's job service in this process, as
// prism.Execute does on its first call, but keeps a client of it to cancel
// jobs with, and has Execute use it (with the SDK's workers in this process
// too: loopback).
func startJobService() (jobpb.JobServiceClient, error) {
	lis, err := net.Listen("tcp", "localhost:0")
	if err != nil {
		return nil, err
	}
	port := lis.Addr().(*net.TCPAddr).Port
	lis.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := prism.CreateJobServer(ctx, prism.Options{Port: port})
	if err != nil {
		return nil, err
	}
	*jobopts.Endpoint = fmt.Sprintf("localhost:%d", port)
	*jobopts.EnvironmentType = "loopback"
	return client, nil
}

// Run runs a query over the events of in on prism, in this process, and
// counts its results (and adds up their fingerprints, with
// o.Fingerprint). Prism and the Beam SDK log to slog's default logger.
// When ctx ends first, Run cancels the job, waits for prism to stop it, and
// returns an error wrapping ErrTimeout. Runs are one at a time.
func Run(ctx context.Context, name string, in Input, c Config, o Options) (Result, error) {
	q, ok := Queries[strings.ToLower(name)]
	if !ok {
		return Result{}, fmt.Errorf("beamnexmark: no query %q (known: %s)", name, strings.Join(Names(), ", "))
	}
	if in.Splits < 1 {
		return Result{}, fmt.Errorf("beamnexmark: %d splits, want at least 1", in.Splits)
	}
	if err := in.Generator.Validate(); err != nil {
		return Result{}, fmt.Errorf("beamnexmark: %w", err)
	}
	runs.Lock()
	defer runs.Unlock()
	initOnce.Do(func() {
		// beam.Init makes a logger of Beam's the process's default: keep
		// the caller's, which prism then logs to.
		d := slog.Default()
		beam.Init()
		slog.SetDefault(d)
		jobService, initErr = startJobService()
	})
	if initErr != nil {
		return Result{}, fmt.Errorf("beamnexmark: starting prism: %w", initErr)
	}

	// Each job its own number, for its counts, and its own name, to find it
	// again in prism's job service.
	seq := jobSeq.Add(1)
	p, s := beam.NewPipelineWithRoot()
	events := generate(s, in.Generator, in.Splits, seq)
	countResults(s, q(s.Scope(strings.ToLower(name)), events, c), seq, o.Fingerprint)

	job := fmt.Sprintf("nexmark-%s-%d", strings.ToLower(name), seq)
	*jobopts.JobName = job
	*jobopts.Experiments = ""
	if o.NoSplits {
		*jobopts.Experiments = "prism_disable_sdf_split"
	}
	abortGenerators.Store(false)
	startedGenerators.Store(0)
	startCounting(seq)
	start := time.Now()
	// Not ctx: prism's worker panics when the data stream's context ends
	// with a deadline. A job that runs too long is cancelled through the
	// job service instead, which ends Execute.
	var (
		err  error
		done = make(chan struct{})
	)
	go func() {
		defer close(done)
		_, err = prism.Execute(context.Background(), p)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		elapsed := time.Since(start).Round(time.Millisecond)
		abortGenerators.Store(true)
		if cerr := cancelJob(job, done); cerr != nil {
			return Result{}, fmt.Errorf("%w (after %s); cancelling it: %v", ErrTimeout, elapsed, cerr)
		}
		return Result{}, fmt.Errorf("%w (after %s)", ErrTimeout, elapsed)
	}
	elapsed := time.Since(start)
	if err != nil {
		return Result{}, fmt.Errorf("beamnexmark: %s on prism: %w", name, err)
	}
	r := Result{Elapsed: elapsed}
	r.Events, r.Results, r.Fingerprint = counts()
	return r, nil
}

// cancelJob asks prism's job service to cancel the job of a name, and
// waits until Execute has returned (done) and the generators have stopped,
// a minute at most: a job left running would take the cores from whatever
// runs next.
func cancelJob(name string, done <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cancelled := false
	for {
		// Not before the job's SDK worker is up: prism starts it through
		// the loopback worker pool that Execute stops when it returns, and
		// panics when it cannot (a job cancelled that early ends Execute
		// first).
		if !cancelled && startedGenerators.Load() > 0 {
			// The job may not be submitted yet: look again until it is.
			jobs, err := jobService.GetJobs(ctx, &jobpb.GetJobsRequest{})
			if err != nil {
				return err
			}
			for _, j := range jobs.GetJobInfo() {
				if j.GetJobName() == name {
					if _, err := jobService.Cancel(ctx, &jobpb.CancelJobRequest{JobId: j.GetJobId()}); err != nil {
						return err
					}
					cancelled = true
				}
			}
		}
		select {
		case <-done:
			if activeGenerators.Load() == 0 {
				return nil
			}
		default:
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("job %s still running after a minute", name)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
