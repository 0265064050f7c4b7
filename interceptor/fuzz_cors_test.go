package interceptor

import (
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/publicsuffix"

	"github.com/corsgate/corsgate/internal/testutil"
)

// hardFuzzPaths are the request paths FuzzPreflight picks from: procedures of
// the greet table (one browser-barred) and near misses.
var hardFuzzPaths = []string{
	pathGreet, pathSet, pathReset, pathChat, "/a.b/C", "/greet.v1.GreetService/greet",
	pathGreet + "/", "/greet.v1.GreetService/Greet%00", "",
}

// hardASCIILower lowercases ASCII letters only, as HTTP field names compare.
func hardASCIILower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// hardReferenceHeadersAllowed is the plain definition of an acceptable
// Access-Control-Request-Headers: at most 16 lines and 4096 bytes, every
// comma-separated element (trimmed of spaces and tabs; a trailing comma ends
// a line) an allowed name in any ASCII case, at most 64 names and 16 empty
// elements.
func hardReferenceHeadersAllowed(lines []string, allowed map[string]bool) bool {
	total := 0
	for _, l := range lines {
		total += len(l)
	}
	if len(lines) > 16 || total > 4096 {
		return false
	}
	names, empty := 0, 0
	for _, l := range lines {
		if l == "" {
			continue
		}
		elems := strings.Split(l, ",")
		if strings.HasSuffix(l, ",") {
			elems = elems[:len(elems)-1]
		}
		for _, e := range elems {
			e = strings.Trim(e, " \t")
			if e == "" {
				empty++
				continue
			}
			names++
			if !allowed[hardASCIILower(e)] {
				return false
			}
		}
	}
	return names <= 64 && empty <= 16
}

// FuzzPreflight runs arbitrary preflights through the middleware and
// compares its verdict with a plain reference: origin (testutil.ReferenceAllows),
// procedure, barred flag, method and header list. A granted preflight must
// echo the origin byte for byte; a refused one carries no CORS header.
func FuzzPreflight(f *testing.F) {
	seeds := []struct {
		origin, method, acrh1, acrh2 string
		path                         uint8
	}{
		{origin: appOrigin, method: "POST", acrh1: "content-type,x-grpc-web", path: 1},
		{origin: appOrigin, method: "GET", acrh1: "authorization, X-Request-Id", acrh2: "connect-protocol-version", path: 0},
		{origin: "https://a.example.net", method: "POST", acrh1: "x-tenant", path: 3},
		{origin: "https://a.corp.example.org:8443", method: "POST", acrh1: ",,,content-type,,", path: 1},
		{origin: "https://example.net", method: "POST", path: 1},
		{origin: "https://app.example.com.evil.com", method: "POST", path: 1},
		{origin: "null", method: "POST", path: 1},
		{origin: appOrigin, method: "post", path: 1},
		{origin: appOrigin, method: "POST", path: 2},
		{origin: appOrigin, method: "POST", acrh1: strings.Repeat(",", 5000), path: 1},
		{origin: appOrigin, method: "POST", acrh1: strings.Repeat("content-type,", 65), path: 1},
		{origin: appOrigin, method: "POST", acrh1: "content-type\x00", path: 1},
		{origin: appOrigin, method: "POST", acrh1: "CONTENT-TYPE\t, X-GRPC-WEB ", path: 1},
		{origin: "http://[::1]:8080", method: "POST", acrh1: "content-type", path: 1},
		{origin: "https://xn--bcher-kva.example", method: "GET", acrh1: "authorization", path: 0},
	}
	for _, s := range seeds {
		f.Add(s.origin, s.method, s.acrh1, s.acrh2, s.path)
	}
	p, err := New(WithAllowedOrigins(testutil.CorpusOrigins...), WithAllowedHeaders("x-tenant"))
	if err != nil {
		f.Fatal(err)
	}
	table := greetTable(f)
	h := p.Handler(table, noop)
	var allowed []testutil.RefOrigin
	for _, o := range testutil.CorpusOrigins {
		allowed = append(allowed, testutil.ParseRefOrigin(f, o))
	}
	type routeRef struct {
		methods map[string]bool
		headers map[string]bool
		barred  bool
	}
	routes := map[string]routeRef{}
	for _, svc := range table.Services() {
		for _, proc := range svc.Procedures {
			rr := routeRef{methods: map[string]bool{}, headers: map[string]bool{"x-tenant": true}, barred: proc.BrowserBarred}
			for _, m := range proc.Methods {
				rr.methods[m] = true
			}
			for _, n := range append(append([]string{}, protocolRequestHeaders...), proc.RequestHeaders...) {
				rr.headers[hardASCIILower(n)] = true
			}
			routes["/"+svc.Name+"/"+proc.Name] = rr
		}
	}

	f.Fuzz(func(t *testing.T, origin, method, acrh1, acrh2 string, pathIdx uint8) {
		path := hardFuzzPaths[int(pathIdx)%len(hardFuzzPaths)]
		r := &http.Request{Method: http.MethodOptions, Header: http.Header{}}
		r.URL = &url.URL{Path: path}
		r.Header[hOrigin] = []string{origin}
		r.Header[hACRM] = []string{method}
		var lines []string
		if acrh1 != "" || acrh2 != "" {
			lines = []string{acrh1, acrh2}
			r.Header[hACRH] = lines
		}
		w := &fakeWriter{header: make(http.Header)}
		h.ServeHTTP(w, r)

		rt, known := routes[path]
		want := testutil.ReferenceAllows(allowed, origin) && known && !rt.barred && rt.methods[method] &&
			hardReferenceHeadersAllowed(lines, rt.headers)
		switch w.code {
		case http.StatusNoContent:
			if !want {
				t.Fatalf("granted, the reference refuses: origin %q method %q path %q ACRH %q", origin, method, path, lines)
			}
			if got := w.header[hACAO]; len(got) != 1 || got[0] != origin {
				t.Fatalf("ACAO %q for origin %q", got, origin)
			}
		case http.StatusForbidden:
			if want {
				t.Fatalf("refused, the reference grants: origin %q method %q path %q ACRH %q", origin, method, path, lines)
			}
			for _, k := range []string{hACAO, hACAC, hACAM, hACAH, hMaxAge, hACAPN} {
				if v, ok := w.header[k]; ok {
					t.Fatalf("refused preflight carries %s %q", k, v)
				}
			}
		default:
			t.Fatalf("status %d", w.code)
		}
		if w.header.Get(hVary) == "" {
			t.Fatal("no Vary")
		}
	})
}

// FuzzAllowedOrigin configures one arbitrary origin (with or without
// credentials) and checks New and the middleware: never a panic, "*" never
// with credentials, a pattern never over a public suffix, an IP address or a
// top-level name, and over the bypass variants of the configured value only
// what the reference matcher derives from it gets Access-Control-Allow-Origin.
func FuzzAllowedOrigin(f *testing.F) {
	for _, o := range testutil.CorpusOrigins {
		f.Add(o, false)
		f.Add(o, true)
	}
	for _, o := range []string{
		"*", "null", "https://*.com", "https://*.co.uk", "https://*.github.io", "http://*.localhost", "https://*.10.0.0.1",
		"https://*.*.example.com", "https://*example.com", "https://a.*.example.com", "http://[0:0:0:0:0:0:0:1]:8080",
		"https://app.example.com:0443", "HTTPS://*.EXAMPLE.NET", "https://bücher.example", "https://app.example.com/",
		"https://user@app.example.com", "https://app.example.com:65535", "wss://app.example.com", "https://_dmarc.example.com",
	} {
		f.Add(o, false)
		f.Add(o, true)
	}
	f.Fuzz(func(t *testing.T, configured string, credentials bool) {
		p, err := New(WithAllowedOrigins(configured), WithCredentials(credentials))
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has several lines: %q", err)
			}
			return
		}
		if configured == "*" {
			if credentials {
				t.Fatal(`New accepted "*" with credentials`)
			}
			return
		}
		ref := testutil.ParseRefOrigin(t, configured)
		if ref.Wildcard {
			if ref.Scheme != "https" && ref.Scheme != "http" {
				t.Fatalf("pattern %s with scheme %q accepted", testutil.Short(configured), ref.Scheme)
			}
			if _, err := netip.ParseAddr(ref.Host); err == nil {
				t.Fatalf("pattern %s over an IP address accepted", testutil.Short(configured))
			}
			if ps, _ := publicsuffix.PublicSuffix(ref.Host); ps == ref.Host || !strings.Contains(ref.Host, ".") {
				t.Fatalf("pattern %s over the public suffix %q accepted", testutil.Short(configured), ref.Host)
			}
		}
		h := p.Handler(greetTable(t), noop)
		allowed := []testutil.RefOrigin{ref}
		// The configured origin as a browser would send it (a subdomain
		// for a pattern), then the attacks derived from it.
		own := ref.Scheme + "://" + ref.Host
		if ref.Wildcard {
			own = ref.Scheme + "://a." + ref.Host
		}
		if ref.Port != "" {
			own += ":" + ref.Port
		}
		granted := 0
		for _, o := range append(testutil.BypassVariants(configured), own, "https://evil.com", "http://localhost:8080") {
			if len(o) > 4096 {
				continue // the huge variants are the corpus test's; here they only slow the fuzzer
			}
			r := preflightRequest(pathSet, appOrigin, "POST", "")
			r.Header[hOrigin] = []string{o}
			w := &fakeWriter{header: make(http.Header)}
			h.ServeHTTP(w, r)
			got := w.code == http.StatusNoContent
			if want := testutil.ReferenceAllows(allowed, o); got && !want {
				t.Fatalf("configured %s: origin %s granted, the reference refuses", testutil.Short(configured), testutil.Short(o))
			}
			if got {
				granted++
				if acao := w.header[hACAO]; len(acao) != 1 || acao[0] != o {
					t.Fatalf("ACAO %q for origin %s", acao, testutil.Short(o))
				}
				if credentials != (w.header.Get(hACAC) == "true") {
					t.Fatalf("credentials %v but ACAC %q", credentials, w.header.Get(hACAC))
				}
			}
		}
		if granted == 0 {
			t.Fatalf("configured %s was accepted but lets no origin in", testutil.Short(configured))
		}
	})
}
