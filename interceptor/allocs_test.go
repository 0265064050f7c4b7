package interceptor

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fakeWriter is a ResponseWriter whose header map is reused, as rs/cors's
// own benchmarks do, so allocations measured are the middleware's.
type fakeWriter struct {
	header http.Header
	code   int
}

func (w *fakeWriter) Header() http.Header         { return w.header }
func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *fakeWriter) WriteHeader(code int)        { w.code = code }

var noop = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

func preflightRequest(path, origin, method, acrh string) *http.Request {
	r := httptest.NewRequest(http.MethodOptions, path, nil)
	r.Header.Set(hOrigin, origin)
	r.Header.Set(hACRM, method)
	if acrh != "" {
		r.Header.Set(hACRH, acrh)
	}
	return r
}

func actualRequest(path, origin string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, nil)
	if origin != "" {
		r.Header.Set(hOrigin, origin)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Connect-Protocol-Version", "1")
	return r
}

// TestZeroAllocs holds the hot paths to zero allocations per request in
// every test run, not only when benchmarks run. The policy has no
// WithTracing: without it, the spans' code costs nothing per request.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items and allocates")
	}
	p := mustNew(t, WithAllowedOrigins(appOrigin, "https://*.corp.example"), WithCredentials(true))
	h := p.Handler(greetTable(t), noop)
	tests := []struct {
		name string
		r    *http.Request
	}{
		{name: "preflight granted", r: preflightRequest(pathGreet, appOrigin, "GET", "Authorization, X-Request-Id,content-type")},
		{name: "preflight pattern", r: preflightRequest(pathGreet, "https://a.corp.example", "POST", "content-type")},
		{name: "preflight refused origin", r: preflightRequest(pathGreet, "https://evil.example.net", "POST", "")},
		{name: "preflight refused header", r: preflightRequest(pathSet, appOrigin, "POST", "x-secret")},
		{name: "preflight unknown", r: preflightRequest("/a.b/C", appOrigin, "POST", "")},
		{name: "preflight 1MiB commas", r: preflightRequest(pathSet, appOrigin, "POST", strings.Repeat(",", 1<<20))},
		{name: "actual granted", r: actualRequest(pathGreet, appOrigin)},
		{name: "actual pattern", r: actualRequest(pathGreet, "https://a.corp.example")},
		{name: "actual refused", r: actualRequest(pathGreet, "https://evil.example.net")},
		{name: "actual no origin", r: actualRequest(pathGreet, "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &fakeWriter{header: make(http.Header)}
			h.ServeHTTP(w, tt.r) // warm the writer pool
			if n := testing.AllocsPerRun(200, func() {
				clear(w.header)
				h.ServeHTTP(w, tt.r)
			}); n != 0 {
				t.Errorf("allocs per request = %v, want 0", n)
			}
		})
	}
}
