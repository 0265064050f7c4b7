package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/corsgate/corsgate/internal/config"
)

const routedConfig = `
listen: 127.0.0.1:8080
allow-origin: [https://app.example.com]
backends:
  greet:
    addresses: [127.0.0.1:9090, 127.0.0.1:9091]
  testing:
    addresses: [127.0.0.1:9190]
    descriptors: testing.binpb
    tls: true
    cert: client.pem
    key: client-key.pem
routes:
  - services: ["greet.v1.*"]
    backend: greet
  - services: ["grpc.testing.TestService"]
    backend: testing
    allow-origin: [https://admin.example.com]
    max-age: 60
    allow-credentials: false
`

func TestLoadRouted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "corsgate.yaml")
	if err := os.WriteFile(path, []byte(routedConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.BackendNames(); !slices.Equal(got, []string{"greet", "testing"}) {
		t.Errorf("BackendNames = %q", got)
	}
	if got := f.Backends["greet"].Addresses; !slices.Equal(got, []string{"127.0.0.1:9090", "127.0.0.1:9091"}) {
		t.Errorf("greet addresses = %q", got)
	}
	tb := f.Backends["testing"]
	if tb.Descriptors != filepath.Join(dir, "testing.binpb") || tb.Cert != filepath.Join(dir, "client.pem") || !tb.TLS {
		t.Errorf("testing backend = %+v, want paths resolved against %s", tb, dir)
	}
	if len(f.Routes) != 2 || f.Routes[1].Backend != "testing" {
		t.Fatalf("routes = %+v", f.Routes)
	}
	o := f.Routes[1].Overrides()
	if !slices.Equal(o.AllowOrigins, []string{"https://admin.example.com"}) || o.MaxAge == nil || *o.MaxAge != time.Minute ||
		o.AllowCredentials == nil || *o.AllowCredentials || o.Strict != nil || o.AllowHeaders != nil {
		t.Errorf("route overrides = %+v", o)
	}
	if o := f.Routes[0].Overrides(); o.AllowOrigins != nil || o.MaxAge != nil {
		t.Errorf("route 0 overrides %+v, want none", o)
	}
	if _, ok := f.Values()["backends"]; ok {
		t.Error("Values has backends, which is no flag")
	}
}

func TestParseRoutedRefused(t *testing.T) {
	t.Parallel()
	const backends = "backends: {greet: {addresses: [\"g:1\"]}, testing: {addresses: [\"t:1\"]}}\n"
	tests := []struct {
		name, doc, key string
	}{
		{name: "two routes claim a service", key: "routes[1].services[0]",
			doc: backends + "routes: [{services: [\"greet.*\"], backend: greet}, {services: [greet.v1.S], backend: testing}]"},
		{name: "unknown backend", key: "routes[0].backend", doc: backends + "routes: [{services: [a.B], backend: other}]"},
		{name: "no address", key: "backends.greet.addresses", doc: "backends: {greet: {addresses: []}}"},
		{name: "unknown key in a backend", key: "backends.greet.adress", doc: "backends: {greet: {adress: [\"g:1\"]}}"},
		{name: "unknown key in a route", key: "routes[0].origin", doc: backends + "routes: [{services: [a.B], backend: greet, origin: [x]}]"},
		{name: "route origin refused", key: "routes[0].allow-origin", doc: backends + "routes: [{services: [a.B], backend: greet, allow-origin: [\"null\"]}]"},
		{name: "route credentials with the default star", key: "routes[0].allow-credentials",
			doc: "allow-origin: [\"*\"]\n" + backends + "routes: [{services: [a.B], backend: greet, allow-credentials: true}]"},
		{name: "backend with backends", key: "backend", doc: "backend: g:1\n" + backends},
		{name: "descriptors with backends", key: "descriptors", doc: "descriptors: a.binpb\n" + backends},
		{name: "routes without backends", key: "routes", doc: "routes: [{services: [a.B], backend: greet}]"},
		{name: "client-auth without client-ca", key: "client-auth", doc: "client-auth: require"},
		{name: "backend-cert without key", key: "backend-key", doc: "backend-cert: c.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Parse([]byte(tt.doc))
			var ke *config.KeyError
			if !errors.As(err, &ke) || ke.Key != tt.key {
				t.Fatalf("Parse error = %v, want a KeyError for %q", err, tt.key)
			}
		})
	}
}
