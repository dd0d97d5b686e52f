package runner

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// A job file is the options as YAML, one key per option (config.go), a
// map's as a mapping:
//
//	mode: stream
//	parallelism: 4
//	checkpoint-interval: 30s
//	bind:
//	  pageviews: kafka://broker:9092/pageviews
//	  counts: file:///out/counts/
//
// Unknown keys are errors, so that a misspelt key does not silently leave
// its option unset.

// ReadJobFile reads the job file at path into options; unset options stay
// zero (EnsureDefaults fills them).
func ReadJobFile(path string) (Options, error) {
	var o Options
	err := readJobFile(path, &o)
	return o, err
}

// readJobFile sets the options of the job file at path on o.
func readJobFile(path string, o *Options) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("%w: job file: %v", ErrOptions, err)
	}
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty
		}
		return fmt.Errorf("%w: job file %s: %v", ErrOptions, path, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%w: job file %s: want a mapping of options (mode: stream, bind: ...), line %d", ErrOptions, path, root.Line)
	}
	s := optionSetter{o: o}
	lines := map[string]int{} // of the keys read
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		opt := lookupOption(k.Value)
		where := fmt.Sprintf("job file %s:%d: %s", path, k.Line, k.Value)
		first, twice := lines[k.Value]
		lines[k.Value] = k.Line
		switch {
		case twice:
			s.errs = append(s.errs, fmt.Errorf("%w: %s is given twice (first at line %d)", ErrOptions, where, first))
		case opt == nil:
			s.errs = append(s.errs, fmt.Errorf("%w: job file %s:%d: unknown key %q", ErrOptions, path, k.Line, k.Value))
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			// "key:" with no value leaves the option unset.
		case opt.kind == kindMap && v.Kind == yaml.MappingNode:
			var pairs []string
			for j := 0; j+1 < len(v.Content); j += 2 {
				name, val := v.Content[j], v.Content[j+1]
				if name.Kind != yaml.ScalarNode || val.Kind != yaml.ScalarNode {
					s.errs = append(s.errs, fmt.Errorf("%w: %s: want NAME: URI pairs", ErrOptions, where))
					continue
				}
				pair := name.Value + "=" + val.Value
				if err := repeatedName(pairs, pair); err != nil {
					s.errs = append(s.errs, fmt.Errorf("%w: job file %s:%d: %s: %v", ErrOptions, path, name.Line, k.Value, err))
					continue
				}
				pairs = append(pairs, pair)
				s.set(opt, where, pair)
			}
		case opt.kind == kindMap:
			s.errs = append(s.errs, fmt.Errorf("%w: %s: want a mapping of NAME: URI", ErrOptions, where))
		case v.Kind != yaml.ScalarNode:
			s.errs = append(s.errs, fmt.Errorf("%w: %s: want a single value (%s)", ErrOptions, where, opt.kind.typeName()))
		default:
			s.set(opt, where, v.Value)
		}
	}
	return s.err()
}

// JobFile returns the options as a job file: every option that is set, in
// the table's order, each with its help as a comment. Reading it back
// (ReadJobFile) gives the same options.
func (o *Options) JobFile() ([]byte, error) {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, opt := range options {
		vals, ok := opt.format(o)
		if !ok {
			continue
		}
		key := &yaml.Node{Kind: yaml.ScalarNode, Value: opt.name, HeadComment: opt.usage}
		var val *yaml.Node
		switch opt.kind {
		case kindMap:
			val = &yaml.Node{Kind: yaml.MappingNode}
			for _, kv := range vals {
				k, v, _ := strings.Cut(kv, "=")
				val.Content = append(val.Content, scalar("!!str", k), scalar("!!str", v))
			}
		case kindInt:
			val = scalar("!!int", vals[0])
		case kindBool:
			val = scalar("!!bool", vals[0])
		default:
			val = scalar("!!str", vals[0])
		}
		root.Content = append(root.Content, key, val)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("runner: writing the job file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("runner: writing the job file: %w", err)
	}
	return buf.Bytes(), nil
}

func scalar(tag, v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: v} }
