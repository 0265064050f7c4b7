// Package config reads the gateway's YAML config file, the file given to
// `corsgate serve --config` and written by protoc-gen-corsgate. Its keys are
// the flag names of `corsgate serve`; flags given on the command line win
// (see [File.Values]). An example:
//
//	listen: 127.0.0.1:8080
//	backend: 127.0.0.1:9090
//	allow-origin: [https://app.example.com]
//	max-age: 7200            # seconds, or a duration such as "2h"
//	max-message-size: 4194304
//	services:                # optional per-procedure rules; replace descriptor-derived ones
//	  - name: greet.v1.GreetService
//	    procedures:
//	      - name: Greet
//	        methods: [GET, POST]
//	        request-headers: [authorization, x-request-id]
//
// In place of backend and its keys, a gateway in front of several backends
// names them in backends (see [BackendFile]) and sends services to them in
// routes (see [RouteFile]), each route with CORS keys of its own:
//
//	backends:
//	  greet:
//	    addresses: [127.0.0.1:9090]
//	  testing:
//	    addresses: [127.0.0.1:9190]
//	    descriptors: testing.binpb
//	routes:
//	  - services: ["greet.v1.*"]
//	    backend: greet
//	  - services: [grpc.testing.TestService]
//	    backend: testing
//	    allow-origin: [https://admin.example.com]
//
// [Load] refuses what would fail later: an unknown or misspelt key (keys are
// case-sensitive, at every level), a duplicate key, a value of the wrong
// type, and values out of range. Every error is one line that names the key.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/corsgate/corsgate/interceptor"
)

// MaxFileSize is the largest config file [Load] reads.
const MaxFileSize = 16 << 20

// Limits of the values [Load] accepts.
const (
	// MaxMaxAge is the largest max-age: [interceptor.MaxMaxAge], 24h,
	// Firefox's cap (Chromium caps at 2h).
	MaxMaxAge = interceptor.MaxMaxAge
	// MaxMessageSize is the largest max-message-size: 1 GiB.
	MaxMessageSize = 1 << 30
	// MaxRequestBuffer is the largest max-request-buffer: 64 GiB.
	MaxRequestBuffer = 64 << 30
	// MaxShutdownGrace is the largest shutdown-grace: 1h.
	MaxShutdownGrace = time.Hour
)

// File is a parsed config file. A key absent from the file leaves its field
// at the zero value; [File.Has] tells absent from zero.
type File struct {
	// Listen is the address the gateway serves on, "host:port".
	Listen string `json:"listen,omitempty"`
	// Backend is the gRPC backend: "host:port", or an http:// (h2c) or
	// https:// URL with no path.
	Backend string `json:"backend,omitempty"`
	// BackendTLS dials the backend with TLS.
	BackendTLS bool `json:"backend-tls,omitempty"`
	// BackendCA is a PEM file of CAs to verify the backend with.
	BackendCA string `json:"backend-ca,omitempty"`
	// BackendServerName is the name verified in the backend's certificate.
	BackendServerName string `json:"backend-server-name,omitempty"`
	// BackendInsecureSkipVerify dials the backend with TLS without verifying
	// its certificate: for test setups only; corsgate serve logs a warning.
	BackendInsecureSkipVerify bool `json:"backend-insecure-skip-verify,omitempty"`
	// TLSCert and TLSKey are the gateway's PEM certificate and key; both or neither.
	TLSCert string `json:"tls-cert,omitempty"`
	TLSKey  string `json:"tls-key,omitempty"`
	// Descriptors is a buf image or FileDescriptorSet (binary) file.
	Descriptors string `json:"descriptors,omitempty"`
	// AllowOrigin lists the origins allowed to call (exact, "https://*.example.com" or "*").
	AllowOrigin []string `json:"allow-origin,omitempty"`
	// AllowHeader lists extra request headers allowed for every procedure.
	AllowHeader []string `json:"allow-header,omitempty"`
	// ExposeHeader lists extra response headers exposed for every procedure.
	ExposeHeader []string `json:"expose-header,omitempty"`
	// AllowCredentials lets browsers send cookies and HTTP authentication.
	AllowCredentials bool `json:"allow-credentials,omitempty"`
	// MaxAge is how long a browser may cache a preflight: whole seconds, at
	// most [MaxMaxAge]. In the file: a number of seconds or a duration string.
	MaxAge Duration `json:"max-age,omitempty"`
	// PrivateNetwork answers Private Network Access preflights.
	PrivateNetwork bool `json:"private-network,omitempty"`
	// Strict refuses disallowed cross-origin requests with PERMISSION_DENIED.
	Strict bool `json:"strict,omitempty"`
	// TraceHeaders allows traceparent, tracestate and baggage on every
	// procedure; true when absent.
	TraceHeaders bool `json:"trace-headers,omitempty"`
	// MaxMessageSize is the largest message in bytes, 1 to [MaxMessageSize].
	MaxMessageSize int `json:"max-message-size,omitempty"`
	// MaxRequestBuffer bounds the request bytes buffered at once, over all
	// calls, 1 to [MaxRequestBuffer] and at least max-message-size + 5.
	MaxRequestBuffer int64 `json:"max-request-buffer,omitempty"`
	// MetricsListen is the address of the Prometheus /metrics endpoint.
	MetricsListen string `json:"metrics-listen,omitempty"`
	// GRPCListen is the address of the gRPC-only listener, served by
	// grpc-go's own transport.
	GRPCListen string `json:"grpc-listen,omitempty"`
	// ShutdownGrace is how long streams get to finish at shutdown, at most
	// [MaxShutdownGrace]. In the file: a number of seconds or a duration string.
	ShutdownGrace Duration `json:"shutdown-grace,omitempty"`
	// WebSockets serves improbable-eng/grpc-web's WebSocket transport.
	WebSockets bool `json:"websockets,omitempty"`
	// WebSocketPingInterval is how often WebSocket streams are pinged; 0
	// never pings. In the file: a number of seconds or a duration string.
	WebSocketPingInterval Duration `json:"websocket-ping-interval,omitempty"`
	// WebSocketMaxStreams bounds the WebSocket streams open at once.
	WebSocketMaxStreams int `json:"websocket-max-streams,omitempty"`
	// WebSocketAllowMissingOrigin lets upgrades without Origin through.
	WebSocketAllowMissingOrigin bool `json:"websocket-allow-missing-origin,omitempty"`
	// LogLevel is "debug", "info", "warn" or "error".
	LogLevel string `json:"log-level,omitempty"`
	// Watch reloads the config when this file or the TLS files change;
	// true when absent. SIGHUP reloads either way.
	Watch bool `json:"watch,omitempty"`
	// AccessLog is "off" (the default), "json" or "text": one line per
	// call on standard output.
	AccessLog string `json:"access-log,omitempty"`
	// BackendCert and BackendKey are the PEM client certificate and key the
	// gateway presents to the backend (mutual TLS); both or neither.
	BackendCert string `json:"backend-cert,omitempty"`
	BackendKey  string `json:"backend-key,omitempty"`
	// ClientCA is a PEM file of CAs that verify browsers' client
	// certificates on the listener (with tls-cert).
	ClientCA string `json:"client-ca,omitempty"`
	// ClientAuth is "require" (the default with client-ca) or
	// "verify-if-given".
	ClientAuth string `json:"client-auth,omitempty"`
	// Services are per-procedure rules; when present they replace the rules
	// derived from descriptors. Not a flag.
	Services []interceptor.Service `json:"services,omitempty"`
	// Backends are the named backends, in place of backend and its keys.
	// Not a flag.
	Backends map[string]*BackendFile `json:"backends,omitempty"`
	// Routes send services to backends, with per-route CORS settings. Not
	// a flag.
	Routes []RouteFile `json:"routes,omitempty"`

	present map[string]bool
}

// Has reports whether the file set key (a flag name such as "max-age").
func (f *File) Has(key string) bool { return f.present[key] }

// notFlag are the keys that are no flag of corsgate serve.
var notFlag = map[string]bool{"services": true, "backends": true, "routes": true}

// Values returns the keys the file set, except services, backends and
// routes, with values in the
// form `corsgate serve` flags parse: strings, bools, ints, lists of strings,
// and durations as Go duration strings. Hand it to cliflags.ApplyUnchanged so
// that flags given on the command line win.
func (f *File) Values() map[string]any {
	out := make(map[string]any, len(f.present))
	v := reflect.ValueOf(f).Elem()
	for i, field := range reflect.VisibleFields(v.Type()) {
		key := jsonName(field)
		if key == "" || notFlag[key] || !f.present[key] {
			continue
		}
		switch x := v.Field(i).Interface().(type) {
		case Duration:
			out[key] = time.Duration(x).String()
		case []string:
			out[key] = append([]string(nil), x...)
		default:
			out[key] = x
		}
	}
	return out
}

// Load reads and validates the config file at path. Relative file paths in
// it (tls-cert, tls-key, backend-ca, descriptors, and the like in backends)
// are resolved against the
// file's directory. Errors start with path and name the key.
func Load(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config %s: larger than %d bytes", path, MaxFileSize)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	paths := []*string{&f.TLSCert, &f.TLSKey, &f.BackendCA, &f.Descriptors, &f.BackendCert, &f.BackendKey, &f.ClientCA}
	for _, b := range f.Backends {
		paths = append(paths, &b.CA, &b.Cert, &b.Key, &b.Descriptors)
	}
	for _, p := range paths {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	return f, nil
}

// Parse parses and validates a config file's content (YAML or JSON). An empty
// document is a valid, empty config. Errors are one line; those about a key
// are a [*KeyError].
func Parse(data []byte) (*File, error) {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("invalid YAML: %s", oneLine(err.Error()))
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("invalid YAML: %s", oneLine(err.Error()))
	}
	f := &File{present: map[string]bool{}}
	switch doc := doc.(type) {
	case nil:
		return f, nil
	case map[string]any:
		for k, v := range doc {
			if v != nil { // "key:" with no value counts as absent
				f.present[k] = true
			}
		}
	default:
		return nil, fmt.Errorf("the file must be a map of keys to values, not a %s", jsonKind(doc))
	}
	if err := checkKeys("", reflect.TypeFor[File](), doc); err != nil {
		return nil, err
	}
	if err := yaml.UnmarshalStrict(data, f); err != nil {
		return nil, decodeError(err)
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return f, nil
}

// KeyError is an error about one key of the file.
type KeyError struct {
	// Key is the key's path: "max-age", "services[0].procedures[1].methods".
	Key string
	// Err says what is wrong with it.
	Err error
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("key %q: %s", e.Key, oneLine(e.Err.Error()))
}

// Unwrap returns the error inside.
func (e *KeyError) Unwrap() error { return e.Err }

func keyErrorf(key, format string, args ...any) *KeyError {
	return &KeyError{Key: key, Err: fmt.Errorf(format, args...)}
}

// Duration is a time.Duration read from a number of seconds (7200) or a Go
// duration string ("2h", "90s"). Convert it with time.Duration(d).
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	switch v := v.(type) {
	case nil: // null leaves d as it is, like encoding/json does
	case json.Number:
		n, err := v.Int64()
		if err != nil || n > int64(time.Duration(1<<63-1)/time.Second) || n < -int64(time.Duration(1<<63-1)/time.Second) {
			return fmt.Errorf("%s is not a whole number of seconds in range", v)
		}
		*d = Duration(time.Duration(n) * time.Second)
	case string:
		p, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is neither whole seconds (7200) nor a duration (\"2h\", \"90s\")", v)
		}
		*d = Duration(p)
	default:
		return fmt.Errorf("want whole seconds or a duration string, got %s", jsonKind(v))
	}
	return nil
}

// MarshalJSON implements json.Marshaler: whole seconds as a number, other
// durations as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	if time.Duration(d)%time.Second == 0 {
		return json.Marshal(int64(time.Duration(d) / time.Second))
	}
	return json.Marshal(time.Duration(d).String())
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkKeys walks the generic document v along Go type t and reports the
// first unknown key (a [*KeyError] with its path) and the first value a
// json.Unmarshaler field refuses. Type mismatches are left to the decoder.
func checkKeys(path string, t reflect.Type, v any) error {
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if v == nil {
			return nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return &KeyError{Key: path, Err: err}
		}
		if err := reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b); err != nil {
			return &KeyError{Key: path, Err: err}
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkKeys(path, t.Elem(), v)
	case reflect.Slice:
		list, ok := v.([]any)
		if !ok {
			return nil
		}
		for i, e := range list {
			if err := checkKeys(fmt.Sprintf("%s[%d]", path, i), t.Elem(), e); err != nil {
				return err
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		for _, k := range sortedKeys(m) {
			if err := checkKeys(path+"."+k, t.Elem(), m[k]); err != nil {
				return err
			}
		}
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		fields := map[string]reflect.Type{}
		var names []string
		for _, f := range reflect.VisibleFields(t) {
			if name := jsonName(f); name != "" {
				fields[name] = f.Type
				names = append(names, name)
			}
		}
		for _, k := range sortedKeys(m) {
			sub := k
			if path != "" {
				sub = path + "." + k
			}
			ft, ok := fields[k]
			if !ok {
				return unknownKey(sub, k, names)
			}
			if err := checkKeys(sub, ft, m[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

func unknownKey(path, key string, known []string) error {
	err := &KeyError{Key: path, Err: errors.New("unknown key")}
	if s := suggest(key, known); s != "" {
		err.Err = fmt.Errorf("unknown key; did you mean %q?", s)
	} else {
		err.Err = fmt.Errorf("unknown key; known keys here: %s", strings.Join(known, ", "))
	}
	return err
}

// decodeError turns an error of the typed decode into a one-line error that
// names the key where the decoder says which.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		key := te.Field
		if key == "" {
			key = "(top level)"
		}
		return keyErrorf(key, "want %s, got %s", describe(te.Type), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("invalid YAML: %s", oneLine(se.Error()))
	}
	// Unknown and duplicate keys were reported by checkKeys and
	// YAMLToJSONStrict; what remains is stripped of the wrappers' prefixes.
	msg := err.Error()
	if i := strings.LastIndex(msg, "json: "); i >= 0 {
		msg = msg[i+len("json: "):]
	}
	return errors.New(oneLine(msg))
}

func describe(t reflect.Type) string {
	if t == reflect.TypeFor[Duration]() {
		return "whole seconds or a duration string"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Slice:
		return "a list of " + strings.TrimPrefix(strings.TrimPrefix(describe(t.Elem()), "a "), "an ") + "s"
	case reflect.Struct, reflect.Map:
		return "a map"
	default:
		return t.String()
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "list"
	case map[string]any:
		return "map"
	default:
		return fmt.Sprintf("%T", v)
	}
}

func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func oneLine(s string) string {
	fields := strings.Fields(s)
	return strings.Join(fields, " ")
}
