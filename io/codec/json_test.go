package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/weir-dev/weir/io/connector"
)

type point struct {
	X int `json:"x"`
	Y int `json:"y"`
}

type event struct {
	ID     int64             `json:"id"`
	User   string            `json:"user"`
	Score  *float64          `json:"score"`
	Tags   []string          `json:"tags"`
	At     time.Time         `json:"at"`
	Where  point             `json:"where"`
	Attrs  map[string]string `json:"attrs,omitempty"`
	hidden int
}

func ptr[T any](v T) *T { return &v }

func TestJSONRoundTrip(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 30, 0, 123_000_000, time.UTC)
	tests := []struct {
		name string
		v    any
		line string
	}{
		{"struct", event{ID: 7, User: "ann", Score: ptr(2.5), Tags: []string{"a", "b"}, At: at, Where: point{1, 2}},
			`{"id":7,"user":"ann","score":2.5,"tags":["a","b"],"at":"2024-05-01T12:30:00.123Z","where":{"x":1,"y":2}}`},
		{"struct nulls", event{ID: 8},
			`{"id":8,"user":"","score":null,"tags":null,"at":"0001-01-01T00:00:00Z","where":{"x":0,"y":0}}`},
		{"empty slice", event{Tags: []string{}},
			`{"id":0,"user":"","score":null,"tags":[],"at":"0001-01-01T00:00:00Z","where":{"x":0,"y":0}}`},
		{"map", map[string]any{"a": 1.0, "b": "x", "c": []any{true, nil}, "d": map[string]any{"e": "<&>"}},
			`{"a":1,"b":"x","c":[true,null],"d":{"e":"<&>"}}`},
		{"int", 42, `42`},
		{"string", "héllo\n", `"héllo\n"`},
		{"float", 1.5, `1.5`},
		{"bool", true, `true`},
		{"bytes", []byte("hi"), `"aGk="`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ := reflect.TypeOf(tt.v)
			var buf bytes.Buffer
			w, err := NewJSONWriter(&buf, typ)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write([]any{tt.v}); err != nil {
				t.Fatal(err)
			}
			if got := buf.String(); got != tt.line+"\n" {
				t.Errorf("encoded %s, want %s", got, tt.line)
			}
			d, err := NewJSONDecoder(typ)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Decode([]byte(tt.line))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.v) {
				t.Errorf("decoded %#v, want %#v", got, tt.v)
			}
		})
	}
}

func TestJSONDecodeIgnoresUnknownFields(t *testing.T) {
	d, _ := NewJSONDecoder(reflect.TypeFor[point]())
	got, err := d.Decode([]byte(`{"x":1,"z":{"deep":[1,2]},"y":2}`))
	if err != nil || got != (point{1, 2}) {
		t.Errorf("Decode = %v, %v; want {1 2}", got, err)
	}
}

func TestJSONDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		typ  reflect.Type
		line string
		want string // substring of the reason
	}{
		{"syntax", reflect.TypeFor[point](), `{"x":1,}`, "bad JSON at byte 8: invalid character '}'"},
		{"truncated", reflect.TypeFor[point](), `{"x":1`, "unexpected end of JSON input"},
		{"trailing", reflect.TypeFor[point](), `{"x":1} {}`, "after top-level value"},
		{"wrong type", reflect.TypeFor[point](), `{"x":"1"}`, `field "x": JSON string where int is wanted`},
		{"float into int", reflect.TypeFor[point](), `{"y":1.5}`, `field "y": JSON number 1.5 where int is wanted`},
		{"nested field", reflect.TypeFor[event](), `{"where":{"x":true}}`, `field "where.x": JSON bool where int is wanted`},
		{"not an object", reflect.TypeFor[point](), `[1,2]`, "JSON array where codec.point is wanted"},
		{"bad time", reflect.TypeFor[event](), `{"at":"yesterday"}`, "bad value for codec.event: parsing time"},
		{"basic", reflect.TypeFor[int](), `"x"`, "JSON string where int is wanted"},
		{"map of ints", reflect.TypeFor[map[string]int](), `{"a":"b"}`, `JSON string where int is wanted`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewJSONDecoder(tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			v, err := d.Decode([]byte(tt.line))
			if err == nil {
				t.Fatalf("Decode(%s) = %v, want an error", tt.line, v)
			}
			if v != nil {
				t.Errorf("Decode returned %v with its error", v)
			}
			if !errors.Is(err, ErrDecode) {
				t.Errorf("error %v does not wrap ErrDecode", err)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "codec: cannot decode: ") || !strings.Contains(msg, tt.want) {
				t.Errorf("error = %q, want it to contain %q", msg, tt.want)
			}
			if strings.ContainsAny(msg, "\r\n") {
				t.Errorf("error %q spans lines", msg)
			}
		})
	}
}

func TestJSONUnsupportedTypes(t *testing.T) {
	for _, typ := range []reflect.Type{nil, reflect.TypeFor[chan int](), reflect.TypeFor[func()](), reflect.TypeFor[map[point]int]()} {
		if _, err := NewJSONDecoder(typ); !errors.Is(err, connector.ErrUnsupported) {
			t.Errorf("NewJSONDecoder(%v) err = %v, want ErrUnsupported", typ, err)
		}
	}
}

func TestJSONWriterRejectsOtherTypes(t *testing.T) {
	w, _ := NewJSONWriter(&bytes.Buffer{}, reflect.TypeFor[point]())
	if err := w.Write([]any{"x"}); err == nil || !strings.Contains(err.Error(), "codec.point") {
		t.Errorf("Write(string) err = %v, want one naming codec.point", err)
	}
	if err := w.Write([]any{&point{1, 2}}); err != nil {
		t.Errorf("Write(*point) err = %v", err)
	}
}

// FuzzJSONDecode checks that decoding never panics, that its errors are one
// line, and that what it decodes encodes to a line that decodes to the same
// encoding.
func FuzzJSONDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":7,"user":"ann","score":2.5,"tags":["a","b"],"at":"2024-05-01T12:30:00.123Z","where":{"x":1,"y":2}}`,
		`{"id":"x"}`, `{"at":"2024-05-01T12:30:00+02:00"}`, `{"attrs":{"k":"v"}}`, `null`, `[`, `{"id":1e400}`,
		"{\"user\":\"\xff\"}", `{"where":{"x":-0}}`, ` {} `,
		`{"viewedProfileId":null,"tags":[1,null],"maybe":{"x":null},"attrs":{"a":null},"any":[null]}`,
		`{"vi\u0065wedProfileId" : null , "Raw":{"x":null}}`,
	} {
		f.Add([]byte(s))
	}
	types := []reflect.Type{reflect.TypeFor[event](), reflect.TypeFor[map[string]any](), reflect.TypeFor[float64](), reflect.TypeFor[view]()}
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, typ := range types {
			d, _ := NewJSONDecoder(typ)
			v, err := d.Decode(line)
			if err != nil {
				if !errors.Is(err, ErrDecode) || strings.ContainsAny(err.Error(), "\r\n") {
					t.Fatalf("Decode(%q) as %s: bad error %q", line, typ, err)
				}
				continue
			}
			if !utf8.Valid(line) {
				t.Fatalf("Decode(%q) as %s read a line that is not UTF-8", line, typ)
			}
			if reflect.TypeOf(v) != typ {
				t.Fatalf("Decode(%q) returned %T, want %s", line, v, typ)
			}
			once := encode(t, typ, v)
			v2, err := d.Decode(bytes.TrimSuffix(once, []byte("\n")))
			if err != nil {
				t.Fatalf("re-decoding %q (from %q): %v", once, line, err)
			}
			if twice := encode(t, typ, v2); !bytes.Equal(once, twice) {
				t.Fatalf("round trip of %q as %s: %q then %q", line, typ, once, twice)
			}
		}
	})
}

func encode(t *testing.T, typ reflect.Type, v any) []byte {
	var buf bytes.Buffer
	w, err := NewJSONWriter(&buf, typ)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write([]any{v}); err != nil {
		t.Fatalf("encoding %#v: %v", v, err)
	}
	return buf.Bytes()
}

type view struct {
	ViewerID        int64          `json:"viewerId"`
	ViewedProfileID int64          `json:"viewedProfileId"`
	Ref             *string        `json:"ref"`
	Tags            []int          `json:"tags"`
	Attrs           map[string]int `json:"attrs"`
	Any             any            `json:"any"`
	Raw             json.RawMessage
	At              time.Time `json:"at"`
	Where           point     `json:"where"`
	Maybe           *point    `json:"maybe"`
	Pair            [2]int    `json:"pair"`
	embedded
}

type embedded struct {
	Depth int `json:"depth"`
}

// A null where the record type has no room for one, and a string that is
// not UTF-8, are refused with a reason naming the field; nulls where there
// is room are read as encoding/json reads them.
func TestJSONDecodeNullsAndUTF8(t *testing.T) {
	tests := []struct {
		name string
		typ  reflect.Type
		line string
		want string // the reason; "" for a line that decodes
	}{
		{"null int", reflect.TypeFor[view](), `{"viewerId":1,"viewedProfileId":null}`,
			"field viewedProfileId is null; the record type's field is not a pointer"},
		{"null key other case", reflect.TypeFor[view](), `{"VIEWEDPROFILEID":null}`,
			"field VIEWEDPROFILEID is null; the record type's field is not a pointer"},
		{"null escaped key", reflect.TypeFor[view](), `{"viewed\u0050rofileId":null}`,
			"field viewedProfileId is null"},
		{"null time", reflect.TypeFor[view](), `{"at":null}`, "field at is null"},
		{"null struct", reflect.TypeFor[view](), `{"where":null}`, "field where is null"},
		{"null nested", reflect.TypeFor[view](), `{"where":{"x":1,"y":null}}`, "field where.y is null"},
		{"null below a pointer", reflect.TypeFor[view](), `{"maybe":{"x":null}}`, "field maybe.x is null"},
		{"null element", reflect.TypeFor[view](), `{"tags":[1,null]}`, "field tags[1] is null"},
		{"null map value", reflect.TypeFor[view](), `{"attrs":{"a":1,"b":null}}`, "field attrs.b is null"},
		{"null array", reflect.TypeFor[view](), `{"pair":null}`, "field pair is null"},
		{"null embedded", reflect.TypeFor[view](), `{"depth":null}`, "field depth is null"},
		{"null record", reflect.TypeFor[view](), `null`, "the record is null; the record type is not a pointer"},
		{"null basic", reflect.TypeFor[int](), `null`, "the record is null"},
		{"nulls with room", reflect.TypeFor[view](),
			`{"ref":null,"tags":null,"attrs":null,"any":null,"Raw":null,"maybe":null,"where":{"x":1},"unknown":null}`, ""},
		{"null in any", reflect.TypeFor[view](), `{"any":{"a":null},"Raw":{"b":null}}`, ""},
		{"null in a string", reflect.TypeFor[view](), `{"ref":"null","viewedProfileId":3}`, ""},
		{"map of any", reflect.TypeFor[map[string]any](), `{"a":null}`, ""},
		{"bad UTF-8 value", reflect.TypeFor[event](), "{\"id\":1,\"user\":\"an\xffn\"}", "field user is not valid UTF-8"},
		{"bad UTF-8 nested", reflect.TypeFor[map[string]any](), "{\"a\":{\"b\":[\"x\",\"\xc3\"]}}", "field a.b[1] is not valid UTF-8"},
		{"bad UTF-8 unknown field", reflect.TypeFor[point](), "{\"x\":1,\"note\":\"\xed\xa0\x80\"}", "field note is not valid UTF-8"},
		{"bad UTF-8 key", reflect.TypeFor[point](), "{\"x\xff\":1}", "field name \"x\ufffd\" is not valid UTF-8"},
		{"bad UTF-8 raw message", reflect.TypeFor[json.RawMessage](), "{\"a\":\"\xff\"}", "field a is not valid UTF-8"},
		{"bad UTF-8 string", reflect.TypeFor[string](), "\"\xff\"", "the record is a string that is not valid UTF-8"},
		{"good UTF-8", reflect.TypeFor[event](), `{"user":"Zoë \u00e9 日本"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := NewJSONDecoder(tt.typ)
			if err != nil {
				t.Fatal(err)
			}
			v, err := d.Decode([]byte(tt.line))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Decode(%s): %v", tt.line, err)
				}
				return
			}
			if err == nil || v != nil {
				t.Fatalf("Decode(%s) = %v, %v; want an error", tt.line, v, err)
			}
			if !errors.Is(err, ErrDecode) || !strings.Contains(err.Error(), tt.want) || strings.ContainsAny(err.Error(), "\r\n") {
				t.Errorf("error = %q, want one line wrapping ErrDecode with %q", err, tt.want)
			}
		})
	}
}
