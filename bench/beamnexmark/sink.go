package beamnexmark

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"sync"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn2x1[context.Context, beam.T, error](&countFn{})
}

// counted is what the running job has counted: the events generated, the
// results, and the sum of the results' fingerprints. The counts are kept
// here, in this process, where prism runs the SDK's workers (loopback), and
// not in Beam's metrics, because prism loses metrics under load: a
// bundle's counter value whose short id prism has not yet asked the worker
// about waits in a map keyed by that short id (v2.77.0,
// jobservices.metricsStore.contributeMetrics), so when a second bundle
// reports the same counter before the answer comes back, its value replaces
// the first's. Runs are one at a time (Run); a bundle of a job that was
// cancelled may finish after the next job started, so each count names its
// job and only the running job's are kept.
var counted struct {
	mu                           sync.Mutex
	job                          int64 // the running job's sequence number
	events, results, fingerprint int64
}

// startCounting starts the counts of a job afresh.
func startCounting(job int64) {
	counted.mu.Lock()
	defer counted.mu.Unlock()
	counted.job = job
	counted.events, counted.results, counted.fingerprint = 0, 0, 0
}

// count adds to the counts of a job, if it is the running one.
func count(job, events, results, fingerprint int64) {
	counted.mu.Lock()
	defer counted.mu.Unlock()
	if counted.job == job {
		counted.events += events
		counted.results += results
		counted.fingerprint += fingerprint
	}
}

// counts returns the running job's counts.
func counts() (events, results, fingerprint int64) {
	counted.mu.Lock()
	defer counted.mu.Unlock()
	return counted.events, counted.results, counted.fingerprint
}

// countResults is the sink of the queries: it counts the elements of col
// and, with fingerprint, adds up a hash of each one's JSON (a digest of the
// results as a multiset). Nothing is written anywhere: the counts go to
// counted as job's, once a bundle.
func countResults(s beam.Scope, col beam.PCollection, job int64, fingerprint bool) {
	beam.ParDo0(s.Scope("Count"), &countFn{Job: job, Fingerprint: fingerprint}, col)
}

type countFn struct {
	Job         int64
	Fingerprint bool

	n, sum int64
}

func (f *countFn) StartBundle(context.Context) {
	f.n, f.sum = 0, 0
}

func (f *countFn) ProcessElement(_ context.Context, x beam.T) error {
	f.n++
	if f.Fingerprint {
		fp, err := Fingerprint(x)
		if err != nil {
			return err
		}
		f.sum += fp
	}
	return nil
}

func (f *countFn) FinishBundle(context.Context) {
	count(f.Job, 0, f.n, f.sum)
}

// Fingerprint is the hash of a value's JSON, in 31 bits so that the sum
// over millions of results cannot overflow. Weir's rows and this package's
// have the same JSON, so the sums over a query's results compare them as
// multisets.
func Fingerprint(v any) (int64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	h := fnv.New64a()
	h.Write(b)
	return int64(h.Sum64() >> 33), nil
}
