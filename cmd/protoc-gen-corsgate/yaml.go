package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The YAML outputs are written from JSON: the JSON comes from encoding/json,
// with the interceptor's own json tags or, for Envoy, the tags of
// envoy_config.go (protojson's field names, in its order), so the key names
// cannot drift, and this file only changes the layout. Keys keep their JSON
// order, which sigs.k8s.io/yaml would sort.

// jsonNode is a JSON value with object members in their order.
type jsonNode struct {
	kind   jsonKind
	keys   []string    // object member names
	elems  []*jsonNode // object member values or array elements
	scalar string      // string value, or the literal of a number, bool or null
}

type jsonKind uint8

const (
	jsonObject jsonKind = iota
	jsonArray
	jsonString
	jsonLiteral // number, true, false, null
)

// parseJSON reads one JSON value.
func parseJSON(data []byte) (*jsonNode, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := parseJSONValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("trailing data after JSON value")
	}
	return n, nil
}

func parseJSONValue(dec *json.Decoder) (*jsonNode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &jsonNode{kind: jsonObject}
			for dec.More() {
				key, err := dec.Token()
				if err != nil {
					return nil, err
				}
				v, err := parseJSONValue(dec)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, key.(string))
				n.elems = append(n.elems, v)
			}
			_, err := dec.Token() // '}'
			return n, err
		case '[':
			n := &jsonNode{kind: jsonArray}
			for dec.More() {
				v, err := parseJSONValue(dec)
				if err != nil {
					return nil, err
				}
				n.elems = append(n.elems, v)
			}
			_, err := dec.Token() // ']'
			return n, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case string:
		return &jsonNode{kind: jsonString, scalar: t}, nil
	case json.Number:
		return &jsonNode{kind: jsonLiteral, scalar: t.String()}, nil
	case bool:
		return &jsonNode{kind: jsonLiteral, scalar: fmt.Sprint(t)}, nil
	case nil:
		return &jsonNode{kind: jsonLiteral, scalar: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected JSON token %v", tok)
}

// jsonToYAML converts JSON to block-style YAML with the header comment lines
// first. Arrays of scalars are written in flow style ([GET, POST]).
func jsonToYAML(data []byte, header ...string) ([]byte, error) {
	root, err := parseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("convert JSON to YAML: %w", err)
	}
	if root.kind != jsonObject {
		return nil, errors.New("convert JSON to YAML: top level is not an object")
	}
	var b bytes.Buffer
	for _, h := range header {
		if h == "" {
			b.WriteString("#\n")
			continue
		}
		b.WriteString("# " + h + "\n")
	}
	writeYAMLMembers(&b, root, 0, false)
	return b.Bytes(), nil
}

// writeYAMLMembers writes the members of an object, one a line, at indent.
// With firstInline the first member continues the current line (after "- ").
func writeYAMLMembers(b *bytes.Buffer, n *jsonNode, indent int, firstInline bool) {
	for i, key := range n.keys {
		if i > 0 || !firstInline {
			b.WriteString(strings.Repeat(" ", indent))
		}
		b.WriteString(yamlScalar(key))
		b.WriteString(":")
		writeYAMLValue(b, n.elems[i], indent)
	}
}

// writeYAMLValue writes the value after "key:" or "-", ending the line.
func writeYAMLValue(b *bytes.Buffer, v *jsonNode, indent int) {
	switch {
	case v.kind == jsonObject && len(v.keys) == 0:
		b.WriteString(" {}\n")
	case v.kind == jsonObject:
		b.WriteString("\n")
		writeYAMLMembers(b, v, indent+2, false)
	case v.kind == jsonArray && allScalars(v):
		b.WriteString(" [")
		for i, e := range v.elems {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(yamlFlowScalar(e))
		}
		b.WriteString("]\n")
	case v.kind == jsonArray:
		b.WriteString("\n")
		for _, e := range v.elems {
			b.WriteString(strings.Repeat(" ", indent+2))
			b.WriteString("-")
			if e.kind == jsonObject && len(e.keys) > 0 {
				b.WriteString(" ")
				writeYAMLMembers(b, e, indent+4, true)
				continue
			}
			writeYAMLValue(b, e, indent+2)
		}
	default:
		b.WriteString(" ")
		b.WriteString(yamlFlowScalar(v))
		b.WriteString("\n")
	}
}

func allScalars(v *jsonNode) bool {
	for _, e := range v.elems {
		if e.kind == jsonObject || e.kind == jsonArray {
			return false
		}
	}
	return true
}

func yamlFlowScalar(v *jsonNode) string {
	if v.kind == jsonString {
		return yamlScalar(v.scalar)
	}
	return v.scalar
}

// yamlScalar writes a string plain when no YAML 1.1 or 1.2 reader can take it
// for anything but that string, else double-quoted, escaping what YAML does
// not allow to appear as it is.
func yamlScalar(s string) string {
	if yamlPlainSafe(s) {
		return s
	}
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r >= 0x20 && r <= 0x7e, r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd, r >= 0x10000 && r <= 0x10ffff:
			b.WriteRune(r) // YAML's printable characters
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			fmt.Fprintf(&b, `\U%08X`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func yamlPlainSafe(s string) bool {
	if s == "" {
		return false
	}
	if c := s[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '/') {
		return false // digits, signs, dots: numbers; indicators: structure
	}
	if s[len(s)-1] == ':' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._/:+-", c) >= 0 {
			continue
		}
		return false
	}
	switch strings.ToLower(s) {
	case "y", "n", "yes", "no", "true", "false", "on", "off", "null":
		return false
	}
	return true
}
