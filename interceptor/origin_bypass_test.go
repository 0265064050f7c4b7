package interceptor

import (
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/corsgate/corsgate/internal/testutil"
)

// TestOriginBypassCorpus builds a corpus of attack origins from
// every configured origin and checks, through the middleware (preflight and
// actual request, strict or not, with or without credentials), that exactly
// the origins the reference matcher allows get Access-Control-Allow-Origin,
// byte for byte equal to their Origin: zero bypasses, and no legitimate
// origin refused.
func TestOriginBypassCorpus(t *testing.T) {
	t.Parallel()
	ref := testutil.NewOriginReference(t)
	corpus := testutil.OriginCorpus()

	var wantAllowed int
	for _, o := range corpus {
		if ref.Allows(o) {
			wantAllowed++
		}
	}
	// The corpus must hold both kinds, or the test proves nothing.
	if wantAllowed < 15 || len(corpus)-wantAllowed < 500 {
		t.Fatalf("corpus of %d origins has %d allowed ones; want at least 15 allowed and 500 refused", len(corpus), wantAllowed)
	}
	t.Logf("corpus: %d origins, %d allowed by the reference", len(corpus), wantAllowed)

	for _, mode := range []struct {
		name        string
		strict      bool
		credentials bool
	}{
		{name: "default"}, {name: "strict", strict: true}, {name: "credentials", credentials: true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			var (
				mu      sync.Mutex
				fnCalls []string
			)
			p := mustNew(t, WithAllowedOrigins(testutil.CorpusOrigins...), WithStrict(mode.strict), WithCredentials(mode.credentials),
				WithOriginFunc(func(o string) bool {
					mu.Lock()
					fnCalls = append(fnCalls, o)
					mu.Unlock()
					return false
				}))
			h := p.Handler(greetTable(t), noop)
			var bypasses, refused []string
			for _, o := range corpus {
				want := ref.Allows(o)
				for _, preflight := range []bool{true, false} {
					var r *http.Request
					if preflight {
						r = preflightRequest(pathSet, appOrigin, "POST", "content-type")
					} else {
						r = actualRequest(pathSet, appOrigin)
					}
					r.Header[hOrigin] = []string{o}
					w := &fakeWriter{header: make(http.Header)}
					h.ServeHTTP(w, r)
					acao, got := w.header[hACAO]
					switch {
					case got && !want:
						bypasses = append(bypasses, testutil.Short(o))
					case !got && want:
						refused = append(refused, testutil.Short(o))
					case got && (len(acao) != 1 || acao[0] != o):
						t.Errorf("origin %q got Access-Control-Allow-Origin %q, want it byte for byte", o, acao)
					}
					if got && mode.credentials && w.header.Get(hACAC) != "true" {
						t.Errorf("origin %q allowed without Access-Control-Allow-Credentials", o)
					}
					if !got && w.header.Get(hACAC) != "" {
						t.Errorf("origin %q refused but Access-Control-Allow-Credentials is set", o)
					}
					if preflight && got != (w.code == http.StatusNoContent) {
						t.Errorf("origin %q: preflight status %d with ACAO %v", o, w.code, got)
					}
					if !preflight && mode.strict && !got && w.code == http.StatusOK {
						t.Errorf("origin %q: strict mode let a refused actual request through", o)
					}
				}
			}
			if len(bypasses) > 0 {
				t.Errorf("%d bypasses (allowed, but the reference refuses): %s", len(bypasses), strings.Join(bypasses, ", "))
			}
			if len(refused) > 0 {
				t.Errorf("%d legitimate origins refused: %s", len(refused), strings.Join(refused, ", "))
			}
			mu.Lock()
			defer mu.Unlock()
			if len(fnCalls) == 0 {
				t.Error("the origin func was never consulted: the test does not reach it")
			}
		})
	}
}

// TestOriginFuncInput checks what WithOriginFunc documents: the
// function sees only valid, lowercase serialized origins, never "null" nor
// an origin no browser sends, over the whole bypass corpus.
func TestOriginFuncInput(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		calls []string
	)
	p := mustNew(t, WithAllowedOrigins(testutil.CorpusOrigins...), WithOriginFunc(func(o string) bool {
		mu.Lock()
		calls = append(calls, o)
		mu.Unlock()
		return false
	}))
	h := p.Handler(greetTable(t), noop)
	for _, c := range testutil.CorpusOrigins {
		for _, o := range testutil.BypassVariants(c) {
			r := preflightRequest(pathSet, o, "POST", "")
			h.ServeHTTP(&fakeWriter{header: make(http.Header)}, r)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) == 0 {
		t.Fatal("the origin func was never consulted")
	}
	bad := map[string]bool{}
	for _, o := range calls {
		if !testutil.SerializedOrigin(o) {
			bad[testutil.Short(o)] = true
		}
	}
	if len(bad) > 0 {
		t.Errorf("origin func called with %d origins no browser sends: %v", len(bad), slices.Sorted(maps.Keys(bad)))
	}
}

// TestOriginForms checks the forms of a configured origin one by
// one: what New refuses, and which request origins each accepted form lets
// in.
func TestOriginForms(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		configured string
		wantErr    string   // New's error, "" when accepted
		allows     []string // request origins that must get ACAO
		refuses    []string // request origins that must not
	}{
		{name: "uppercase scheme and host", configured: "HTTPS://APP.Example.COM",
			allows: []string{"https://app.example.com"}, refuses: []string{"HTTPS://APP.EXAMPLE.COM", "https://APP.example.com", "Https://app.example.com"}},
		{name: "default port given", configured: "https://app.example.com:443",
			allows: []string{"https://app.example.com"}, refuses: []string{"https://app.example.com:443", "http://app.example.com"}},
		{name: "http default port given", configured: "http://app.example.com:80",
			allows: []string{"http://app.example.com"}, refuses: []string{"http://app.example.com:80", "https://app.example.com"}},
		{name: "explicit port", configured: "https://app.example.com:8443",
			allows: []string{"https://app.example.com:8443"}, refuses: []string{"https://app.example.com", "https://app.example.com:443", "https://app.example.com:08443", "https://app.example.com:8444"}},
		{name: "pattern with port", configured: "https://*.example.com:8443",
			allows: []string{"https://a.example.com:8443"}, refuses: []string{"https://a.example.com", "https://example.com:8443", "https://a.example.com:8444"}},
		{name: "punycode", configured: "https://xn--bcher-kva.example",
			allows: []string{"https://xn--bcher-kva.example"}, refuses: []string{"https://bücher.example", "https://XN--BCHER-KVA.example"}},
		{name: "punycode pattern", configured: "https://*.xn--bcher-kva.example",
			allows: []string{"https://a.xn--bcher-kva.example", "https://xn--caf-dma.xn--bcher-kva.example"}, refuses: []string{"https://a.bücher.example", "https://xn--bcher-kva.example"}},
		{name: "IPv6 written long", configured: "http://[0:0:0:0:0:0:0:1]:8080",
			allows: []string{"http://[::1]:8080"}, refuses: []string{"http://[0:0:0:0:0:0:0:1]:8080", "http://[::1]"}},
		{name: "unicode host", configured: "https://bücher.example", wantErr: "punycode"},
		{name: "unicode pattern", configured: "https://*.bücher.example", wantErr: "punycode"},
		{name: "null", configured: "null", wantErr: "can never be trusted"},
		{name: "userinfo", configured: "https://user@app.example.com", wantErr: "user info"},
		{name: "userinfo looking like host", configured: "https://app.example.com@evil.com", wantErr: "user info"},
		{name: "huge", configured: "https://" + strings.Repeat("a", 64<<10) + ".example.com", wantErr: "longer than 253"},
		{name: "label over 63 bytes", configured: "https://" + strings.Repeat("a", 64) + ".example.com", wantErr: "too long label"},
		{name: "huge host", configured: "https://" + strings.Repeat("a.", 200) + "example.com", wantErr: "longer than 253"},
		{name: "no scheme", configured: "app.example.com", wantErr: "no scheme"},
		{name: "scheme only", configured: "https://", wantErr: "no host"},
		{name: "port zero", configured: "https://app.example.com:0", wantErr: "invalid port"},
		{name: "port leading zero", configured: "https://app.example.com:0443", wantErr: "invalid port"},
		{name: "control byte", configured: "https://app.example.com\x00", wantErr: "invalid character"},
		{name: "space", configured: "https://app example.com", wantErr: "spaces"},
		{name: "backslash", configured: "https://app.example.com\\evil.com", wantErr: "spaces"},
		{name: "percent", configured: "https://app%2eexample.com", wantErr: "invalid character"},
		{name: "wildcard bare", configured: "https://*", wantErr: "somebody else"},
		{name: "wildcard any scheme", configured: "*://app.example.com", wantErr: "invalid scheme"},
		{name: "wildcard suffix", configured: "https://app.example.*", wantErr: "somebody else"},
		{name: "wildcard port", configured: "https://app.example.com:*", wantErr: "invalid port"},
		{name: "wildcard over registrable suffix", configured: "https://*.com.au", wantErr: "public suffix"},
		{name: "wildcard over localhost", configured: "http://*.localhost", wantErr: "top-level"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := New(WithAllowedOrigins(tt.configured))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New(%s) error = %v, want one containing %q", testutil.Short(tt.configured), err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error has several lines: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%s): %v", testutil.Short(tt.configured), err)
			}
			h := p.Handler(greetTable(t), noop)
			check := func(origin string, want bool) {
				r := preflightRequest(pathSet, origin, "POST", "content-type")
				w := &fakeWriter{header: make(http.Header)}
				h.ServeHTTP(w, r)
				if got := w.header.Get(hACAO); (got == origin) != want || (got != "" && got != origin) {
					t.Errorf("origin %q: ACAO %q, want allowed=%v", origin, got, want)
				}
			}
			for _, o := range tt.allows {
				check(o, true)
			}
			for _, o := range tt.refuses {
				check(o, false)
			}
		})
	}
}

// TestStarOrigin checks "*": any valid origin gets "*" (never an
// echo, which would let credentials through), "null" and malformed origins
// get nothing, and "*" with credentials is refused.
func TestStarOrigin(t *testing.T) {
	t.Parallel()
	p := mustNew(t, WithAllowedOrigins("*"))
	h := p.Handler(greetTable(t), noop)
	for _, o := range []string{"https://evil.com", "http://localhost:1", "https://a.b.c.d"} {
		w := &fakeWriter{header: make(http.Header)}
		h.ServeHTTP(w, preflightRequest(pathSet, o, "POST", ""))
		if got := w.header[hACAO]; !slices.Equal(got, []string{"*"}) || w.header.Get(hACAC) != "" {
			t.Errorf("origin %q: ACAO %q ACAC %q, want * without credentials", o, got, w.header.Get(hACAC))
		}
	}
	for _, o := range []string{"null", "", "https://a.com/", "evil", "https://a.com@b.com"} {
		w := &fakeWriter{header: make(http.Header)}
		h.ServeHTTP(w, preflightRequest(pathSet, o, "POST", ""))
		if got, ok := w.header[hACAO]; ok {
			t.Errorf("origin %q: ACAO %q, want none", o, got)
		}
	}
	for _, opts := range [][]Option{
		{WithAllowedOrigins("*"), WithCredentials(true)},
		{WithCredentials(true), WithAllowedOrigins("*")},
		{WithAllowedOrigins("https://a.example.com"), WithAllowedOrigins("*"), WithCredentials(true)},
		{WithAllowedOrigins("*"), WithCredentials(false), WithCredentials(true)},
	} {
		if _, err := New(opts...); err == nil {
			t.Errorf("New accepted \"*\" with credentials (%d options)", len(opts))
		}
	}
}
