package kafka_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/weir-dev/weir/io/connector"
	"github.com/weir-dev/weir/io/kafka"
)

// TestCredentialsInAURIAreRefused: Weir does not authenticate to Kafka
// yet, so a kafka:// URI with user info would connect without it; every
// way in refuses it in one line that never shows the password.
func TestCredentialsInAURIAreRefused(t *testing.T) {
	ctx := context.Background()
	addr := cluster(t, 1, "in")
	secret := "s3cret-pw"
	u := "kafka://alice:" + secret + "@" + addr + "/in"
	check := func(what string, err error, want string) {
		t.Helper()
		if !errors.Is(err, kafka.ErrBadURI) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line wrapping ErrBadURI saying %q, without the password", what, err, want)
		}
	}
	_, err := connector.OpenSource(ctx, connector.SourceSpec{Binding: "in", URI: uri(t, u), Type: reflect.TypeFor[event]()})
	check("source", err, "does not authenticate to Kafka")
	_, err = connector.OpenSource(ctx, connector.SourceSpec{Binding: "in", URI: uri(t, "kafka://alice@"+addr+"/in"), Type: reflect.TypeFor[event]()})
	check("source with a user alone", err, "does not authenticate to Kafka")
	_, err = connector.OpenSink(ctx, connector.SinkSpec{Binding: "out", URI: uri(t, u), Type: reflect.TypeFor[event]()})
	check("sink", err, "does not authenticate to Kafka")
	_, err = kafka.OpenChangelog(ctx, u, kafka.ChangelogConfig{Operators: map[uint32]string{1: "Count"}, KeyGroups: 128})
	check("changelog", err, "does not authenticate to Kafka")
	_, err = kafka.OpenChangelog(ctx, "kafka://alice:"+secret+"@[::1/x", kafka.ChangelogConfig{KeyGroups: 128})
	check("changelog URI that does not parse", err, "want kafka://host:port/PREFIX")
	_, err = kafka.JoinGroup(ctx, kafka.MemberConfig{Sources: []string{u}, Group: "g", Assigned: func([]int32, int32, error) {}, Revoked: func() {}, Lost: func() {}})
	check("consumer group", err, "does not authenticate to Kafka")
	_, err = kafka.JoinGroup(ctx, kafka.MemberConfig{Sources: []string{"kafka://alice:" + secret + "@[::1/x"}, Group: "g", Assigned: func([]int32, int32, error) {}, Revoked: func() {}, Lost: func() {}})
	check("consumer group URI that does not parse", err, "kafka:// sources only")
}
