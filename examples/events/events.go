// Package events holds the event types of Weir's examples — page views and
// profile edits of a professional network — and a deterministic generator of
// them with controlled out-of-orderness, very late data and viewer sessions,
// so that the examples' windowed answers can be checked exactly.
//
// The JSON (and Parquet) field names are those of the records the examples
// read, for instance
//
//	{"eventType":"PageViewEvent","timestamp":1413215518000,"viewerId":1234,
//	 "sessionId":"fa1afe10","pageKey":"profile-view","viewedProfileId":4321,
//	 "trackingKey":"invitation-email"}
//
// Dependency direction: events imports only the standard library and
// windowing; the examples and cmd/weir import events.
package events

import (
	"time"

	"github.com/weir-dev/weir/windowing"
)

// Values of the eventType field.
const (
	EventTypePageView    = "PageViewEvent"
	EventTypeProfileEdit = "ProfileEditEvent"
)

// PageKeyProfileView is the pageKey of a view of a member's profile; only such
// views carry a ViewedProfileID.
const PageKeyProfileView = "profile-view"

// SessionGap is the inactivity gap that separates a viewer's sessions: two
// consecutive views of one viewer less than SessionGap apart (in event time)
// have the same SessionID, views SessionGap or more apart have different ones.
// Session windows with this gap, keyed by viewer, therefore group exactly the
// views of one SessionID.
const SessionGap = 30 * time.Minute

// PageViewEvent is one page viewed by a member.
type PageViewEvent struct {
	// EventType is always EventTypePageView.
	EventType string `json:"eventType"`
	// Timestamp is the event time, in milliseconds since the Unix epoch.
	Timestamp int64 `json:"timestamp"`
	// ViewerID is the member who viewed the page.
	ViewerID int64 `json:"viewerId"`
	// SessionID names the viewer's activity session (see SessionGap).
	SessionID string `json:"sessionId"`
	// PageKey names the kind of page: PageKeyProfileView, "feed", "jobs",
	// "search", ...
	PageKey string `json:"pageKey"`
	// ViewedProfileID is the member whose profile was viewed when PageKey is
	// PageKeyProfileView, and zero on other pages.
	ViewedProfileID int64 `json:"viewedProfileId"`
	// TrackingKey says how the viewer came to the site for this session
	// ("invitation-email", "search-result", ...).
	TrackingKey string `json:"trackingKey"`
}

// EventTime returns the view's timestamp as event time.
func (e PageViewEvent) EventTime() windowing.Time { return windowing.Time(e.Timestamp) }

// ProfileEditEvent is a member's edit of their profile. It carries the whole
// profile as it is after the edit.
type ProfileEditEvent struct {
	// EventType is always EventTypeProfileEdit.
	EventType string `json:"eventType"`
	// Timestamp is the event time, in milliseconds since the Unix epoch.
	Timestamp int64 `json:"timestamp"`
	// ProfileID is the member whose profile changed.
	ProfileID int64 `json:"profileId"`
	// Profile is the profile after the edit.
	Profile Profile `json:"profile"`
}

// EventTime returns the edit's timestamp as event time.
func (e ProfileEditEvent) EventTime() windowing.Time { return windowing.Time(e.Timestamp) }

// Profile is the part of a member's profile that the examples use.
type Profile struct {
	JobTitle string `json:"jobTitle"`
	Industry string `json:"industry"`
	Location string `json:"location"`
}
