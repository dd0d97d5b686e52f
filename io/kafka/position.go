package kafka

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/weir-dev/weir/io/connector"
)

// splitPos is a partition reader's position as a checkpoint keeps it: the
// offset of the next record, with the ids of the topic and the cluster the
// offset belongs to. An offset means something only in one incarnation of
// a topic: after the topic is deleted and created again under the same name,
// or when the name is bound to another cluster, the same offset names other
// records, and a job resumed there would read the wrong ones and say
// nothing. The ids let OpenAt refuse that instead.
//
// It is written as JSON, {"offset":N,"topicId":"...","clusterId":"..."}.
// Weir before topic ids wrote the offset alone, in decimal; such a position
// is still read, and resumed from unchecked (there is nothing to check it
// against); the next checkpoint stores the ids. An id the broker does not
// give (topic ids came with Kafka 2.8) is left out and not checked.
type splitPos struct {
	Offset    int64  `json:"offset"`
	TopicID   string `json:"topicId,omitempty"`
	ClusterID string `json:"clusterId,omitempty"`
}

// encode writes p as a reader's Position.
func (p splitPos) encode() []byte {
	b, _ := json.Marshal(p) // cannot fail: an int and two strings
	return b
}

// parseSplitPos reads a position of split id: JSON, or a bare offset from
// older Weir.
func parseSplitPos(id string, b []byte) (splitPos, error) {
	var p splitPos
	if len(b) > 0 && b[0] == '{' {
		if err := json.Unmarshal(b, &p); err != nil || p.Offset < 0 {
			return p, fmt.Errorf("kafka: bad position %q for %s", b, id)
		}
		return p, nil
	}
	off, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil || off < 0 {
		return p, fmt.Errorf("kafka: bad position %q for %s", b, id)
	}
	return splitPos{Offset: off}, nil
}

// topicIDString is a topic id as Kafka's tools print it, or "" when the
// broker gave none (all zeros).
func topicIDString(id kadm.TopicID) string {
	if id == (kadm.TopicID{}) {
		return ""
	}
	return id.String()
}

// checkSameSource refuses a stored position whose topic or cluster is not
// the one the source reads now. Ids missing on either side are not
// compared.
func checkSameSource(topic string, stored, now splitPos) error {
	if stored.ClusterID != "" && now.ClusterID != "" && stored.ClusterID != now.ClusterID {
		return fmt.Errorf("%w: kafka: topic %q is on another cluster than at the checkpoint (cluster id %s then, %s now), where its offsets name other records: bind the brokers of the checkpoint's cluster, or start over with a new --checkpoint-dir",
			connector.ErrSourceChanged, topic, stored.ClusterID, now.ClusterID)
	}
	if stored.TopicID != "" && now.TopicID != "" && stored.TopicID != now.TopicID {
		return fmt.Errorf("%w: kafka: topic %q was deleted and created again since the checkpoint (topic id %s then, %s now), so its offsets name other records: start over with a new --checkpoint-dir to read the new topic from its start",
			connector.ErrSourceChanged, topic, stored.TopicID, now.TopicID)
	}
	return nil
}
