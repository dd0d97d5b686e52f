// Package windowing holds Weir's event-time model: timestamps, windows,
// window functions (fixed, sliding, sessions, global, and custom ones through
// the WindowFn interface), triggers, panes, allowed lateness and the
// watermark strategy of sources.
//
// The semantics are Beam's, so that Beam pipelines can later run on Weir
// unchanged: a window's on-time pane fires when the watermark passes the
// window's maximum timestamp (End-1); data is droppably late when the
// watermark has passed the window's maximum timestamp plus the allowed
// lateness; a pane carries its index and timing (early, on time, late).
//
// Everything here is pure: no goroutines, no I/O, no state backend. The
// trigger state machine (trigger.go) is a set of functions on a small value
// that the runner stores per key and window, which is what makes triggers
// testable with data-driven tests (testdata/triggers).
//
// Dependency direction: windowing imports only the standard library; every
// other Weir package may import it.
package windowing
