package events

import (
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const (
	samplePageView    = `{"eventType":"PageViewEvent","timestamp":1413215518000,"viewerId":1234,"sessionId":"fa1afe10","pageKey":"profile-view","viewedProfileId":4321,"trackingKey":"invitation-email"}`
	sampleProfileEdit = `{"eventType":"ProfileEditEvent","timestamp":1413215518000,"profileId":1234,"profile":{"jobTitle":"Software Engineer","industry":"Software","location":"Cambridge, UK"}}`
)

// shape replaces every leaf of a decoded JSON value by the name of its JSON
// type, so that two records compare equal when they have the same fields of
// the same types.
func shape(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, x := range v {
			m[k] = shape(x)
		}
		return m
	case float64:
		return "number"
	case string:
		return "string"
	default:
		return reflect.TypeOf(v).String()
	}
}

func jsonShape(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return shape(v)
}

func TestSampleRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		sample string
		into   any
	}{
		{samplePageView, &PageViewEvent{}},
		{sampleProfileEdit, &ProfileEditEvent{}},
	} {
		dec := json.NewDecoder(strings.NewReader(tc.sample))
		dec.DisallowUnknownFields()
		if err := dec.Decode(tc.into); err != nil {
			t.Fatalf("decode %s: %v", tc.sample, err)
		}
		got, err := json.Marshal(tc.into)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.sample {
			t.Errorf("round trip:\n got %s\nwant %s", got, tc.sample)
		}
	}
}

func TestGeneratedJSONShape(t *testing.T) {
	views, edits, err := Generate(GenConfig{PageViews: 200})
	if err != nil {
		t.Fatal(err)
	}
	wantView := jsonShape(t, []byte(samplePageView))
	wantEdit := jsonShape(t, []byte(sampleProfileEdit))
	for _, v := range []PageViewEvent{views[0], views[len(views)-1]} {
		b, _ := json.Marshal(v)
		if got := jsonShape(t, b); !reflect.DeepEqual(got, wantView) {
			t.Errorf("page view %s\n has shape %v\nwant %v", b, got, wantView)
		}
	}
	b, _ := json.Marshal(edits[0])
	if got := jsonShape(t, b); !reflect.DeepEqual(got, wantEdit) {
		t.Errorf("profile edit %s\n has shape %v\nwant %v", b, got, wantEdit)
	}
	keys := slices.Sorted(maps.Keys(wantView.(map[string]any)))
	if want := []string{"eventType", "pageKey", "sessionId", "timestamp", "trackingKey", "viewedProfileId", "viewerId"}; !slices.Equal(keys, want) {
		t.Errorf("sample keys %v, want %v", keys, want)
	}
}

func TestEventTime(t *testing.T) {
	if got := (PageViewEvent{Timestamp: 1413215518000}).EventTime().String(); got != "2014-10-13T15:51:58.000Z" {
		t.Errorf("PageViewEvent.EventTime = %s", got)
	}
	if got := (ProfileEditEvent{Timestamp: 1413215518000}).EventTime(); got != 1413215518000 {
		t.Errorf("ProfileEditEvent.EventTime = %d", got)
	}
}
