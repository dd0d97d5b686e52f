package kafka

import (
	"encoding/json"
	"fmt"

	"github.com/weir-dev/weir/io/connector"
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
