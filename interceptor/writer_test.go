package interceptor

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// TestWriterRestoresCORS drives the wrapper's two paths (the quick check
// that nothing changed, and the full repair) with handlers that change the
// CORS headers in every way that keeps or changes the number of keys.
func TestWriterRestoresCORS(t *testing.T) {
	t.Parallel()
	const evil = "https://evil.example.net"
	tests := []struct {
		name        string
		credentials bool
		origin      string
		outer       func(http.Header) // headers set before the policy runs
		handler     func(http.ResponseWriter)
		want        map[string][]string // nil value: absent
	}{
		{
			name:    "untouched",
			origin:  appOrigin,
			handler: func(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) },
			want:    map[string][]string{hACAO: {appOrigin}, hACEH: {protocolACEH}, hVary: {"Origin"}, hACAC: nil},
		},
		{
			name:   "ACAO replaced, same key count",
			origin: appOrigin,
			handler: func(w http.ResponseWriter) {
				w.Header().Set(hACAO, "*")
				w.WriteHeader(http.StatusOK)
			},
			want: map[string][]string{hACAO: {appOrigin}},
		},
		{
			name:   "ACAO added to",
			origin: appOrigin,
			handler: func(w http.ResponseWriter) {
				w.Header().Add(hACAO, "https://other.example")
				_, _ = w.Write([]byte("x"))
			},
			want: map[string][]string{hACAO: {appOrigin}},
		},
		{
			name:   "ACEH swapped for another key",
			origin: appOrigin,
			handler: func(w http.ResponseWriter) {
				w.Header().Del(hACEH)
				w.Header().Set("X-Foo", "1")
				w.WriteHeader(http.StatusOK)
			},
			want: map[string][]string{hACEH: {protocolACEH}, "X-Foo": {"1"}},
		},
		{
			name:   "Vary swapped for a preflight header",
			origin: appOrigin,
			handler: func(w http.ResponseWriter) {
				w.Header().Del(hVary)
				w.Header().Set(hACAM, "DELETE")
				w.WriteHeader(http.StatusOK)
			},
			want: map[string][]string{hVary: {"Origin"}, hACAM: nil},
		},
		{
			name:   "Vary replaced",
			origin: appOrigin,
			handler: func(w http.ResponseWriter) {
				w.Header().Set(hVary, "Accept-Encoding")
				w.WriteHeader(http.StatusOK)
			},
			want: map[string][]string{hVary: {"Accept-Encoding", "Origin"}},
		},
		{
			name:   "credentials the policy does not allow",
			origin: appOrigin,
			handler: func(w http.ResponseWriter) {
				w.Header().Set(hACAC, "true")
				w.WriteHeader(http.StatusOK)
			},
			want: map[string][]string{hACAC: nil, hACAO: {appOrigin}},
		},
		{
			name:        "credentials swapped for another key",
			credentials: true,
			origin:      appOrigin,
			handler: func(w http.ResponseWriter) {
				w.Header().Del(hACAC)
				w.Header().Set("X-Foo", "1")
				w.WriteHeader(http.StatusOK)
			},
			want: map[string][]string{hACAC: {"true"}},
		},
		{
			name:   "outer header swapped for credentials",
			origin: appOrigin,
			outer:  func(h http.Header) { h.Set("X-Outer", "1") },
			handler: func(w http.ResponseWriter) {
				w.Header().Del("X-Outer")
				w.Header().Set(hACAC, "true")
				w.WriteHeader(http.StatusOK)
			},
			want: map[string][]string{hACAC: nil, "X-Outer": nil, hACAO: {appOrigin}},
		},
		{
			name:   "outer Vary kept",
			origin: appOrigin,
			outer:  func(h http.Header) { h.Set(hVary, "Accept-Encoding") },
			handler: func(w http.ResponseWriter) {
				w.WriteHeader(http.StatusOK)
			},
			want: map[string][]string{hVary: {"Accept-Encoding", "Origin"}, hACAO: {appOrigin}},
		},
		{
			name:   "refused origin, handler's ACAO dropped",
			origin: evil,
			handler: func(w http.ResponseWriter) {
				w.Header().Set(hACAO, evil)
				w.WriteHeader(http.StatusOK)
			},
			want: map[string][]string{hACAO: nil, hACEH: nil, hVary: {"Origin"}},
		},
		{
			name: "no origin, handler's ACAO dropped",
			handler: func(w http.ResponseWriter) {
				w.Header().Set(hACAO, "*")
				w.WriteHeader(http.StatusOK)
			},
			want: map[string][]string{hACAO: nil, hVary: {"Origin"}},
		},
		{
			name:    "handler never writes",
			origin:  appOrigin,
			handler: func(w http.ResponseWriter) { w.Header().Set(hACAO, "*") },
			want:    map[string][]string{hACAO: {appOrigin}},
		},
		{
			name:   "flush sends the fixed header",
			origin: appOrigin,
			handler: func(w http.ResponseWriter) {
				w.Header().Set(hACEH, "X-Secret")
				_ = http.NewResponseController(w).Flush()
				w.Header().Set(hACEH, "X-Late") // after the header went out
			},
			want: map[string][]string{hACEH: {protocolACEH}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustNew(t, WithAllowedOrigins(appOrigin), WithCredentials(tt.credentials))
			h := p.Handler(greetTable(t), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { tt.handler(w) }))
			w := httptest.NewRecorder()
			if tt.outer != nil {
				tt.outer(w.Header())
			}
			h.ServeHTTP(w, actualRequest(pathSet, tt.origin))
			sent := w.Result().Header // as at the moment the header was written
			for k, want := range tt.want {
				if got := sent.Values(k); !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", k, got, want)
				}
			}
		})
	}
}
