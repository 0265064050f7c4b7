package interceptor

import (
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// hardShort quotes s, cut to 80 bytes, for messages about huge inputs.
func hardShort(s string) string {
	if len(s) > 80 {
		return strconv.Quote(s[:80]) + "..."
	}
	return strconv.Quote(s)
}

// hardConfiguredOrigins are the allowed origins of the bypass corpus: every kind
// New accepts (exact, default and explicit ports, IPv4, IPv6, punycode,
// subdomain patterns with and without a port, uppercase input).
var hardConfiguredOrigins = []string{
	"https://app.example.com",
	"HTTPS://Upper.Example.COM",
	"https://default-port.example.com:443",
	"http://localhost:5173",
	"https://127.0.0.1:9443",
	"http://[::1]:8080",
	"https://xn--bcher-kva.example",
	"https://*.example.net",
	"https://*.corp.example.org:8443",
	"http://*.dev.example.io",
}

// hardRefOrigin is an allowed origin as the reference matcher sees it.
type hardRefOrigin struct {
	scheme, host, port string // lowercase; port "" when the scheme's default
	wildcard           bool   // host is the base of "*.base"
}

// hardParseRefOrigin parses a configured origin with net/url, independently of
// the code under test.
func hardParseRefOrigin(tb testing.TB, s string) hardRefOrigin {
	tb.Helper()
	u, err := url.Parse(strings.ToLower(s))
	if err != nil {
		tb.Fatalf("configured origin %s: %v", hardShort(s), err)
	}
	o := hardRefOrigin{scheme: u.Scheme, host: u.Hostname(), port: u.Port()}
	if strings.Contains(o.host, ":") {
		if a, err := netip.ParseAddr(o.host); err == nil {
			o.host = a.String()
		}
		o.host = "[" + o.host + "]"
	}
	if (o.scheme == "https" && o.port == "443") || (o.scheme == "http" && o.port == "80") {
		o.port = ""
	}
	if base, ok := strings.CutPrefix(o.host, "*."); ok {
		o.host, o.wildcard = base, true
	}
	return o
}

// hardReferenceAllows is the slow, obvious definition of who may call: a request
// Origin is allowed when it is exactly a browser-serialized origin
// (lowercase scheme://host[:port], no default port, nothing else) whose
// scheme, host and port equal a configured origin's, or whose host is one or
// more DNS labels followed by ".base" of a pattern with the same scheme and
// port, labels a browser can send: 1 to 63 bytes, not starting or ending
// with "-", in a host of at most 253 bytes.
func hardReferenceAllows(allowed []hardRefOrigin, origin string) bool {
	if !hardSerializedOrigin(origin) {
		return false
	}
	u, _ := url.Parse(origin)
	host, port := u.Hostname(), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	for _, a := range allowed {
		if a.scheme != u.Scheme || a.port != port {
			continue
		}
		if !a.wildcard {
			if host == a.host {
				return true
			}
			continue
		}
		sub, ok := strings.CutSuffix(host, "."+a.host)
		if !ok || sub == "" || len(host) > 253 {
			continue
		}
		good := true
		for _, label := range strings.Split(sub, ".") {
			if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") ||
				strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
				good = false
			}
		}
		if good {
			return true
		}
	}
	return false
}

// hardSerializedOrigin reports whether origin is exactly what a browser
// serializes: lowercase scheme://host[:port] with a port from 1 to 65535,
// written without leading zeros and never the scheme's default, and
// nothing else.
func hardSerializedOrigin(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Opaque != "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" ||
		u.ForceQuery || u.OmitHost || u.RawPath != "" {
		return false
	}
	host, port := u.Hostname(), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	serialized := u.Scheme + "://" + host
	if port != "" {
		serialized += ":" + port
	}
	if serialized != origin || origin != strings.ToLower(origin) {
		return false
	}
	if (u.Scheme == "https" && port == "443") || (u.Scheme == "http" && port == "80") {
		return false // browsers never serialize the default port
	}
	if port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return false
		}
	}
	return host != "" && host != "[]"
}

// hardBypassVariants derives attack origins from one configured origin: suffix,
// prefix and embedded forms, scheme, port, case, encoding and Unicode
// variants. Some variants are legitimately allowed (a subdomain under a
// pattern); the reference matcher decides.
func hardBypassVariants(configured string) []string {
	o := strings.ToLower(configured)
	scheme, rest, _ := strings.Cut(o, "://")
	host, port := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, port = rest[:i], rest[i+1:]
	}
	host = strings.TrimPrefix(host, "*.")
	hp := host
	if port != "" {
		hp += ":" + port
	}
	other := map[string]string{"https": "http", "http": "https"}[scheme]
	def := map[string]string{"https": "443", "http": "80"}[scheme]
	s := scheme + "://"
	v := []string{
		// the configured origin itself and its legitimate forms
		s + hp, s + "a." + hp, s + "a.b." + hp,
		// suffix
		s + host + ".evil.com" + hardPortSuffix(port), s + host + "-evil.com", s + host + "evil.com", s + hp + ".evil.com",
		s + host + ".", s + hp + ".", s + host + "..evil.com", s + host + "%2eevil.com", s + hp + "evil",
		s + host + "\x00.evil.com", s + host + "%00.evil.com", s + host + ".evil.com:" + port,
		// prefix
		s + "evil" + hp, s + "evil-" + hp, s + "evil." + hp, s + "." + hp, s + ".." + hp, s + "a.." + hp,
		s + "-." + hp, s + "*." + hp, s + "%2a." + hp, s + "a%2e" + hp, s + "a/" + hp, s + "a\\." + hp,
		// embedded
		s + "evil.com/" + hp, s + "evil.com?" + hp, s + "evil.com#" + hp, s + "evil.com\\" + hp,
		s + hp + "@evil.com", s + "evil.com@" + hp, s + "user:pass@" + hp, s + hp + "/", s + hp + "/path",
		s + hp + "?q", s + hp + "#f", s + hp + "/.evil.com", s + host + ".evil.com/" + hp,
		// scheme
		other + "://" + hp, strings.ToUpper(scheme) + "://" + hp, "Https://" + hp, "ws://" + hp, "wss://" + hp,
		"ftp://" + hp, "file://" + hp, scheme + ":" + hp, scheme + ":/" + hp, scheme + ":///" + hp, "//" + hp,
		hp, scheme + "s://" + hp, " " + s + hp, s + hp + " ", s + hp + "\t", s + hp + "\r\n", s + " " + hp,
		"javascript://" + hp, "null", "", "*",
		// port
		s + host + ":" + def, s + host + ":" + hardBump(port, def), s + host + ":0", s + host + ":",
		s + host + ":65536", s + host + ":99999", s + host + ":0" + hardNonEmpty(port, def), s + host + ":+" + hardNonEmpty(port, def),
		s + host + ":-1", s + hp + ":" + hardNonEmpty(port, def), s + host + ":" + hardNonEmpty(port, def) + "0",
		s + host + ":" + port + ".evil.com",
		// case and encoding
		s + strings.ToUpper(hp), s + strings.ToUpper(host[:1]) + hp[1:], s + url.PathEscape(hp),
		s + strings.ReplaceAll(hp, ".", "%2e"), s + strings.ReplaceAll(hp, ".", "。"),
		// Unicode lookalikes of the host
		s + strings.Replace(hp, "a", "а", 1), s + strings.Replace(hp, "e", "е", 1), s + strings.Replace(hp, "o", "ο", 1),
		s + strings.ReplaceAll(hp, "xn--bcher-kva", "bücher"),
		// huge
		s + strings.Repeat("a.", 40000) + hp, s + hp + strings.Repeat("a", 1<<16),
	}
	return v
}

func hardPortSuffix(port string) string {
	if port == "" {
		return ""
	}
	return ":" + port
}

func hardNonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// hardBump returns a port next to port (or to def).
func hardBump(port, def string) string {
	n, _ := strconv.Atoi(hardNonEmpty(port, def))
	return strconv.Itoa(n + 1)
}

// TestHardeningOriginBypassCorpus builds a corpus of attack origins from
// every configured origin and checks, through the middleware (preflight and
// actual request, strict or not, with or without credentials), that exactly
// the origins the reference matcher allows get Access-Control-Allow-Origin,
// byte for byte equal to their Origin: zero bypasses, and no legitimate
// origin refused.
func TestHardeningOriginBypassCorpus(t *testing.T) {
	t.Parallel()
	var allowed []hardRefOrigin
	for _, o := range hardConfiguredOrigins {
		allowed = append(allowed, hardParseRefOrigin(t, o))
	}
	var corpus []string
	seen := map[string]bool{}
	for _, o := range hardConfiguredOrigins {
		for _, v := range hardBypassVariants(o) {
			if !seen[v] {
				seen[v] = true
				corpus = append(corpus, v)
			}
		}
	}
	// Origins that are not derived from a configured one.
	for _, v := range []string{
		"https://evil.com", "https://example.com", "https://example.net", "https://com", "https://net",
		"https://corp.example.org:8443", "https://example.org:8443", "http://example.io", "https://dev.example.io",
		"http://127.0.0.1:9443", "https://[::1]:8080", "http://[::1]", "http://[0:0:0:0:0:0:0:1]:8080",
		"http://[::ffff:127.0.0.1]:8080", "https://2130706433:9443", "https://0x7f.0.0.1:9443",
		"https://localhost:5173", "http://localhost", "http://localhost.:5173", "http://LOCALHOST:5173",
	} {
		if !seen[v] {
			seen[v] = true
			corpus = append(corpus, v)
		}
	}

	var wantAllowed int
	for _, o := range corpus {
		if hardReferenceAllows(allowed, o) {
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
			p := mustNew(t, WithAllowedOrigins(hardConfiguredOrigins...), WithStrict(mode.strict), WithCredentials(mode.credentials),
				WithOriginFunc(func(o string) bool {
					mu.Lock()
					fnCalls = append(fnCalls, o)
					mu.Unlock()
					return false
				}))
			h := p.Handler(greetTable(t), noop)
			var bypasses, refused []string
			for _, o := range corpus {
				want := hardReferenceAllows(allowed, o)
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
						bypasses = append(bypasses, hardShort(o))
					case !got && want:
						refused = append(refused, hardShort(o))
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

// TestHardeningOriginFuncInput checks what WithOriginFunc documents: the
// function sees only valid, lowercase serialized origins, never "null" nor
// an origin no browser sends, over the whole bypass corpus.
func TestHardeningOriginFuncInput(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		calls []string
	)
	p := mustNew(t, WithAllowedOrigins(hardConfiguredOrigins...), WithOriginFunc(func(o string) bool {
		mu.Lock()
		calls = append(calls, o)
		mu.Unlock()
		return false
	}))
	h := p.Handler(greetTable(t), noop)
	for _, c := range hardConfiguredOrigins {
		for _, o := range hardBypassVariants(c) {
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
		if !hardSerializedOrigin(o) {
			bad[hardShort(o)] = true
		}
	}
	if len(bad) > 0 {
		t.Errorf("origin func called with %d origins no browser sends: %v", len(bad), slices.Sorted(maps.Keys(bad)))
	}
}

// TestHardeningOriginForms checks the forms of a configured origin one by
// one: what New refuses, and which request origins each accepted form lets
// in.
func TestHardeningOriginForms(t *testing.T) {
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
					t.Fatalf("New(%s) error = %v, want one containing %q", hardShort(tt.configured), err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error has several lines: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New(%s): %v", hardShort(tt.configured), err)
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

// TestHardeningStarOrigin checks "*": any valid origin gets "*" (never an
// echo, which would let credentials through), "null" and malformed origins
// get nothing, and "*" with credentials is refused.
func TestHardeningStarOrigin(t *testing.T) {
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
