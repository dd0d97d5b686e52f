package events

import (
	"cmp"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustGenerate(t *testing.T, cfg GenConfig) ([]PageViewEvent, []ProfileEditEvent) {
	t.Helper()
	views, edits, err := Generate(cfg)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", cfg, err)
	}
	return views, edits
}

func TestEnsureDefaults(t *testing.T) {
	var c GenConfig
	c.EnsureDefaults()
	want := GenConfig{
		Seed: 1, PageViews: 100000, Profiles: 1000, ProfileEdits: 5000,
		Start: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), Span: 24 * time.Hour,
		Disorder: 2 * time.Minute, LateFraction: 0.001, LateBy: 6 * time.Hour,
		ProfileViewFraction: 0.5,
	}
	if c != want {
		t.Errorf("defaults\n got %+v\nwant %+v", c, want)
	}
	c.EnsureDefaults()
	if c != want {
		t.Errorf("EnsureDefaults is not idempotent: %+v", c)
	}
	n := GenConfig{PageViews: 40, ProfileEdits: -1, Disorder: -1, LateFraction: -1, ProfileViewFraction: -1}
	n.EnsureDefaults()
	if n.ProfileEdits != -1 || n.Disorder != -1 || n.LateFraction != -1 || n.ProfileViewFraction != -1 {
		t.Errorf("EnsureDefaults changed negative (none) fields: %+v", n)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  GenConfig
		want []string // substrings of the error; none for a valid config
	}{
		{"zero", GenConfig{}, nil},
		{"nones", GenConfig{ProfileEdits: -1, Disorder: -1, LateFraction: -1, ProfileViewFraction: -1}, nil},
		{"all profile views", GenConfig{ProfileViewFraction: 1, LateFraction: 1}, nil},
		{"short span without late views", GenConfig{Span: time.Minute, LateFraction: -1}, nil},
		{"one profile", GenConfig{Profiles: 1}, nil},
		{"negative views", GenConfig{PageViews: -3}, []string{"PageViews is -3"}},
		{"negative profiles", GenConfig{Profiles: -1}, []string{"Profiles is -1"}},
		{"too many profiles", GenConfig{Profiles: MaxProfiles + 1}, []string{"Profiles is 16777217"}},
		{"sub-ms span", GenConfig{Span: time.Microsecond, LateFraction: -1}, []string{"Span is 1µs"}},
		{"negative late-by", GenConfig{LateBy: -time.Hour}, []string{"LateBy is -1h0m0s"}},
		{"late fraction > 1", GenConfig{LateFraction: 1.5}, []string{"LateFraction is 1.5"}},
		{"profile view fraction > 1", GenConfig{ProfileViewFraction: 2}, []string{"ProfileViewFraction is 2"}},
		{"span too short for late views", GenConfig{Span: time.Hour}, []string{"Span is 1h0m0s, want more than LateBy+Disorder (6h2m0s)"}},
		{"every problem", GenConfig{PageViews: -1, Profiles: -1, LateFraction: 3, Span: 6 * time.Hour},
			[]string{"PageViews is -1", "Profiles is -1", "LateFraction is 3", "Span is 6h0m0s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: no error, want %q", tc.want)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "events: ") || strings.Contains(msg, "\n") {
				t.Errorf("error %q is not one line prefixed with events:", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
			if _, _, gerr := Generate(tc.cfg); gerr == nil || gerr.Error() != msg {
				t.Errorf("Generate error %v, want %q", gerr, msg)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	for _, cfg := range []GenConfig{
		{PageViews: 20000},
		{PageViews: 5000, Profiles: 1, Disorder: -1},
		{PageViews: 3000, Span: time.Minute, LateFraction: -1, ProfileViewFraction: 1},
	} {
		v1, e1 := mustGenerate(t, cfg)
		v2, e2 := mustGenerate(t, cfg)
		if !slices.Equal(v1, v2) || !slices.Equal(e1, e2) {
			t.Errorf("%+v: two runs with one seed differ", cfg)
		}
		other := cfg
		other.Seed = 2
		v3, e3 := mustGenerate(t, other)
		if slices.Equal(v1, v3) || slices.Equal(e1, e3) {
			t.Errorf("%+v: seeds 1 and 2 give the same events", cfg)
		}
	}
}

func TestEach(t *testing.T) {
	cfg := GenConfig{PageViews: 10000}
	views, edits := mustGenerate(t, cfg)

	// Views alone are the same as with edits, and so are edits alone.
	var onlyViews []PageViewEvent
	if err := cfg.Each(func(v PageViewEvent) error { onlyViews = append(onlyViews, v); return nil }, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(onlyViews, views) {
		t.Error("Each without edits gives other views than Generate")
	}
	var onlyEdits []ProfileEditEvent
	if err := cfg.Each(nil, func(e ProfileEditEvent) error { onlyEdits = append(onlyEdits, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(onlyEdits, edits) {
		t.Error("Each without views gives other edits than Generate")
	}

	// Each stops at the first error.
	stop := errors.New("stop")
	n := 0
	err := cfg.Each(func(PageViewEvent) error {
		if n++; n == 100 {
			return stop
		}
		return nil
	}, func(ProfileEditEvent) error { return nil })
	if !errors.Is(err, stop) || n != 100 {
		t.Errorf("Each returned %v after %d views, want stop after 100", err, n)
	}
}

func TestCounts(t *testing.T) {
	for _, tc := range []struct {
		cfg          GenConfig
		views, edits int
	}{
		{GenConfig{PageViews: 1000}, 1000, 50},
		{GenConfig{PageViews: 1000, ProfileEdits: 7}, 1000, 7},
		{GenConfig{PageViews: 1000, ProfileEdits: -1}, 1000, 0},
		{GenConfig{PageViews: 19}, 19, 0},
		{GenConfig{PageViews: 1, Profiles: 1}, 1, 0},
	} {
		views, edits := mustGenerate(t, tc.cfg)
		if len(views) != tc.views || len(edits) != tc.edits {
			t.Errorf("%+v: %d views and %d edits, want %d and %d", tc.cfg, len(views), len(edits), tc.views, tc.edits)
		}
	}
}

var hex8 = regexp.MustCompile(`^[0-9a-f]{8}$`)

func TestFieldsSet(t *testing.T) {
	start := time.Date(2014, 10, 13, 15, 51, 58, 123456789, time.UTC)
	cfg := GenConfig{PageViews: 20000, Profiles: 300, Start: start, Span: 12 * time.Hour}
	views, edits := mustGenerate(t, cfg)
	lo, hi := start.UnixMilli(), start.Add(12*time.Hour).UnixMilli()
	pages := map[string]int{}
	for _, v := range views {
		pages[v.PageKey]++
		ok := v.EventType == EventTypePageView &&
			v.Timestamp >= lo && v.Timestamp < hi &&
			v.ViewerID >= 1 && v.ViewerID <= 300 &&
			hex8.MatchString(v.SessionID) &&
			slices.Contains(trackingKeys, v.TrackingKey)
		if v.PageKey == PageKeyProfileView {
			ok = ok && v.ViewedProfileID >= 1 && v.ViewedProfileID <= 300 && v.ViewedProfileID != v.ViewerID
		} else {
			ok = ok && slices.Contains(otherPages, v.PageKey) && v.ViewedProfileID == 0
		}
		if !ok {
			t.Fatalf("bad page view %+v", v)
		}
	}
	if len(pages) != 1+len(otherPages) {
		t.Errorf("page keys %v, want all of them", pages)
	}
	for _, e := range edits {
		p := e.Profile
		if e.EventType != EventTypeProfileEdit || e.Timestamp < lo || e.Timestamp >= hi ||
			e.ProfileID < 1 || e.ProfileID > 300 || p.JobTitle == "" || p.Industry == "" || p.Location == "" {
			t.Fatalf("bad profile edit %+v", e)
		}
	}
	if views[0].Timestamp-lo > int64(time.Minute/time.Millisecond) {
		t.Errorf("first view at %d, want near the start %d", views[0].Timestamp, lo)
	}
}

// lags returns, for each event in arrival order, how far its event time lies
// behind the greatest event time that arrived before it.
func lags(ts []int64) []int64 {
	out := make([]int64, len(ts))
	maxSeen := ts[0]
	for i, t := range ts {
		maxSeen = max(maxSeen, t)
		out[i] = maxSeen - t
	}
	return out
}

func timestamps[E PageViewEvent | ProfileEditEvent](events []E) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		switch e := any(e).(type) {
		case PageViewEvent:
			out[i] = e.Timestamp
		case ProfileEditEvent:
			out[i] = e.Timestamp
		}
	}
	return out
}

func TestDisorder(t *testing.T) {
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	for _, tc := range []struct {
		name string
		cfg  GenConfig
		// very late views are counted as the views more than Disorder
		// behind; want between lo and hi of them.
		lo, hi int
	}{
		{"defaults", GenConfig{PageViews: 200000}, 150, 250},
		{"more late", GenConfig{PageViews: 50000, LateFraction: 0.02}, 850, 1150},
		{"no late", GenConfig{PageViews: 50000, LateFraction: -1}, 0, 0},
		{"in order", GenConfig{PageViews: 50000, Disorder: -1, LateFraction: -1}, 0, 0},
		{"in order but late", GenConfig{PageViews: 50000, Disorder: -1, LateFraction: 0.01}, 400, 600},
		{"wide disorder", GenConfig{PageViews: 50000, Disorder: 30 * time.Minute, LateFraction: 0.01}, 400, 600},
		{"sparse", GenConfig{PageViews: 500, LateFraction: -1}, 0, 0},
		{"short span", GenConfig{PageViews: 50000, Span: 10 * time.Minute, Disorder: 10 * time.Second, LateFraction: -1}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			views, edits := mustGenerate(t, tc.cfg)
			c := tc.cfg
			c.EnsureDefaults()
			disorder := max(ms(c.Disorder), 0)
			late := 0
			for i, lag := range lags(timestamps(views)) {
				if lag <= disorder {
					continue
				}
				late++
				// A very late view is late for any window of up to 1h
				// under a watermark 5m behind the data seen, with any
				// allowed lateness under 4h, if LateBy allows.
				if c.LateBy >= time.Hour+5*time.Minute+4*time.Hour+c.Disorder+10*time.Minute {
					if lag < ms(time.Hour+5*time.Minute+4*time.Hour) {
						t.Fatalf("view %d (%+v) is only %v behind", i, views[i], time.Duration(lag)*time.Millisecond)
					}
				}
			}
			if late < tc.lo || late > tc.hi {
				t.Errorf("%d of %d views are very late, want %d to %d", late, len(views), tc.lo, tc.hi)
			}
			for i, lag := range lags(timestamps(edits)) {
				if lag > disorder {
					t.Fatalf("edit %d (%+v) is %dms behind, more than Disorder", i, edits[i], lag)
				}
			}
		})
	}
}

func TestSessions(t *testing.T) {
	views, _ := mustGenerate(t, GenConfig{PageViews: 50000})
	byViewer := map[int64][]PageViewEvent{}
	owner := map[string]int64{}
	for _, v := range views {
		byViewer[v.ViewerID] = append(byViewer[v.ViewerID], v)
		if o, ok := owner[v.SessionID]; ok && o != v.ViewerID {
			t.Fatalf("session %s of viewers %d and %d", v.SessionID, o, v.ViewerID)
		}
		owner[v.SessionID] = v.ViewerID
	}
	gap := SessionGap.Milliseconds()
	for id, vs := range byViewer {
		slices.SortStableFunc(vs, func(a, b PageViewEvent) int { return cmp.Compare(a.Timestamp, b.Timestamp) })
		for i := 1; i < len(vs); i++ {
			a, b := vs[i-1], vs[i]
			same := a.SessionID == b.SessionID
			if same != (b.Timestamp-a.Timestamp < gap) {
				t.Fatalf("viewer %d: views at %d (%s) and %d (%s)", id, a.Timestamp, a.SessionID, b.Timestamp, b.SessionID)
			}
			if same && a.TrackingKey != b.TrackingKey {
				t.Fatalf("session %s has tracking keys %s and %s", a.SessionID, a.TrackingKey, b.TrackingKey)
			}
		}
	}
	perViewer := float64(len(owner)) / float64(len(byViewer))
	perSession := float64(len(views)) / float64(len(owner))
	if perViewer < 2 || perSession < 3 {
		t.Errorf("%.1f sessions per viewer and %.1f views per session: sessions are not meaningful", perViewer, perSession)
	}
}

func TestSkewAndPages(t *testing.T) {
	for _, pvf := range []float64{0.5, 0.2, 1, -1} {
		views, edits := mustGenerate(t, GenConfig{PageViews: 50000, ProfileViewFraction: pvf})
		viewed := map[int64]int{}
		for _, v := range views {
			if v.PageKey == PageKeyProfileView {
				viewed[v.ViewedProfileID]++
			}
		}
		n := 0
		for _, c := range viewed {
			n += c
		}
		want := max(pvf, 0)
		if got := float64(n) / float64(len(views)); got < want-0.02 || got > want+0.02 {
			t.Errorf("ProfileViewFraction %v: %.3f of views are profile views", pvf, got)
		}
		if n > 0 && viewed[1] < 10*n/1000 {
			t.Errorf("the hottest profile has %d of %d profile views, want ten times its share", viewed[1], n)
		}
		edited := map[int64][]Profile{}
		for _, e := range edits {
			edited[e.ProfileID] = append(edited[e.ProfileID], e.Profile)
		}
		if len(edited[1]) < 5*len(edits)/1000 {
			t.Errorf("the most edited profile has %d of %d edits", len(edited[1]), len(edits))
		}
	}
}

func TestEditsChangeOneField(t *testing.T) {
	_, edits := mustGenerate(t, GenConfig{PageViews: 40000, Disorder: -1})
	last := map[int64]Profile{}
	for _, e := range edits {
		p, ok := last[e.ProfileID]
		last[e.ProfileID] = e.Profile
		if !ok {
			continue
		}
		changed := 0
		for _, d := range [][2]string{{p.JobTitle, e.Profile.JobTitle}, {p.Industry, e.Profile.Industry}, {p.Location, e.Profile.Location}} {
			if d[0] != d[1] {
				changed++
			}
		}
		if changed != 1 {
			t.Fatalf("profile %d went from %+v to %+v", e.ProfileID, p, e.Profile)
		}
	}
}

func BenchmarkEach(b *testing.B) {
	cfg := GenConfig{PageViews: b.N}
	b.ReportAllocs()
	if err := cfg.Each(func(PageViewEvent) error { return nil }, func(ProfileEditEvent) error { return nil }); err != nil {
		b.Fatal(err)
	}
}
