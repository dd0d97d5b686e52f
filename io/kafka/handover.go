package kafka

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/windowing"
)

// Handover is where a copy of a topic's history ends: the offset of the
// first record not in it, by partition. A job that backfills from the copy
// and then streams from the topic starts there (offsets=), so that no
// record is missed or read twice at the seam. weir cp writes it beside a
// directory it copies a bounded topic into, as HandoverFile.
type Handover struct {
	Topic   string          `json:"topic"`
	Offsets map[int32]int64 `json:"offsets"`
}

// HandoverFile is the name of the handover beside copied files; readers of
// the directory skip it (a leading underscore).
const HandoverFile = "_kafka-offsets.json"

// SourceHandover returns where a bounded kafka:// source ends.
func SourceHandover(src connector.Source) (Handover, bool) {
	s, ok := src.(*source)
	if !ok || s.o.until.kind == "" {
		return Handover{}, false
	}
	h := Handover{Topic: s.o.topic, Offsets: map[int32]int64{}}
	for _, sp := range s.splits {
		x := sp.(*split)
		h.Offsets[x.partition] = x.end
	}
	return h, true
}

// ParseHandover reads a handover file's content.
func ParseHandover(b []byte) (Handover, error) {
	var h Handover
	if err := json.Unmarshal(b, &h); err != nil || h.Topic == "" {
		return h, fmt.Errorf("kafka: not a handover file (want {\"topic\": ..., \"offsets\": {\"0\": N, ...}})")
	}
	return h, nil
}

// kafka:// sources continue other data (connector.Continuer): a bounded
// read ends at offsets, and a source starts after them with offsets=, or at
// a time with start=TIME.
var _ connector.Continuer = kafkaConnector{}

// UntilNow bounds u at the topic's end offsets when it opens (until=latest),
// unless u has an until= of its own.
func (kafkaConnector) UntilNow(u *url.URL) (*url.URL, bool) {
	if u.Query().Get("until") != "" {
		return u, false
	}
	return withQuery(u, "until", "latest"), true
}

// HandoverOf is where a bounded kafka:// source ends, as a handover file
// holds it.
func (kafkaConnector) HandoverOf(s connector.Source) (connector.Handover, bool) {
	h, ok := SourceHandover(s)
	if !ok {
		return nil, false
	}
	b, err := json.Marshal(h)
	return b, err == nil
}

// After starts u at a handover's offsets when they are for u's topic.
func (kafkaConnector) After(u *url.URL, b connector.Handover) (*url.URL, bool, error) {
	h, err := ParseHandover(b)
	if err != nil {
		return nil, false, err
	}
	topic := strings.Trim(u.Path, "/")
	switch {
	case topic == h.Topic:
		return withQuery(u, "offsets", FormatOffsets(h.Offsets)), true, nil
	case u.Query().Get("start") != "":
		return u, false, nil
	}
	return nil, false, fmt.Errorf("kafka: the handover is for topic %q, not %q: say where %s starts with ?start= (or it would read its whole history again)", h.Topic, topic, u.Redacted())
}

// At starts u at the first offset of time t (start=MILLIS), unless u has a
// start= of its own.
func (kafkaConnector) At(u *url.URL, t windowing.Time) *url.URL {
	if u.Query().Get("start") != "" {
		return u
	}
	return withQuery(u, "start", strconv.FormatInt(int64(t), 10))
}

// withQuery returns a copy of u with the query parameter k set to v.
func withQuery(u *url.URL, k, v string) *url.URL {
	c := *u
	q := c.Query()
	q.Set(k, v)
	c.RawQuery = q.Encode()
	return &c
}
