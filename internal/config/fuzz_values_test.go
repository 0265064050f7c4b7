package config_test

import (
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/config"
)

// FuzzParseKeyValue gives each key of the config file an arbitrary one-line
// value: Parse must never panic, every refusal is one line, a refusal of the
// value (not of the YAML syntax) names the key, and an accepted value shows
// up in Values under that key (services aside, null meaning absent).
func FuzzParseKeyValue(f *testing.F) {
	keys := hardConfigKeys()
	for i, key := range keys {
		for _, v := range hardInvalidValues[key] {
			if !strings.ContainsAny(v, "\r\n") {
				f.Add(uint8(i), v)
			}
		}
	}
	for _, v := range []string{"", "~", "null", "true", "0", "7200", "2h", "[]", "{}", "[a, b]", "'*'", "&a x", "*a", "!!binary aGk=", "|", "1e400"} {
		f.Add(uint8(0), v)
		f.Add(uint8(12), v)
	}
	f.Fuzz(func(t *testing.T, keyIdx uint8, value string) {
		if strings.ContainsAny(value, "\r\n") {
			return // one key per document
		}
		key := keys[int(keyIdx)%len(keys)]
		doc := key + ": " + value + "\n"
		file, err := config.Parse([]byte(doc))
		if err != nil {
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Fatalf("Parse(%q): error has several lines: %q", doc, msg)
			}
			if !strings.HasPrefix(msg, "invalid YAML") && !strings.Contains(msg, key) {
				t.Fatalf("Parse(%q): error %q does not name the key", doc, msg)
			}
			return
		}
		values := file.Values()
		if key != "services" && file.Has(key) {
			if _, ok := values[key]; !ok {
				t.Fatalf("Parse(%q): key present but missing from Values %v", doc, values)
			}
		}
		for k := range values {
			if k != key {
				t.Fatalf("Parse(%q): Values has key %q that the document does not set", doc, k)
			}
		}
	})
}
