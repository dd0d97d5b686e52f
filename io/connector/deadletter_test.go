package connector

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestNewDeadLetter(t *testing.T) {
	type value struct {
		A int
		B string
	}
	tests := []struct {
		name string
		rec  Record
		want DeadLetter
	}{
		{"raw", Record{Raw: []byte(`{"a":`), Pos: "in.jsonl:3"},
			DeadLetter{Binding: "in", Position: "in.jsonl:3", Reason: "r", Record: `{"a":`}},
		{"cut", Record{Raw: []byte(`{"a":"xx`), RawSize: 20 << 20, Pos: "in.jsonl:4"},
			DeadLetter{Binding: "in", Position: "in.jsonl:4", Reason: "r", Record: `{"a":"xx`, Truncated: 20 << 20}},
		{"not UTF-8", Record{Raw: []byte("{\"a\":\"\xff\xfe\"}")},
			DeadLetter{Binding: "in", Reason: "r", Record: "{\"a\":\"\uFFFD\"}", RecordBase64: base64.StdEncoding.EncodeToString([]byte("{\"a\":\"\xff\xfe\"}"))}},
		{"decoded value", Record{Value: value{1, "x"}, Pos: "p"},
			DeadLetter{Binding: "in", Position: "p", Reason: "r", Record: `{"A":1,"B":"x"}`}},
		{"raw over value", Record{Value: value{1, "x"}, Raw: []byte("line")},
			DeadLetter{Binding: "in", Reason: "r", Record: "line"}},
		{"nothing", Record{Pos: "p"}, DeadLetter{Binding: "in", Position: "p", Reason: "r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewDeadLetter("in", tt.rec, "r")
			if got != tt.want {
				t.Errorf("NewDeadLetter = %+v, want %+v", got, tt.want)
			}
			b, err := json.Marshal(got)
			if err != nil || !utf8.Valid(b) || !json.Valid(b) {
				t.Fatalf("encoded as %q, %v", b, err)
			}
			var back DeadLetter
			if err := json.Unmarshal(b, &back); err != nil || back != got {
				t.Errorf("decoded %s as %+v, %v", b, back, err)
			}
			exact := []byte(back.Record)
			if back.RecordBase64 != "" {
				exact, _ = base64.StdEncoding.DecodeString(back.RecordBase64)
			}
			if tt.rec.Raw != nil && string(exact) != string(tt.rec.Raw) {
				t.Errorf("the record's bytes came back as %q, want %q", exact, tt.rec.Raw)
			}
		})
	}
}
