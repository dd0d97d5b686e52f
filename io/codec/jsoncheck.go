package codec

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// jsonNode says, for one place in values of a type, whether a JSON null may
// stand there and what may stand inside. encoding/json reads a null into a
// field that cannot hold one (an int, a string, a struct) as "leave it
// zero", which turns a missing value into a wrong one; the decoder walks a
// line with these nodes to refuse such lines instead.
type jsonNode struct {
	nullOK bool        // a null may stand here
	opaque bool        // the value's own UnmarshalJSON or an any: nothing inside is checked
	fields []jsonField // a struct's fields, by JSON name
	elem   *jsonNode   // a slice's or array's elements, a map's values
	deref  *jsonNode   // a pointer's target, when the value is not null
}

// refusesNull says whether a null is refused anywhere at or below n.
func (n *jsonNode) refusesNull(seen map[*jsonNode]bool) bool {
	if n == nil || n.opaque || seen[n] {
		return false
	}
	seen[n] = true
	if !n.nullOK || n.elem.refusesNull(seen) || n.deref.refusesNull(seen) {
		return true
	}
	for _, f := range n.fields {
		if f.node.refusesNull(seen) {
			return true
		}
	}
	return false
}

type jsonField struct {
	name string
	node *jsonNode
}

var jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()

// jsonPlan returns the node of type t. seen ends recursion in recursive
// types.
func jsonPlan(t reflect.Type, seen map[reflect.Type]*jsonNode) *jsonNode {
	if n, ok := seen[t]; ok {
		return n
	}
	n := &jsonNode{}
	seen[t] = n
	switch {
	case t == timeType:
		// time.Time reads a null as the zero time, a wrong timestamp.
		return n
	case t.Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(jsonUnmarshaler):
		// A type with its own UnmarshalJSON decides what null means.
		n.nullOK, n.opaque = true, true
		return n
	}
	switch t.Kind() {
	case reflect.Pointer:
		n.nullOK, n.deref = true, jsonPlan(t.Elem(), seen)
	case reflect.Interface:
		n.nullOK, n.opaque = true, true
	case reflect.Map:
		n.nullOK, n.elem = true, jsonPlan(t.Elem(), seen)
	case reflect.Slice:
		n.nullOK = true
		if t.Elem().Kind() != reflect.Uint8 { // []byte is base64 text
			n.elem = jsonPlan(t.Elem(), seen)
		}
	case reflect.Array:
		n.elem = jsonPlan(t.Elem(), seen)
	case reflect.Struct:
		for _, f := range jsonFields(t) {
			n.fields = append(n.fields, jsonField{name: f.name, node: jsonPlan(f.typ, seen)})
		}
	}
	return n
}

type jsonStructField struct {
	name   string
	typ    reflect.Type
	depth  int
	tagged bool
}

// jsonFields lists the fields encoding/json decodes into in struct type t,
// by their JSON names: exported fields not tagged "-", and the fields of
// embedded structs without a name tag, a shallower field hiding a deeper
// one of the same name, and two of one depth hiding each other unless
// exactly one of them is tagged.
func jsonFields(t reflect.Type) []jsonStructField {
	var all []jsonStructField
	visited := map[reflect.Type]bool{}
	var walk func(t reflect.Type, depth int)
	walk = func(t reflect.Type, depth int) {
		if visited[t] {
			return
		}
		visited[t] = true
		defer delete(visited, t)
		for i := range t.NumField() {
			f := t.Field(i)
			tag := f.Tag.Get("json")
			if tag == "-" {
				continue
			}
			name, _, _ := strings.Cut(tag, ",")
			ft := f.Type
			if f.Anonymous {
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if name == "" && ft.Kind() == reflect.Struct {
					walk(ft, depth+1)
					continue
				}
				if !f.IsExported() && ft.Kind() != reflect.Struct {
					continue
				}
			} else if !f.IsExported() {
				continue
			}
			tagged := name != ""
			if !tagged {
				name = f.Name
			}
			all = append(all, jsonStructField{name: name, typ: f.Type, depth: depth, tagged: tagged})
		}
	}
	walk(t, 0)
	var out []jsonStructField
	for i, f := range all {
		hidden := false
		for j, g := range all {
			if j == i || g.name != f.name {
				continue
			}
			if g.depth < f.depth || g.depth == f.depth && (g.tagged || !f.tagged) {
				hidden = true // by a shallower field, a tagged one, or its twin
				break
			}
		}
		if !hidden {
			out = append(out, f)
		}
	}
	return out
}

// lookup returns the node of the field a key names: exactly, else ignoring
// case, as encoding/json matches keys; nil for a key no field has.
func (n *jsonNode) lookup(key []byte) *jsonNode {
	for _, f := range n.fields {
		if f.name == string(key) {
			return f.node
		}
	}
	for _, f := range n.fields {
		if bytes.EqualFold([]byte(f.name), key) {
			return f.node
		}
	}
	return nil
}

// jsonProblem is a null where the type has no room for one, or a string
// that is not UTF-8, at a path of keys and indexes.
type jsonProblem struct {
	path    []string // from the innermost out
	null    bool
	keyName bool // the problem is in the key that ends path
}

func (p *jsonProblem) reason() string {
	var b strings.Builder
	for i := len(p.path) - 1; i >= 0; i-- {
		el := p.path[i]
		if !strings.HasPrefix(el, "[") && i != len(p.path)-1 {
			b.WriteByte('.')
		}
		b.WriteString(el)
	}
	where := strings.ToValidUTF8(b.String(), "\uFFFD")
	switch {
	case p.null && where == "":
		return "the record is null; the record type is not a pointer"
	case p.null:
		return "field " + where + " is null; the record type's field is not a pointer"
	case p.keyName:
		return "field name " + strconv.Quote(where) + " is not valid UTF-8"
	case where == "":
		return "the record is a string that is not valid UTF-8"
	}
	return "field " + where + " is not valid UTF-8"
}

// jsonChecker walks a line that encoding/json has read without error, so
// its syntax is known to be valid, looking for the first problem.
type jsonChecker struct {
	b    []byte
	i    int
	utf8 bool // look for strings that are not UTF-8
}

// checkJSON returns the reason line cannot be read as the type of root, or
// "" when it can. root nil checks UTF-8 only.
func checkJSON(line []byte, root *jsonNode, checkUTF8 bool) string {
	c := jsonChecker{b: line, utf8: checkUTF8}
	if p := c.value(root); p != nil {
		return p.reason()
	}
	return ""
}

func (c *jsonChecker) ws() {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\r', '\n':
			c.i++
		default:
			return
		}
	}
}

// value checks the value at c.i, which n describes (nil: anything).
func (c *jsonChecker) value(n *jsonNode) *jsonProblem {
	c.ws()
	if c.i >= len(c.b) {
		return nil
	}
	if n != nil && n.opaque {
		n = nil
	}
	if c.b[c.i] == 'n' {
		c.i += len("null")
		if n != nil && !n.nullOK {
			return &jsonProblem{null: true}
		}
		return nil
	}
	for n != nil && n.deref != nil {
		n = n.deref
	}
	if n != nil && n.opaque {
		n = nil
	}
	switch c.b[c.i] {
	case '"':
		s := c.str()
		if c.utf8 && !utf8.Valid(s) {
			return &jsonProblem{}
		}
	case '{':
		c.i++
		for {
			c.ws()
			if c.i >= len(c.b) || c.b[c.i] == '}' {
				c.i++
				return nil
			}
			if c.b[c.i] == ',' {
				c.i++
				continue
			}
			key := c.str()
			if c.utf8 && !utf8.Valid(key) {
				return &jsonProblem{path: []string{string(key)}, keyName: true}
			}
			c.ws()
			c.i++ // ':'
			var child *jsonNode
			if n != nil {
				if n.fields != nil {
					child = n.lookup(unquoteKey(key))
				} else {
					child = n.elem
				}
			}
			if p := c.value(child); p != nil {
				p.path = append(p.path, string(unquoteKey(key)))
				return p
			}
		}
	case '[':
		c.i++
		var elem *jsonNode
		if n != nil {
			elem = n.elem
		}
		for k := 0; ; {
			c.ws()
			if c.i >= len(c.b) || c.b[c.i] == ']' {
				c.i++
				return nil
			}
			if c.b[c.i] == ',' {
				c.i++
				k++
				continue
			}
			if p := c.value(elem); p != nil {
				p.path = append(p.path, "["+strconv.Itoa(k)+"]")
				return p
			}
		}
	default: // a number, true or false
		for c.i < len(c.b) {
			switch c.b[c.i] {
			case ',', '}', ']', ' ', '\t', '\r', '\n':
				return nil
			}
			c.i++
		}
	}
	return nil
}

// str returns the raw bytes of the string at c.i, without its quotes and
// with its escapes as written, and moves past it.
func (c *jsonChecker) str() []byte {
	c.i++ // '"'
	start := c.i
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case '\\':
			c.i += 2
			continue
		case '"':
			s := c.b[start:c.i]
			c.i++
			return s
		}
		c.i++
	}
	return c.b[start:min(c.i, len(c.b))]
}

// unquoteKey resolves the escapes of a key as written; a key without
// escapes is returned as is.
func unquoteKey(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	var s string
	q := make([]byte, 0, len(raw)+2)
	q = append(append(append(q, '"'), raw...), '"')
	if json.Unmarshal(q, &s) != nil {
		return raw
	}
	return []byte(s)
}
