package main

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestJSONToYAMLRoundTrip checks that the YAML written from JSON reads back,
// with sigs.k8s.io/yaml (what the config loader uses), as the same JSON, for
// strings that YAML would otherwise take for something else.
func TestJSONToYAMLRoundTrip(t *testing.T) {
	t.Parallel()
	tricky := []string{
		"", " ", "*", "-", "~", "?", ":", "a: b", "a:", "#x", "a #b", "yes", "No", "ON", "off", "y", "n", "true",
		"False", "null", "NULL", "1", "1.5", "-1", "+1", "0x1F", "0o17", "1e3", ".inf", "-.Inf", ".nan", "1_000",
		"2001-12-14", "12:30:00", "@type", "`x`", "'x'", `"x"`, "[a]", "{a}", "a,b", "&a", "*a", "!tag", "%x", "|", ">",
		"a\nb", "tab\tx", "ünïcode", "https://app.example.com", "https://*.example.com", "/greet.v1.GreetService/Greet",
		"GET, POST", "x-greet-version", "0s", "7200", "127.0.0.1:8080", ":8080", "<b>", "a\\b", "\x7f", "\u0085", "\ufeff", "\xff", "😀",
	}
	doc := map[string]any{
		"strings": tricky,
		"nested": map[string]any{
			"empty-list":   []any{},
			"empty-object": map[string]any{},
			"numbers":      []any{0, -1, 1.5, 1e21},
			"bools":        []any{true, false, nil},
			"objects":      []any{map[string]any{"a": "1", "b": []any{"x"}}, map[string]any{}, []any{"nested", []any{}}},
		},
	}
	for _, s := range tricky {
		doc["key "+s] = s
		doc[s] = "as key"
	}
	in, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonToYAML(in, "header", "", "second line")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "# header\n#\n# second line\n") {
		t.Errorf("header comments missing:\n%s", out)
	}
	back, err := yaml.YAMLToJSON(out)
	if err != nil {
		t.Fatalf("YAML does not parse: %v\n%s", err, out)
	}
	var want, got any
	if err := json.Unmarshal(in, &want); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(back, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		t.Errorf("round trip changed the document\nwant %v\ngot  %v\nYAML:\n%s", want, got, out)
	}
}

// TestJSONToYAMLKeepsOrder checks that keys keep their JSON order, which is
// what makes the generated files read top-down.
func TestJSONToYAMLKeepsOrder(t *testing.T) {
	t.Parallel()
	out, err := jsonToYAML([]byte(`{"z":1,"a":{"x":[1,2],"b":[{"k":"v","c":"d"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := "z: 1\na:\n  x: [1, 2]\n  b:\n    - k: v\n      c: d\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestJSONToYAMLRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`[1]`, `"x"`, `{"a":`, `{} {}`} {
		if _, err := jsonToYAML([]byte(in)); err == nil {
			t.Errorf("jsonToYAML(%s): no error", in)
		}
	}
}
