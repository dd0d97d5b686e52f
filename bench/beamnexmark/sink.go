package beamnexmark

import (
	"context"
	"encoding/json"
	"hash/fnv"

	"github.com/apache/beam/sdks/v2/go/pkg/beam"
	"github.com/apache/beam/sdks/v2/go/pkg/beam/register"
)

func init() {
	register.DoFn2x1[context.Context, beam.T, error](&countFn{})
}

// The metrics the pipelines report: events generated, results counted, and
// the sum of the results' fingerprints.
const metricsNamespace = "beamnexmark"

var (
	eventsCounter      = beam.NewCounter(metricsNamespace, "events")
	resultsCounter     = beam.NewCounter(metricsNamespace, "results")
	fingerprintCounter = beam.NewCounter(metricsNamespace, "fingerprint")
)

// Count is the sink of the queries: it counts the elements of col and, with
// fingerprint, adds up a hash of each one's JSON (a digest of the results
// as a multiset). Nothing is written anywhere: the counts are metrics,
// reported once a bundle.
func Count(s beam.Scope, col beam.PCollection, fingerprint bool) {
	beam.ParDo0(s.Scope("Count"), &countFn{Fingerprint: fingerprint}, col)
}

type countFn struct {
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

func (f *countFn) FinishBundle(ctx context.Context) {
	resultsCounter.Inc(ctx, f.n)
	if f.Fingerprint {
		fingerprintCounter.Inc(ctx, f.sum)
	}
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
