package runner

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLiveBindings(t *testing.T) {
	o := &Options{
		Bindings: map[string]string{"views": "file:///h/", "edits": "file:///e.jsonl"},
		Then:     map[string]string{"views": "kafka://b:9092/views?until=latest"},
	}
	h, err := parseHandover("2026-11-01T10:00:00Z")
	if err != nil {
		t.Fatal(err)
	}
	live, err := liveBindings(o, h)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(live["views"])
	if u.Query().Get("start") != "1793527200000" || u.Query().Get("until") != "latest" || live["edits"] != "file:///e.jsonl" {
		t.Errorf("by time: %v", live)
	}

	f := filepath.Join(t.TempDir(), "_kafka-offsets.json")
	os.WriteFile(f, []byte(`{"topic":"views","offsets":{"0":12,"1":7}}`), 0o644)
	if h, err = parseHandover("file://" + f); err != nil {
		t.Fatal(err)
	}
	live, err = liveBindings(o, h)
	if err != nil {
		t.Fatal(err)
	}
	u, _ = url.Parse(live["views"])
	if u.Query().Get("offsets") != "0:12,1:7" || u.Query().Get("start") != "" {
		t.Errorf("by offsets: %v", live)
	}

	o.Then = map[string]string{"views": "kafka://b:9092/other"}
	if _, err := liveBindings(o, h); err == nil || !strings.Contains(err.Error(), `topic "views"`) {
		t.Errorf("a handover for a topic no --then reads: %v", err)
	}
	o.Then = map[string]string{"nope": "kafka://b:9092/views"}
	if _, err := liveBindings(o, h); err == nil {
		t.Error("--then for a name with no history binding")
	}
	if _, err := parseHandover("file:///does/not/exist.json"); err == nil {
		t.Error("a missing handover file")
	}
}
