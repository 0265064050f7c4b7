package interceptor

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestTraceHeaders checks that a preflight from a page instrumented with
// OpenTelemetry web (traceparent, tracestate, baggage on every fetch) is
// allowed by default and refused with WithTraceHeaders(false), unless the
// header is configured by name (whatwg/fetch#911).
func TestTraceHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		opts    []Option
		acrh    string
		allowed bool
	}{
		{name: "default", acrh: "content-type, traceparent, tracestate", allowed: true},
		{name: "default baggage", acrh: "traceparent, baggage, connect-protocol-version", allowed: true},
		{name: "off", opts: []Option{WithTraceHeaders(false)}, acrh: "content-type, traceparent", allowed: false},
		{name: "off but configured", opts: []Option{WithTraceHeaders(false), WithAllowedHeaders("traceparent")}, acrh: "traceparent", allowed: true},
		{name: "off, protocol headers still allowed", opts: []Option{WithTraceHeaders(false)}, acrh: "content-type, x-grpc-web", allowed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustNew(t, append([]Option{WithAllowedOrigins(appOrigin)}, tt.opts...)...)
			h := p.Handler(greetTable(t), nil)
			r := httptest.NewRequest(http.MethodOptions, pathGreet, nil)
			r.Header.Set("Origin", appOrigin)
			r.Header.Set(hACRM, http.MethodPost)
			r.Header.Set(hACRH, tt.acrh)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if got := w.Code == http.StatusNoContent; got != tt.allowed {
				t.Fatalf("preflight with %q: status %d, want allowed=%v", tt.acrh, w.Code, tt.allowed)
			}
		})
	}
}
