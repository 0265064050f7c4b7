package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/internal/config"
)

// hardInvalidValues lists, for every key of the config file, values Load must
// refuse at start. TestEveryKeyRefused fails when a key has no
// entry, so a new key needs its bad values here.
var hardInvalidValues = map[string][]string{
	"listen":                       {`"nope"`, `":70000"`, `"127.0.0.1:-1"`, `"a b:80"`, `[":80"]`, `{a: 1}`, `true`},
	"backend":                      {`""`, `"greetd"`, `"ftp://g:1"`, `"http://g:1/x"`, `"https://u:p@g:1"`, `"g:0"`, `"http://[::1"`, `42`},
	"backend-tls":                  {`"maybe"`, `2`, `[true]`},
	"backend-ca":                   {`""`, `"a\0b"`, `[ca.pem]`},
	"backend-insecure-skip-verify": {`"maybe"`, `2`, `[true]`},
	"backend-server-name":          {`""`, `"a b"`, `"g:443"`, `"` + strings.Repeat("a", 254) + `"`},
	"tls-cert":                     {`""`, `"c\0"`},
	"tls-key":                      {`""`, `"k\0"`},
	"descriptors":                  {`""`, `"d\0"`, `{a: b}`},
	"allow-origin": {`["null"]`, `[""]`, `["https://a.example.com/"]`, `["a.example.com"]`, `["https://*.com"]`,
		`["https://*example.com"]`, `["https://u@a.example.com"]`, `["https://bücher.example"]`, `"https://a.example.com"`,
		`["*", "https://a.example.com"]`},
	"allow-header":      {`["x tenant"]`, `[""]`, `["x:y"]`, `["Access-Control-Allow-Origin"]`, `["` + strings.Repeat("x", 200) + `"]`, `"x-a"`},
	"expose-header":     {`["x tenant"]`, `[""]`, `["access-control-allow-credentials"]`, `[{a: b}]`},
	"allow-credentials": {`"maybe"`, `1`, `[true]`},
	"max-age":           {`-1`, `86401`, `"25h"`, `"1500ms"`, `1.5`, `"forever"`, `true`, `99999999999999999999`},
	"private-network":   {`"maybe"`, `0`},
	"strict":            {`"maybe"`, `1`},
	"trace-headers":     {`"off"`, `0`},
	"max-message-size":  {`0`, `-1`, `1073741825`, `1.5`, `"4MiB"`, `99999999999999999999`},
	"metrics-listen":    {`"metrics"`, `":99999"`, `""`},
	"grpc-listen":       {`"grpc"`, `":99999"`, `""`, `[":9090"]`},
	"shutdown-grace":    {`-1`, `"2h"`, `"soon"`, `"-1s"`},
	"log-level":         {`"loud"`, `""`, `3`},
	"watch":             {`"maybe"`, `1`},
	"backend-cert":      {`""`, `"c\0"`},
	"backend-key":       {`""`, `"k\0"`},
	"client-ca":         {`""`, `"a\0b"`, `[ca.pem]`},
	"client-auth":       {`"maybe"`, `""`, `true`},
	"access-log":        {`"verbose"`, `""`, `"JSON"`, `true`, `[json]`},
	"backends": {`[a]`, `{}`, `{greet: {}}`, `{greet: {addresses: []}}`, `{greet: {addresses: [nope]}}`,
		`{"a.b": {addresses: ["g:1"]}}`, `{greet: {addresses: ["g:1"], adresses: ["g:2"]}}`,
		`{greet: {addresses: ["dns:///g:1", "g:2"]}}`, `{greet: {addresses: ["g:1", "https://g:2"]}}`,
		`{greet: {addresses: ["dns:///g"]}}`, `{greet: {addresses: ["g:1"], cert: c.pem}}`,
		`{greet: {addresses: ["g:1"], ca: ca.pem, insecure-skip-verify: true}}`, `{greet: {addresses: ["g:1"], tls: maybe}}`},
	"routes": {`{services: [a.B]}`, `[{backend: greet}]`, `[{services: [], backend: greet}]`, `[{services: ["a.*.B"], backend: greet}]`,
		`[{services: [a.B], backend: nosuch}]`, `[{services: [a.B]}]`, `[{services: ["a.*"], backend: greet}, {services: [a.B], backend: greet}]`,
		`[{services: [a.B], backend: greet, allow-origin: ["null"]}]`, `[{services: [a.B], backend: greet, allow-origin: ["*"], allow-credentials: true}]`,
		`[{services: [a.B], backend: greet, max-age: 86401}]`, `[{services: [a.B], backend: greet, alow-origin: []}]`,
		`[{services: [a.B], backend: greet, expose-header: ["x y"]}]`},
	"websockets":                     {`"yes"`, `1`},
	"websocket-ping-interval":        {`-1`, `"2h"`, `"500ms"`, `"often"`},
	"websocket-max-streams":          {`0`, `-1`, `1048577`, `"many"`},
	"websocket-allow-missing-origin": {`"maybe"`, `1`},
	"services": {`{name: x}`, `[{name: ""}]`, `[{name: a.B, procedures: [{name: C, methods: [PUT]}]}]`,
		`[{name: a.B, procedures: [{name: "", methods: [POST]}]}]`, `[{name: a.B}, {name: a.B}]`,
		`[{name: a.B, procedures: [{name: C, request-headers: ["x y"]}]}]`,
		`[{name: a.B, procedures: [{name: C, response-trailers: ["*"]}]}]`, `[{name: a.B, procedures: [{name: C, metods: [POST]}]}]`},
	"max-request-buffer": {`0`, `-1`, `68719476737`, `1.5`, `"128MiB"`, `99999999999999999999`},
}

// hardConfigKeys returns the keys of the config file, from File's json tags.
func hardConfigKeys() []string {
	var keys []string
	for _, f := range reflect.VisibleFields(reflect.TypeFor[config.File]()) {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys = append(keys, name)
		}
	}
	return keys
}

// TestEveryKeyRefused writes each invalid value of each key to a
// file and loads it: Load must refuse it with one line naming the key (a
// *KeyError for that key), and the values of a valid file around it must not
// matter.
func TestEveryKeyRefused(t *testing.T) {
	t.Parallel()
	for _, key := range hardConfigKeys() {
		if len(hardInvalidValues[key]) == 0 {
			t.Errorf("key %q has no invalid values in hardInvalidValues: add some", key)
		}
	}
	dir := t.TempDir()
	for key, values := range hardInvalidValues {
		for i, value := range values {
			t.Run(key+"/"+value, func(t *testing.T) {
				t.Parallel()
				doc := "backend: 127.0.0.1:9090\n" + key + ": " + value + "\n"
				if key == "tls-cert" {
					doc += "tls-key: k.pem\n"
				}
				if key == "tls-key" {
					doc += "tls-cert: c.pem\n"
				}
				switch key {
				case "backend", "backends":
					doc = key + ": " + value + "\n"
				case "routes":
					doc = "backends: {greet: {addresses: [\"127.0.0.1:9090\"]}}\n" + key + ": " + value + "\n"
				case "client-auth":
					doc += "client-ca: ca.pem\n"
				}
				path := filepath.Join(dir, strings.ReplaceAll(key, "-", "_")+"_"+string(rune('a'+i))+".yaml")
				if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
					t.Fatal(err)
				}
				f, err := config.Load(path)
				if err == nil {
					t.Fatalf("Load accepted %s: %s (%+v)", key, value, f)
				}
				msg := err.Error()
				if strings.Contains(msg, "\n") {
					t.Errorf("error has several lines: %q", msg)
				}
				if !strings.Contains(msg, key) {
					t.Errorf("error %q does not name the key %q", msg, key)
				}
				var ke *config.KeyError
				if !errors.As(err, &ke) || !strings.HasPrefix(ke.Key, key) {
					t.Errorf("error %q is not a *KeyError for %q", msg, key)
				}
			})
		}
	}
}

// TestWildcardWithCredentials tries every way a config file can
// combine the "*" origin (or the "*" exposed header, which a credentialed
// browser reads as a header name) with credentials: YAML block and flow
// lists, the JSON protoc-gen-corsgate writes with format=json, YAML 1.1
// booleans, duplicated and spaced values. Every one must be refused.
func TestWildcardWithCredentials(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		keys []string // keys the error must name
	}{
		{name: "yaml flow", doc: "allow-origin: [\"*\"]\nallow-credentials: true\n", keys: []string{"allow-origin", "allow-credentials"}},
		{name: "yaml block", doc: "allow-origin:\n  - '*'\nallow-credentials: true\n", keys: []string{"allow-origin", "allow-credentials"}},
		{name: "credentials first", doc: "allow-credentials: true\nallow-origin: ['*']\n", keys: []string{"allow-origin", "allow-credentials"}},
		{name: "yaml 1.1 yes", doc: "allow-origin: ['*']\nallow-credentials: yes\n", keys: []string{"allow-origin", "allow-credentials"}},
		{name: "yaml 1.1 On", doc: "allow-origin: ['*']\nallow-credentials: On\n", keys: []string{"allow-origin", "allow-credentials"}},
		{name: "star twice", doc: "allow-origin: ['*', '*']\nallow-credentials: true\n", keys: []string{"allow-origin", "allow-credentials"}},
		{name: "star among origins", doc: "allow-origin: [https://a.example.com, '*']\nallow-credentials: true\n", keys: []string{"allow-origin"}},
		{name: "generated json", doc: `{"listen": "127.0.0.1:8080", "backend": "127.0.0.1:9090", "allow-origin": ["*"], "allow-credentials": true, "max-age": 7200, "services": []}`, keys: []string{"allow-origin", "allow-credentials"}},
		{name: "generated yaml", doc: "# Code generated by protoc-gen-corsgate. DO NOT EDIT.\nallow-origin:\n  - \"*\"\nallow-credentials: true\nmax-age: 7200\nservices: []\n", keys: []string{"allow-origin", "allow-credentials"}},
		{name: "expose star", doc: "allow-origin: [https://a.example.com]\nexpose-header: ['*']\nallow-credentials: true\n", keys: []string{"expose-header", "allow-credentials"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "corsgate.yaml")
			if err := os.WriteFile(path, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := config.Load(path)
			if err == nil {
				t.Fatalf("Load accepted a wildcard with credentials: %+v", f)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error has several lines: %q", err)
			}
			t.Run("names the keys", func(t *testing.T) {
				for _, k := range tt.keys {
					if !strings.Contains(err.Error(), k) {
						t.Errorf("error %q does not name %q", err, k)
					}
				}
			})
		})
	}
}
