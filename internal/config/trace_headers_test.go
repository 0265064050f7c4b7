package config_test

import (
	"testing"

	"github.com/corsgate/corsgate/internal/config"
)

// TestTraceHeadersKey checks that trace-headers reaches its flag when set,
// and that a route may set it for its own services.
func TestTraceHeadersKey(t *testing.T) {
	t.Parallel()
	f, err := config.Parse([]byte("trace-headers: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := f.Values()["trace-headers"]; !ok || v != false {
		t.Errorf(`Values()["trace-headers"] = %v, %v; want false, true`, v, ok)
	}
	f, err = config.Parse([]byte("listen: 127.0.0.1:8080\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Values()["trace-headers"]; ok {
		t.Error("trace-headers absent from the file, but in Values(): the flag's default (true) would be overridden")
	}
	f, err = config.Parse([]byte(`
backends:
  greet:
    addresses: [127.0.0.1:9090]
routes:
  - services: ["greet.v1.*"]
    backend: greet
    trace-headers: false
`))
	if err != nil {
		t.Fatal(err)
	}
	if o := f.Routes[0].Overrides(); o.TraceHeaders == nil || *o.TraceHeaders {
		t.Errorf("route's Overrides().TraceHeaders = %v, want false", o.TraceHeaders)
	}
}
