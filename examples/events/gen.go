package events

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"
)

// MaxProfiles bounds GenConfig.Profiles. The generator keeps about 24 bytes of
// state per profile.
const MaxProfiles = 1 << 24

// Defaults of GenConfig, filled in by EnsureDefaults.
const (
	DefaultSeed                = 1
	DefaultPageViews           = 100000
	DefaultProfiles            = 1000
	DefaultSpan                = 24 * time.Hour
	DefaultDisorder            = 2 * time.Minute
	DefaultLateFraction        = 0.001
	DefaultLateBy              = 6 * time.Hour
	DefaultProfileViewFraction = 0.5
)

// DefaultStart is the default GenConfig.Start: 2026-11-01T00:00:00Z.
var DefaultStart = time.Date(2026, time.November, 1, 0, 0, 0, 0, time.UTC)

// GenConfig configures Generate and Each. The zero value is the default data
// set. As with net.Dialer.KeepAlive, a zero field means its default and, for
// the fields whose doc says so, a negative value means none.
//
// Each event's arrival time is its event time plus a delay drawn uniformly
// from [0, Disorder], except for the very late page views (LateFraction),
// whose delay is LateBy plus a draw from [0, Disorder]. Events are produced in
// arrival order; ties keep event-time order. Hence, for every event that is
// not very late, the greatest event time produced before it exceeds its own by
// at most Disorder.
type GenConfig struct {
	// Seed selects the data set: the same configuration and seed give the
	// same events (with one Go release on one architecture: the generator
	// uses floating-point math functions). Default 1.
	Seed uint64
	// PageViews is the number of page views. Default 100000.
	PageViews int
	// Profiles is the number of members: viewer, viewed and edited profile
	// ids are in [1, Profiles], skewed so that a few profiles are viewed
	// (and edited) far more than the rest. At most MaxProfiles. Default
	// 1000.
	Profiles int
	// ProfileEdits is the number of profile edits. Negative means none.
	// Default PageViews/20.
	ProfileEdits int
	// Start is the earliest event time, truncated to the millisecond.
	// Default DefaultStart, 2026-11-01T00:00:00Z.
	Start time.Time
	// Span is the event-time range covered: event times lie in
	// [Start, Start+Span), spread evenly. Default 24h.
	Span time.Duration
	// Disorder is the greatest arrival delay of events that are not very
	// late, the bound of their out-of-orderness. Negative means none: such
	// events arrive in event-time order. Default 2m.
	Disorder time.Duration
	// LateFraction is the fraction of page views that arrive very late, in
	// [0, 1]. Negative means none. Default 0.001.
	//
	// Only views whose arrival still falls before Start+Span are made very
	// late, so that data with later event times has arrived before them;
	// the fraction among those is raised to keep the overall fraction.
	LateFraction float64
	// LateBy is how far behind its event time a very late view arrives, less
	// its Disorder delay. The default, 6h, makes very late views late for
	// any window of up to 1h under a watermark that allows up to 5m of
	// out-of-orderness and any allowed lateness under 4h: every event up to
	// LateBy-Disorder newer than such a view arrives before it, and
	// 1h+5m+4h < 6h-2m. Default 6h.
	LateBy time.Duration
	// ProfileViewFraction is the share of page views whose pageKey is
	// PageKeyProfileView, in [0, 1]; the others view pages such as "feed",
	// "jobs", "search" and "notifications". Negative means none. Default
	// 0.5.
	ProfileViewFraction float64
}

// EnsureDefaults sets zero fields to their defaults. It is idempotent.
func (c *GenConfig) EnsureDefaults() {
	if c.Seed == 0 {
		c.Seed = DefaultSeed
	}
	if c.PageViews == 0 {
		c.PageViews = DefaultPageViews
	}
	if c.Profiles == 0 {
		c.Profiles = DefaultProfiles
	}
	if c.ProfileEdits == 0 {
		c.ProfileEdits = c.PageViews / 20
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Span == 0 {
		c.Span = DefaultSpan
	}
	if c.Disorder == 0 {
		c.Disorder = DefaultDisorder
	}
	if c.LateFraction == 0 {
		c.LateFraction = DefaultLateFraction
	}
	if c.LateBy == 0 {
		c.LateBy = DefaultLateBy
	}
	if c.ProfileViewFraction == 0 {
		c.ProfileViewFraction = DefaultProfileViewFraction
	}
}

// Validate reports every problem of the configuration at once, as one error
// whose message lists them separated by "; ". Zero fields are taken as their
// defaults.
func (c GenConfig) Validate() error {
	c.EnsureDefaults()
	var p []string
	bad := func(format string, args ...any) { p = append(p, fmt.Sprintf(format, args...)) }
	if c.PageViews < 0 {
		bad("PageViews is %d, want >= 0", c.PageViews)
	}
	if c.Profiles < 0 || c.Profiles > MaxProfiles {
		bad("Profiles is %d, want it in [1, %d]", c.Profiles, MaxProfiles)
	}
	if c.Span < 0 || c.Span > 0 && c.Span < time.Millisecond {
		bad("Span is %v, want at least 1ms", c.Span)
	}
	if c.LateBy < 0 {
		bad("LateBy is %v, want >= 0", c.LateBy)
	}
	if math.IsNaN(c.LateFraction) || c.LateFraction > 1 {
		bad("LateFraction is %v, want it in [0, 1]", c.LateFraction)
	}
	if math.IsNaN(c.ProfileViewFraction) || c.ProfileViewFraction > 1 {
		bad("ProfileViewFraction is %v, want it in [0, 1]", c.ProfileViewFraction)
	}
	if ms := c.Start.UnixMilli(); ms < -(1<<50) || ms > 1<<50 {
		bad("Start is %v, too far from 1970", c.Start)
	}
	if c.LateFraction > 0 && c.Span > 0 && c.LateBy >= 0 {
		if need := c.LateBy + max(c.Disorder, 0); c.Span <= need {
			bad("Span is %v, want more than LateBy+Disorder (%v), or no very late views", c.Span, need)
		}
	}
	if len(p) > 0 {
		return errors.New("events: invalid GenConfig: " + strings.Join(p, "; "))
	}
	return nil
}

// Generate returns the page views and profile edits of cfg, each in arrival
// order. It holds all of them in memory: use Each for large data sets.
func Generate(cfg GenConfig) (views []PageViewEvent, edits []ProfileEditEvent, err error) {
	c := cfg
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		return nil, nil, err
	}
	views = make([]PageViewEvent, 0, c.PageViews)
	edits = make([]ProfileEditEvent, 0, max(c.ProfileEdits, 0))
	err = c.Each(
		func(v PageViewEvent) error { views = append(views, v); return nil },
		func(e ProfileEditEvent) error { edits = append(edits, e); return nil },
	)
	if err != nil {
		return nil, nil, err
	}
	return views, edits, nil
}

// Each produces the events of cfg in arrival order, page views and profile
// edits interleaved, calling onView for each page view and onEdit for each
// profile edit; a nil function skips those events. The views do not depend
// on whether edits are produced, nor the edits on the views. Each stops at
// the first error a function returns and returns it.
//
// Each generates the events in event-time order and holds back only those
// that have not arrived yet, so its memory is that of the events within
// Disorder of event time, the very late views within LateBy, and about 24
// bytes per profile: a few megabytes for ten million views over a day.
//
// Profile edits are never very late. The enrich example joins each page view
// with the viewed profile as of the view's time and emits the join once the
// profile edits' watermark has passed that time; an edit arriving behind that
// watermark would make the expected answer depend on when the runner read it
// rather than on the data.
func (cfg GenConfig) Each(onView func(PageViewEvent) error, onEdit func(ProfileEditEvent) error) error {
	c := cfg
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		return err
	}
	g := newGenerator(c, onView != nil, onEdit != nil)
	for {
		var it pending
		switch {
		case g.haveView && (!g.haveEdit || g.nextView <= g.nextEdit):
			it = g.view()
		case g.haveEdit:
			it = g.edit()
		default:
			return g.flush(math.MaxInt64, onView, onEdit)
		}
		// Every event made from now on arrives at or after the event time
		// of this one, and after it in ties.
		if err := g.flush(it.eventTime(), onView, onEdit); err != nil {
			return err
		}
		g.pending.push(it)
	}
}

// Shape of the generated data.
const (
	// meanSessionViews is the mean number of views in a burst of a viewer's
	// activity.
	meanSessionViews = 6
	// meanViewGap is the mean time between two views of a burst, when the
	// data is dense enough.
	meanViewGap = 2 * time.Minute
)

var (
	otherPages   = []string{"feed", "jobs", "search", "notifications", "messaging", "my-network"}
	trackingKeys = []string{"direct", "search-result", "feed-update", "invitation-email", "notification-email", "ad-campaign"}
	// trackingWeights are the percentages of sessions per tracking key.
	trackingWeights = []int{30, 25, 20, 10, 10, 5}
	jobTitles       = []string{"Software Engineer", "Data Engineer", "Product Manager", "Designer", "Sales Manager", "Recruiter", "Data Scientist", "Engineering Manager"}
	industries      = []string{"Software", "Financial Services", "Healthcare", "Education", "Retail", "Manufacturing", "Media"}
	locations       = []string{"Cambridge, UK", "London, UK", "San Francisco, CA", "New York, NY", "Berlin, Germany", "Bangalore, India", "Toronto, Canada", "Sydney, Australia"}
)

// viewerState is what the generator remembers of a viewer.
type viewerState struct {
	last      int64  // event time of the last view; math.MinInt64 if none
	session   uint32 // session number of the last view
	left      int32  // views left in the current burst while active
	activeIdx int32  // index in generator.active, or -1
	tracking  uint8  // index in trackingKeys of the session
}

type generator struct {
	start, span, end    int64 // event-time range, ms
	disorder, lateBy    int64 // ms
	lateBefore          int64 // views before this event time may be very late
	pLate, profileViews float64
	profiles            int

	vr, er             *rand.Rand // page views' and profile edits' streams
	viewTimes          sortedUniform
	editTimes          sortedUniform
	nextView, nextEdit int64
	haveView, haveEdit bool

	viewerZipf, viewedZipf, editZipf *rand.Zipf
	viewerMul, viewerAdd             uint64 // permutes viewer ranks

	viewers      []viewerState // by id
	active       []int32       // viewers in a burst
	activeTarget int           // bursts in progress, to get meanViewGap
	sessions     uint32        // sessions begun
	salt         uint32        // of session ids and initial profiles

	profileState map[int64]uint32 // edited profiles: packed field indexes

	seq     uint64 // of events made, for stable arrival order
	pending arrivalHeap
}

func newGenerator(c GenConfig, views, edits bool) *generator {
	g := &generator{
		start:        c.Start.UnixMilli(),
		span:         max(c.Span.Milliseconds(), 1),
		disorder:     max(c.Disorder.Milliseconds(), 0),
		lateBy:       c.LateBy.Milliseconds(),
		profiles:     c.Profiles,
		profileViews: max(c.ProfileViewFraction, 0),
		vr:           rand.New(rand.NewPCG(c.Seed, 0x9a6e_0001)),
		er:           rand.New(rand.NewPCG(c.Seed, 0x9a6e_0002)),
		salt:         uint32(mix64(c.Seed)),
		profileState: map[int64]uint32{},
	}
	g.end = g.start + g.span
	if c.LateFraction > 0 {
		g.lateBefore = g.end - g.lateBy - g.disorder
		if eligible := g.lateBefore - g.start; eligible > 0 {
			g.pLate = min(c.LateFraction*float64(g.span)/float64(eligible), 1)
		}
	}
	imax := uint64(c.Profiles - 1)
	g.viewerZipf = rand.NewZipf(g.vr, 1.1, 10, imax)
	g.viewedZipf = rand.NewZipf(g.vr, 1.2, 2, imax)
	g.editZipf = rand.NewZipf(g.er, 1.1, 5, imax)
	n := uint64(c.Profiles)
	g.viewerAdd = c.Seed % n
	g.viewerMul = n*5/8 + 1
	for gcd(g.viewerMul, n) != 1 {
		g.viewerMul++
	}
	if views {
		g.viewers = make([]viewerState, c.Profiles+1)
		for i := range g.viewers {
			g.viewers[i] = viewerState{last: math.MinInt64, activeIdx: -1}
		}
		rate := float64(c.PageViews) / float64(g.span)
		g.activeTarget = max(1, int(math.Round(rate*float64(meanViewGap.Milliseconds()))))
		g.viewTimes = sortedUniform{r: g.vr, n: c.PageViews}
		g.nextView, g.haveView = g.viewTimes.next(g)
	}
	if edits && c.ProfileEdits > 0 {
		g.editTimes = sortedUniform{r: g.er, n: c.ProfileEdits}
		g.nextEdit, g.haveEdit = g.editTimes.next(g)
	}
	return g
}

// view makes the next page view.
func (g *generator) view() pending {
	t := g.nextView
	g.nextView, g.haveView = g.viewTimes.next(g)
	r := g.vr

	// Continue one of the bursts in progress, or begin one if there are
	// fewer than needed to space a burst's views about meanViewGap apart.
	var id int64
	if len(g.active) < g.activeTarget {
		rank := g.viewerZipf.Uint64()
		id = int64((rank*g.viewerMul+g.viewerAdd)%uint64(g.profiles)) + 1
	} else {
		id = int64(g.active[r.IntN(len(g.active))])
	}
	v := &g.viewers[id]
	if v.last == math.MinInt64 || t-v.last >= SessionGap.Milliseconds() {
		g.sessions++
		v.session = g.sessions
		v.tracking = pickWeighted(r, trackingWeights)
	}
	v.last = t
	if v.activeIdx < 0 {
		v.activeIdx = int32(len(g.active))
		g.active = append(g.active, int32(id))
		v.left = int32(geometric(r, meanSessionViews))
	}
	if v.left--; v.left <= 0 {
		last := g.active[len(g.active)-1]
		g.active[v.activeIdx] = last
		g.viewers[last].activeIdx = v.activeIdx
		g.active = g.active[:len(g.active)-1]
		v.activeIdx = -1
	}

	e := PageViewEvent{
		EventType:   EventTypePageView,
		Timestamp:   t,
		ViewerID:    id,
		SessionID:   fmt.Sprintf("%08x", sessionID(v.session, g.salt)),
		TrackingKey: trackingKeys[v.tracking],
	}
	if r.Float64() < g.profileViews {
		e.PageKey = PageKeyProfileView
		e.ViewedProfileID = int64(g.viewedZipf.Uint64()) + 1
		if e.ViewedProfileID == id && g.profiles > 1 {
			e.ViewedProfileID = id%int64(g.profiles) + 1
		}
	} else {
		e.PageKey = otherPages[r.IntN(len(otherPages))]
	}
	arrival := t + r.Int64N(g.disorder+1)
	if t < g.lateBefore && r.Float64() < g.pLate {
		arrival += g.lateBy
	}
	g.seq++
	return pending{arrival: arrival, seq: g.seq, view: e}
}

// edit makes the next profile edit: one field of the profile changes.
func (g *generator) edit() pending {
	t := g.nextEdit
	g.nextEdit, g.haveEdit = g.editTimes.next(g)
	r := g.er
	id := int64(g.editZipf.Uint64()) + 1
	s, ok := g.profileState[id]
	if !ok {
		s = uint32(mix64(uint64(id) ^ uint64(g.salt)<<32))
	}
	idx := [3]int{int(s & 0xff), int(s >> 8 & 0xff), int(s >> 16 & 0xff)}
	sets := [3][]string{jobTitles, industries, locations}
	for i := range idx {
		idx[i] %= len(sets[i])
	}
	f := r.IntN(len(sets))
	idx[f] = (idx[f] + 1 + r.IntN(len(sets[f])-1)) % len(sets[f])
	g.profileState[id] = uint32(idx[0] | idx[1]<<8 | idx[2]<<16)
	e := ProfileEditEvent{
		EventType: EventTypeProfileEdit,
		Timestamp: t,
		ProfileID: id,
		Profile:   Profile{JobTitle: jobTitles[idx[0]], Industry: industries[idx[1]], Location: locations[idx[2]]},
	}
	g.seq++
	return pending{arrival: t + r.Int64N(g.disorder+1), seq: g.seq, edit: true, pe: e}
}

// flush hands over the pending events that arrive at or before t.
func (g *generator) flush(t int64, onView func(PageViewEvent) error, onEdit func(ProfileEditEvent) error) error {
	for g.pending.len() > 0 && g.pending.minArrival() <= t {
		it := g.pending.pop()
		var err error
		if it.edit {
			err = onEdit(it.pe)
		} else {
			err = onView(it.view)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sortedUniform draws n event times uniformly from the generator's range, in
// ascending order, one at a time: the next of the sorted uniform variates
// u(1) <= ... <= u(n) is u(i) + (1-u(i))·(1-V^(1/(n-i))), V uniform in (0, 1].
type sortedUniform struct {
	r    *rand.Rand
	n, i int
	u    float64
}

func (s *sortedUniform) next(g *generator) (int64, bool) {
	if s.i >= s.n {
		return 0, false
	}
	v := 1 - s.r.Float64()
	s.u += (1 - s.u) * -math.Expm1(math.Log(v)/float64(s.n-s.i))
	s.i++
	return min(g.start+int64(s.u*float64(g.span)), g.end-1), true
}

// pending is an event waiting for its arrival time.
type pending struct {
	arrival int64
	seq     uint64
	edit    bool
	view    PageViewEvent
	pe      ProfileEditEvent
}

func (p *pending) eventTime() int64 {
	if p.edit {
		return p.pe.Timestamp
	}
	return p.view.Timestamp
}

// arrivalHeap holds pending events in arrival order, ties in the order they
// were made. The events stay in slots; the heap orders small pointer-free
// entries that name them.
type arrivalHeap struct {
	slots []pending
	free  []int32 // unused slots
	h     []heapEntry
}

type heapEntry struct {
	arrival int64
	seq     uint64
	slot    int32
}

func (a heapEntry) before(b heapEntry) bool {
	return a.arrival < b.arrival || a.arrival == b.arrival && a.seq < b.seq
}

func (q *arrivalHeap) len() int { return len(q.h) }

// minArrival is the arrival time of the first event; the heap must not be
// empty.
func (q *arrivalHeap) minArrival() int64 { return q.h[0].arrival }

func (q *arrivalHeap) push(p pending) {
	var slot int32
	if n := len(q.free); n > 0 {
		slot = q.free[n-1]
		q.free = q.free[:n-1]
		q.slots[slot] = p
	} else {
		slot = int32(len(q.slots))
		q.slots = append(q.slots, p)
	}
	q.h = append(q.h, heapEntry{arrival: p.arrival, seq: p.seq, slot: slot})
	h := q.h
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h[i].before(h[parent]) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (q *arrivalHeap) pop() pending {
	h := q.h
	top := h[0]
	n := len(h) - 1
	h[0] = h[n]
	h = h[:n]
	for i := 0; ; {
		l, m := 2*i+1, i
		if l < n && h[l].before(h[m]) {
			m = l
		}
		if l+1 < n && h[l+1].before(h[m]) {
			m = l + 1
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	q.h = h
	p := q.slots[top.slot]
	q.slots[top.slot] = pending{}
	q.free = append(q.free, top.slot)
	return p
}

// sessionID turns a session number into an 8-hex-digit id. It is a bijection
// of uint32, so ids are unique among the first 2^32 sessions.
func sessionID(n, salt uint32) uint32 {
	x := n + salt
	x ^= x >> 16
	x *= 0x7feb352d
	x ^= x >> 15
	x *= 0x846ca68b
	x ^= x >> 16
	return x
}

// mix64 is the SplitMix64 finalizer.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// geometric draws from the geometric distribution on 1, 2, ... with the given
// mean, capped at 1000.
func geometric(r *rand.Rand, mean float64) int {
	u := 1 - r.Float64()
	n := 1 + math.Floor(math.Log(u)/math.Log(1-1/mean))
	return int(min(n, 1000))
}

// pickWeighted returns an index into weights, which add up to 100.
func pickWeighted(r *rand.Rand, weights []int) uint8 {
	x := r.IntN(100)
	for i, w := range weights {
		if x < w {
			return uint8(i)
		}
		x -= w
	}
	return uint8(len(weights) - 1)
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
