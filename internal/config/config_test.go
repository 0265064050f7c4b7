package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/config"
)

const fullConfig = `
listen: 127.0.0.1:8080
backend: 127.0.0.1:9090
backend-tls: true
backend-ca: ca.pem
backend-server-name: greet.internal
tls-cert: /etc/corsgate/cert.pem
tls-key: key.pem
descriptors: image.binpb
allow-origin: [https://app.example.com, "https://*.example.com"]
allow-header: [x-tenant]
expose-header: [x-trace-id]
allow-credentials: true
max-age: 600
private-network: true
strict: true
max-message-size: 4194304
metrics-listen: 127.0.0.1:9100
grpc-listen: 127.0.0.1:9091
shutdown-grace: 30s
log-level: debug
services:
  - name: greet.v1.GreetService
    procedures:
      - name: Greet
        methods: [GET, POST]
        request-headers: [authorization, x-request-id]
        response-headers: [x-greet-version]
        response-trailers: [x-greet-trailer]
      - name: ResetGreetings
        methods: [POST]
        browser-barred: true
`

func TestParseValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  config.File // compared field by field, present keys ignored
		has   []string
		lacks []string
	}{
		{name: "empty", input: "", lacks: []string{"listen", "max-age"}},
		{name: "only a comment", input: "# nothing\n", lacks: []string{"listen"}},
		{name: "null value is absent", input: "listen:\nmax-age: ~\n", lacks: []string{"listen", "max-age"}},
		{name: "json", input: `{"listen": ":8080", "strict": true}`, want: config.File{Listen: ":8080", Strict: true}, has: []string{"listen", "strict"}},
		{name: "max-age seconds", input: "max-age: 7200", want: config.File{MaxAge: config.Duration(2 * time.Hour)}, has: []string{"max-age"}},
		{name: "max-age zero", input: "max-age: 0", want: config.File{}, has: []string{"max-age"}},
		{name: "max-age duration", input: "max-age: 90m", want: config.File{MaxAge: config.Duration(90 * time.Minute)}},
		{name: "max-age at limit", input: "max-age: 86400", want: config.File{MaxAge: config.Duration(24 * time.Hour)}},
		{name: "backend http url", input: "backend: http://greetd:9090", want: config.File{Backend: "http://greetd:9090"}},
		{name: "backend https url no port", input: "backend: https://greet.example.com/", want: config.File{Backend: "https://greet.example.com/"}},
		{name: "backend ipv6", input: `backend: "[::1]:9090"`, want: config.File{Backend: "[::1]:9090"}},
		{name: "listen all interfaces", input: "listen: :8080", want: config.File{Listen: ":8080"}},
		{name: "listen port zero", input: "listen: 127.0.0.1:0", want: config.File{Listen: "127.0.0.1:0"}},
		{name: "log level any case", input: "log-level: WARN", want: config.File{LogLevel: "WARN"}},
		{name: "allow all origins", input: `allow-origin: ["*"]`, want: config.File{AllowOrigin: []string{"*"}}},
		{name: "shutdown grace seconds", input: "shutdown-grace: 15", want: config.File{ShutdownGrace: config.Duration(15 * time.Second)}},
		{name: "message size 1 byte", input: "max-message-size: 1", want: config.File{MaxMessageSize: 1}},
		{name: "message size limit", input: "max-message-size: 1073741824", want: config.File{MaxMessageSize: 1 << 30}},
		{name: "empty services", input: "services: []", want: config.File{Services: []interceptor.Service{}}, has: []string{"services"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := config.Parse([]byte(tt.input))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			assertFields(t, f, &tt.want)
			for _, k := range tt.has {
				if !f.Has(k) {
					t.Errorf("Has(%q) = false", k)
				}
			}
			for _, k := range tt.lacks {
				if f.Has(k) {
					t.Errorf("Has(%q) = true", k)
				}
			}
		})
	}
}

func TestParseFull(t *testing.T) {
	t.Parallel()
	f, err := config.Parse([]byte(fullConfig))
	if err != nil {
		t.Fatal(err)
	}
	want := config.File{
		Listen: "127.0.0.1:8080", Backend: "127.0.0.1:9090", BackendTLS: true, BackendCA: "ca.pem",
		BackendServerName: "greet.internal", TLSCert: "/etc/corsgate/cert.pem", TLSKey: "key.pem",
		Descriptors: "image.binpb", AllowOrigin: []string{"https://app.example.com", "https://*.example.com"},
		AllowHeader: []string{"x-tenant"}, ExposeHeader: []string{"x-trace-id"}, AllowCredentials: true,
		MaxAge: config.Duration(10 * time.Minute), PrivateNetwork: true, Strict: true, MaxMessageSize: 4 << 20,
		MetricsListen: "127.0.0.1:9100", GRPCListen: "127.0.0.1:9091", ShutdownGrace: config.Duration(30 * time.Second), LogLevel: "debug",
		Services: []interceptor.Service{{
			Name: "greet.v1.GreetService",
			Procedures: []interceptor.Procedure{
				{
					Name: "Greet", Methods: []string{"GET", "POST"},
					RequestHeaders:   []string{"authorization", "x-request-id"},
					ResponseHeaders:  []string{"x-greet-version"},
					ResponseTrailers: []string{"x-greet-trailer"},
				},
				{Name: "ResetGreetings", Methods: []string{"POST"}, BrowserBarred: true},
			},
		}},
	}
	assertFields(t, f, &want)
}

func TestParseInvalid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		key   string // the KeyError's key; "" when the error names no key
		want  string // substring of the error
	}{
		// Syntax and shape.
		{name: "bad yaml", input: "listen: [", want: "invalid YAML"},
		{name: "tab indentation", input: "services:\n\t- name: x", want: "invalid YAML"},
		{name: "top level list", input: "- listen", want: "must be a map of keys to values, not a list"},
		{name: "top level string", input: "hello", want: "not a string"},
		{name: "duplicate key", input: "listen: :1\nlisten: :2", want: `"listen" already set`},
		// Unknown keys.
		{name: "unknown key", input: "frobnicate: 1", key: "frobnicate", want: "unknown key; known keys here: listen, backend"},
		{name: "misspelt key", input: "alow-origin: [x]", key: "alow-origin", want: `did you mean "allow-origin"?`},
		{name: "wrong case key", input: "Listen: :8080", key: "Listen", want: `did you mean "listen"?`},
		{name: "go field name", input: "MaxAge: 1", key: "MaxAge", want: "unknown key"},
		{name: "unknown nested key", input: "services:\n- name: a.B\n  procedures:\n  - name: C\n    metods: [POST]", key: "services[0].procedures[0].metods", want: `did you mean "methods"?`},
		{name: "unknown service key", input: "services:\n- nam: a.B", key: "services[0].nam", want: `did you mean "name"?`},
		// Types.
		{name: "listen number", input: "listen: 8080", key: "listen", want: `"8080" is not host:port`},
		{name: "allow-origin string", input: "allow-origin: https://a.example.com", key: "allow-origin", want: "want a list of strings, got string"},
		{name: "credentials string", input: "allow-credentials: maybe", key: "allow-credentials", want: "want true or false, got string"},
		{name: "message size float", input: "max-message-size: 1.5", key: "max-message-size", want: "want a whole number"},
		{name: "message size string", input: "max-message-size: big", key: "max-message-size", want: "want a whole number, got string"},
		{name: "services map", input: "services: {name: x}", key: "services", want: "want a list of maps, got object"},
		{name: "methods string", input: "services:\n- name: a.B\n  procedures:\n  - name: C\n    methods: POST", key: "services.procedures.methods", want: "want a list of strings, got string"},
		// Values.
		{name: "listen no port", input: "listen: 127.0.0.1", key: "listen", want: "is not host:port"},
		{name: "listen empty", input: `listen: ""`, key: "listen", want: "is not host:port"},
		{name: "listen bad port", input: "listen: 127.0.0.1:http", key: "listen", want: `port "http" is not a number from 0 to 65535`},
		{name: "listen port too big", input: "listen: :70000", key: "listen", want: "from 0 to 65535"},
		{name: "listen url", input: "listen: http://127.0.0.1:8080", key: "listen", want: "is not host:port"},
		{name: "metrics-listen bad", input: "metrics-listen: metrics", key: "metrics-listen", want: "is not host:port"},
		{name: "backend no port", input: "backend: greetd", key: "backend", want: "neither host:port nor an http:// or https:// URL"},
		{name: "backend no host", input: "backend: :9090", key: "backend", want: "neither host:port"},
		{name: "backend port zero", input: "backend: greetd:0", key: "backend", want: "from 1 to 65535"},
		{name: "backend grpc scheme", input: "backend: grpc://greetd:9090", key: "backend", want: `scheme "grpc"`},
		{name: "backend url path", input: "backend: http://greetd:9090/api", key: "backend", want: "no path, query or fragment"},
		{name: "backend url query", input: "backend: http://greetd:9090?x=1", key: "backend", want: "no path, query or fragment"},
		{name: "backend url user", input: "backend: https://u:p@greetd:9090", key: "backend", want: "credentials in the URL"},
		{name: "backend url no host", input: "backend: http://", key: "backend", want: "has no host"},
		{name: "backend url bad port", input: "backend: http://greetd:99999", key: "backend", want: `port "99999" is not a number from 1 to 65535`},
		{name: "backend url garbage", input: "backend: http://[::1", key: "backend", want: "is not a URL"},
		{name: "backend empty", input: `backend: ""`, key: "backend", want: "neither host:port"},
		{name: "backend-ca empty", input: `backend-ca: ""`, key: "backend-ca", want: "empty path"},
		{name: "backend-server-name with port", input: "backend-server-name: greet:443", key: "backend-server-name", want: "is not a host name"},
		{name: "descriptors empty", input: `descriptors: ""`, key: "descriptors", want: "empty path"},
		{name: "tls-cert without key", input: "tls-cert: c.pem", key: "tls-key", want: "tls-cert and tls-key go together"},
		{name: "tls-key without cert", input: "tls-key: k.pem", key: "tls-cert", want: "tls-cert and tls-key go together"},
		{name: "origin with path", input: "allow-origin: [https://a.example.com/]", key: "allow-origin", want: `origin "https://a.example.com/"`},
		{name: "origin null", input: "allow-origin: [\"null\"]", key: "allow-origin", want: `origin "null"`},
		{name: "origin empty", input: `allow-origin: [""]`, key: "allow-origin", want: "empty origin"},
		{name: "header with space", input: `allow-header: ["x tenant"]`, key: "allow-header", want: `"x tenant" is not a header name`},
		{name: "header empty", input: `expose-header: [""]`, key: "expose-header", want: `"" is not a header name`},
		{name: "header with colon", input: `expose-header: ["x-a:"]`, key: "expose-header", want: "is not a header name"},
		{name: "max-age negative", input: "max-age: -1", key: "max-age", want: "is negative"},
		{name: "max-age too long", input: "max-age: 86401", key: "max-age", want: "86401 seconds is more than 86400"},
		{name: "max-age fraction", input: "max-age: 1500ms", key: "max-age", want: "not whole seconds"},
		{name: "max-age float", input: "max-age: 1.5", key: "max-age", want: "not a whole number of seconds"},
		{name: "max-age word", input: "max-age: forever", key: "max-age", want: `"forever" is neither whole seconds`},
		{name: "max-age bool", input: "max-age: true", key: "max-age", want: "got bool"},
		{name: "max-age huge", input: "max-age: 99999999999999999999", key: "max-age", want: "not a whole number of seconds in range"},
		{name: "message size zero", input: "max-message-size: 0", key: "max-message-size", want: "must be more than 0"},
		{name: "message size negative", input: "max-message-size: -5", key: "max-message-size", want: "must be more than 0"},
		{name: "message size too big", input: "max-message-size: 1073741825", key: "max-message-size", want: "more than 1073741824"},
		{name: "message size overflow", input: "max-message-size: 99999999999999999999", key: "max-message-size", want: "want a whole number"},
		{name: "grace negative", input: "shutdown-grace: -1s", key: "shutdown-grace", want: "is negative"},
		{name: "grace too long", input: "shutdown-grace: 2h", key: "shutdown-grace", want: "more than 1h0m0s"},
		{name: "log level", input: "log-level: verbose", key: "log-level", want: `"verbose": use debug, info, warn or error`},
		{name: "log level number", input: "log-level: 3", key: "log-level", want: `"3": use debug`},
		{name: "header number", input: "allow-header: [1, {a: b}]", key: "allow-header", want: "want a string, got object"},
		{name: "service without name", input: "services:\n- procedures:\n  - name: Greet\n    methods: [POST]", key: "services", want: ""},
		{name: "procedure bad method", input: "services:\n- name: a.B\n  procedures:\n  - name: C\n    methods: [PUT]", key: "services", want: ""},
		{name: "cors header allowed", input: "allow-header: [Access-Control-Allow-Origin]", key: "allow-header", want: "CORS header"},
		{name: "cors header exposed", input: "expose-header: [access-control-allow-credentials]", key: "expose-header", want: "CORS header"},
		{name: "wildcard among origins", input: "allow-origin: [https://a.example.com, \"*\"]", key: "allow-origin", want: "allows every origin"},
		// Settings refused together.
		{name: "wildcard with credentials", input: "allow-origin: [\"*\"]\nallow-credentials: true", key: "allow-credentials", want: `true together with "*" in allow-origin`},
		{name: "exposed wildcard with credentials", input: "allow-origin: [https://a.example.com]\nexpose-header: [\"*\"]\nallow-credentials: true", key: "allow-credentials", want: `true together with "*" in expose-header`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := config.Parse([]byte(tt.input))
			if err == nil {
				t.Fatalf("Parse(%q) = %+v, want an error", tt.input, f)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error has several lines: %q", msg)
			}
			if !strings.Contains(msg, tt.want) {
				t.Errorf("error %q lacks %q", msg, tt.want)
			}
			var ke *config.KeyError
			switch {
			case tt.key == "" && errors.As(err, &ke):
				t.Errorf("error names key %q, want none", ke.Key)
			case tt.key != "" && !errors.As(err, &ke):
				t.Errorf("error %q is not a *KeyError for %q", msg, tt.key)
			case tt.key != "" && ke.Key != tt.key:
				t.Errorf("error names key %q, want %q", ke.Key, tt.key)
			case tt.key != "" && !strings.Contains(msg, `"`+tt.key+`"`):
				t.Errorf("error %q does not quote the key %q", msg, tt.key)
			}
		})
	}
}

func TestValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		input string
		want  map[string]any
	}{
		{name: "empty", input: "", want: map[string]any{}},
		{
			name:  "flags",
			input: "listen: :8080\nmax-age: 7200\nshutdown-grace: 1m\nallow-origin: [https://a.example.com]\nstrict: false\nmax-message-size: 10",
			want: map[string]any{
				"listen": ":8080", "max-age": "2h0m0s", "shutdown-grace": "1m0s",
				"allow-origin": []string{"https://a.example.com"}, "strict": false, "max-message-size": 10,
			},
		},
		{name: "services left out", input: fullConfig[strings.Index(fullConfig, "services:"):], want: map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := config.Parse([]byte(tt.input))
			if err != nil {
				t.Fatal(err)
			}
			if got := f.Values(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Values() = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name  string
		path  string
		check func(t *testing.T, f *config.File)
		want  string // error substring; "" means success
	}{
		{
			name: "relative paths resolve against the file",
			path: write("full.yaml", fullConfig),
			check: func(t *testing.T, f *config.File) {
				for _, c := range []struct{ got, want string }{
					{got: f.BackendCA, want: filepath.Join(dir, "ca.pem")},
					{got: f.TLSCert, want: "/etc/corsgate/cert.pem"},
					{got: f.TLSKey, want: filepath.Join(dir, "key.pem")},
					{got: f.Descriptors, want: filepath.Join(dir, "image.binpb")},
				} {
					if c.got != c.want {
						t.Errorf("path = %q, want %q", c.got, c.want)
					}
				}
			},
		},
		{name: "missing file", path: filepath.Join(dir, "nope.yaml"), want: "no such file"},
		{name: "error names the file", path: write("bad.yaml", "max-age: -1"), want: "config " + filepath.Join(dir, "bad.yaml") + `: key "max-age"`},
		{name: "too large", path: write("big.yaml", "# "+strings.Repeat("x", config.MaxFileSize)), want: "larger than"},
		{name: "a directory", path: dir, want: "config"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := config.Load(tt.path)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Load = %v, want an error containing %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, f)
		})
	}
}

func TestDurationJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    config.Duration
		want string
	}{
		{name: "whole seconds", d: config.Duration(2 * time.Hour), want: "7200"},
		{name: "zero", d: 0, want: "0"},
		{name: "fraction", d: config.Duration(1500 * time.Millisecond), want: `"1.5s"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b, err := tt.d.MarshalJSON()
			if err != nil || string(b) != tt.want {
				t.Fatalf("MarshalJSON = %s, %v; want %s", b, err, tt.want)
			}
			var back config.Duration
			if err := back.UnmarshalJSON(b); err != nil || back != tt.d {
				t.Errorf("round trip = %v, %v; want %v", back, err, tt.d)
			}
		})
	}
}

// assertFields compares the exported fields of got and want.
func assertFields(t *testing.T, got, want *config.File) {
	t.Helper()
	gv, wv := reflect.ValueOf(got).Elem(), reflect.ValueOf(want).Elem()
	for i, f := range reflect.VisibleFields(gv.Type()) {
		if !f.IsExported() {
			continue
		}
		g, w := gv.Field(i).Interface(), wv.Field(i).Interface()
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %#v, want %#v", f.Name, g, w)
		}
	}
}
