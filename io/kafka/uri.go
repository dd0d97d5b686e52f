package kafka

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrBadURI is wrapped by every error about a kafka:// URI.
var ErrBadURI = errors.New("kafka: bad URI")

// position is where a source starts or stops: the start or the end of each
// partition, or the first offset at or after a time.
type position struct {
	kind string // "earliest", "latest", "time", or "" (unset)
	ms   int64  // for "time": epoch milliseconds
}

func (p position) String() string {
	if p.kind == "time" {
		return time.UnixMilli(p.ms).UTC().Format(time.RFC3339Nano)
	}
	return p.kind
}

// options is a parsed kafka:// URI:
//
//	kafka://host:port[,host:port]/topic?start=earliest|latest|group|TIME&until=latest|TIME&format=json|raw&key=FIELD&group=NAME
//	    &delivery=at-least-once|exactly-once&txn-id=ID&txn-timeout=DURATION
//	    &offsets=P:OFFSET,P:OFFSET&partitions=P,P
//
// TIME is RFC 3339 or epoch milliseconds. group= names a consumer group:
// a source commits the offsets of each completed checkpoint to it, so that
// Kafka's tools show the job's lag (the job itself resumes from its
// checkpoints), and start=group starts from the group's committed offsets
// (the earliest offset where the group has none). offsets= gives a source the offset
// to start from in some partitions (others start at start=): where a
// backfill of the topic's history ended (see Handover). partitions= reads
// only those partitions (a job scaled out over a consumer group gives each
// task its own). delivery, txn-id and txn-timeout
// are for sinks: exactly-once writes in Kafka transactions under the
// transactional id txn-id, which must be unique to the job.
type options struct {
	brokers []string
	topic   string
	start   position // default earliest
	until   position // unset: unbounded
	format  string   // "json" (default) or "raw"
	key     string   // sink: the field whose value keys each record
	// group is the consumer group a source commits its checkpoints'
	// offsets to, and start=group starts from.
	group string
	// Sinks: exactly-once delivery (transactions) under txnID.
	offsets     map[int32]int64 // source: start offsets by partition
	only        []int32         // source: read only these partitions (nil: all)
	exactlyOnce bool
	txnID       string
	txnTimeout  time.Duration
	query       url.Values
}

// defaultTxnTimeout is how long a broker keeps a transaction open before it
// aborts it: long enough for a job to restart and commit what its last
// checkpoint pre-committed; Kafka's default transaction.max.timeout.ms.
const defaultTxnTimeout = 15 * time.Minute

var knownOptions = []string{"delivery", "format", "group", "key", "offsets", "partitions", "start", "txn-id", "txn-timeout", "until"}

func parseURI(u *url.URL) (*options, error) {
	o := &options{format: "json", start: position{kind: "earliest"}, txnTimeout: defaultTxnTimeout, query: u.Query()}
	if u.User != nil {
		// Weir does not authenticate to Kafka yet (SASL, TLS): taking
		// the URI would connect without the credentials, and a broker
		// that allows it would give the job what an anonymous client
		// may see. Redacted hides the password.
		return nil, fmt.Errorf("%w: %s: Weir does not authenticate to Kafka yet, and would connect without these credentials: remove the user info from the URI (user@, user:password@)", ErrBadURI, u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%w: %s: no broker address (kafka://host:port/topic)", ErrBadURI, u.Redacted())
	}
	for _, b := range strings.Split(u.Host, ",") {
		if b = strings.TrimSpace(b); b != "" {
			if !strings.Contains(b, ":") {
				b += ":9092"
			}
			o.brokers = append(o.brokers, b)
		}
	}
	o.topic = strings.Trim(u.Path, "/")
	if o.topic == "" || strings.Contains(o.topic, "/") {
		return nil, fmt.Errorf("%w: %s: want one topic as the path (kafka://host:port/topic)", ErrBadURI, u.Redacted())
	}
	var errs []error
	for k, vs := range o.query {
		v := vs[len(vs)-1]
		switch k {
		case "format":
			if v != "json" && v != "raw" {
				errs = append(errs, fmt.Errorf("%w: format=%q: want json or raw", ErrBadURI, v))
			}
			o.format = v
		case "key":
			o.key = v
		case "group":
			if v == "" {
				errs = append(errs, fmt.Errorf("%w: group= needs a consumer group name", ErrBadURI))
			}
			o.group = v
		case "delivery":
			if v != "at-least-once" && v != "exactly-once" {
				errs = append(errs, fmt.Errorf("%w: delivery=%q: want at-least-once or exactly-once", ErrBadURI, v))
			}
			o.exactlyOnce = v == "exactly-once"
		case "offsets":
			m, err := parseOffsets(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: offsets=%q: %v", ErrBadURI, v, err))
			}
			o.offsets = m
		case "partitions":
			ps, err := parsePartitions(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: partitions=%q: %v", ErrBadURI, v, err))
			}
			o.only = ps
		case "txn-id":
			o.txnID = v
		case "txn-timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second {
				errs = append(errs, fmt.Errorf("%w: txn-timeout=%q: want a duration of at least 1s, such as 15m", ErrBadURI, v))
			}
			o.txnTimeout = d
		case "start":
			p, err := parsePosition(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: start=%q: %v", ErrBadURI, v, err))
			}
			o.start = p
		case "until":
			p, err := parsePosition(v)
			if err == nil && p.kind == "earliest" {
				err = errors.New("until=earliest would read nothing")
			}
			if err == nil && p.kind == "group" {
				err = errors.New("until=group is not a bound: want latest or a time")
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("%w: until=%q: %v", ErrBadURI, v, err))
			}
			o.until = p
		default:
			sort.Strings(knownOptions)
			errs = append(errs, fmt.Errorf("%w: unknown option %q (known: %s)", ErrBadURI, k, strings.Join(knownOptions, ", ")))
		}
	}
	if o.start.kind == "group" && o.group == "" {
		errs = append(errs, fmt.Errorf("%w: start=group needs group=NAME, the consumer group whose committed offsets to start from", ErrBadURI))
	}
	if o.exactlyOnce && o.txnID == "" {
		errs = append(errs, fmt.Errorf("%w: delivery=exactly-once needs txn-id=ID, a transactional id unique to this job (a second producer with the same id fences the first)", ErrBadURI))
	}
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, errors.Join(errs...)
	}
	return o, nil
}

// parsePartitions reads a list of partition numbers, P,P,...
func parsePartitions(s string) ([]int32, error) {
	var ps []int32
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a partition number", f)
		}
		ps = append(ps, int32(n))
	}
	slices.Sort(ps)
	return slices.Compact(ps), nil
}

func parseOffsets(s string) (map[int32]int64, error) {
	m := map[int32]int64{}
	for _, kv := range strings.Split(s, ",") {
		p, off, ok := strings.Cut(strings.TrimSpace(kv), ":")
		pi, err1 := strconv.ParseInt(p, 10, 32)
		oi, err2 := strconv.ParseInt(off, 10, 64)
		if !ok || err1 != nil || err2 != nil || pi < 0 || oi < 0 {
			return nil, errors.New("want PARTITION:OFFSET,...")
		}
		m[int32(pi)] = oi
	}
	return m, nil
}

// FormatOffsets writes offsets by partition as an offsets= value.
func FormatOffsets(m map[int32]int64) string {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%d:%d", p, m[p])
	}
	return b.String()
}

func parsePosition(s string) (position, error) {
	switch s {
	case "earliest", "latest", "group":
		return position{kind: s}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms < 0 {
			return position{}, errors.New("a time before 1970")
		}
		return position{kind: "time", ms: ms}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return position{}, errors.New("want earliest, latest, group, an RFC 3339 time or epoch milliseconds")
	}
	return position{kind: "time", ms: t.UnixMilli()}, nil
}

// redacted is a URI as it may be shown (url.URL.Redacted: no password), or
// a placeholder when it does not parse: url.Parse's own error repeats it
// whole.
func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(a URI that does not parse)"
	}
	return u.Redacted()
}
