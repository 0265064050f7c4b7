package interceptor

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestNewRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts []Option
		want []string // substrings of the error
	}{
		{name: "zero message size", opts: []Option{WithMaxMessageSize(0)}, want: []string{`max message size "0"`, "more than 0"}},
		{name: "star with credentials", opts: []Option{WithAllowedOrigins("*"), WithCredentials(true)}, want: []string{`"*"`, "credentials"}},
		{name: "null", opts: []Option{WithAllowedOrigins("null")}, want: []string{`"null"`, "remove it"}},
		{name: "NULL any case", opts: []Option{WithAllowedOrigins("NULL")}, want: []string{`"NULL"`}},
		{name: "no scheme", opts: []Option{WithAllowedOrigins("app.example.com")}, want: []string{`"app.example.com"`, `"https://app.example.com"`}},
		{name: "trailing slash", opts: []Option{WithAllowedOrigins("https://app.example.com/")}, want: []string{`"https://app.example.com/"`, "slash", `use "https://app.example.com"`}},
		{name: "path", opts: []Option{WithAllowedOrigins("https://app.example.com/app")}, want: []string{`"https://app.example.com/app"`, "path"}},
		{name: "query", opts: []Option{WithAllowedOrigins("https://app.example.com?x")}, want: []string{"path, query"}},
		{name: "userinfo", opts: []Option{WithAllowedOrigins("https://u@app.example.com")}, want: []string{"user info"}},
		{name: "empty origin", opts: []Option{WithAllowedOrigins("")}, want: []string{"empty origin"}},
		{name: "empty host", opts: []Option{WithAllowedOrigins("https://")}, want: []string{"no host"}},
		{name: "bad port", opts: []Option{WithAllowedOrigins("https://a.example.com:99999")}, want: []string{`"99999"`}},
		{name: "empty port", opts: []Option{WithAllowedOrigins("https://a.example.com:")}, want: []string{"empty port"}},
		{name: "non-ascii host", opts: []Option{WithAllowedOrigins("https://bücher.example")}, want: []string{"punycode"}},
		{name: "trailing dot", opts: []Option{WithAllowedOrigins("https://example.com.")}, want: []string{"trailing dot"}},
		{name: "wildcard glued to label", opts: []Option{WithAllowedOrigins("https://*example.com")}, want: []string{`"https://*example.com"`, "somebody else", `"https://*.example.com"`}},
		{name: "wildcard tld", opts: []Option{WithAllowedOrigins("https://example.*")}, want: []string{`"https://example.*"`, "somebody else"}},
		{name: "wildcard middle", opts: []Option{WithAllowedOrigins("https://a.*.example.com")}, want: []string{"somebody else"}},
		{name: "double wildcard", opts: []Option{WithAllowedOrigins("https://*.*.example.com")}, want: []string{"somebody else"}},
		{name: "wildcard over tld", opts: []Option{WithAllowedOrigins("https://*.com")}, want: []string{`"com"`}},
		{name: "wildcard over public suffix", opts: []Option{WithAllowedOrigins("https://*.co.uk")}, want: []string{"public suffix", `"co.uk"`}},
		{name: "wildcard over private public suffix", opts: []Option{WithAllowedOrigins("https://*.github.io")}, want: []string{"public suffix"}},
		{name: "wildcard over ip", opts: []Option{WithAllowedOrigins("https://*.10.0.0.1")}, want: []string{"IP address"}},
		{name: "wildcard with other scheme", opts: []Option{WithAllowedOrigins("ftp://*.example.com")}, want: []string{"https:// or http://"}},
		{name: "star and others", opts: []Option{WithAllowedOrigins("*", "https://a.example.com")}, want: []string{"every origin"}},
		{name: "bad ipv6", opts: []Option{WithAllowedOrigins("https://[zz]")}, want: []string{"IPv6"}},
		{name: "empty allowed header", opts: []Option{WithAllowedHeaders("")}, want: []string{"empty allowed header"}},
		{name: "allowed header with space", opts: []Option{WithAllowedHeaders("x tenant")}, want: []string{`"x tenant"`, "not a valid header name"}},
		{name: "allowed header list in one", opts: []Option{WithAllowedHeaders("x-a,x-b")}, want: []string{`"x-a,x-b"`, "one name per entry"}},
		{name: "allowed cors header", opts: []Option{WithAllowedHeaders("Access-Control-Allow-Origin")}, want: []string{"CORS header"}},
		{name: "long header", opts: []Option{WithAllowedHeaders(strings.Repeat("x", 200))}, want: []string{"longer than"}},
		{name: "exposed header malformed", opts: []Option{WithExposedHeaders("x:y")}, want: []string{`"x:y"`}},
		{name: "exposed star with credentials", opts: []Option{WithExposedHeaders("*"), WithCredentials(true)}, want: []string{`"*"`, "credentials"}},
		{name: "max age too long", opts: []Option{WithMaxAge(86401 * time.Second)}, want: []string{`"24h0m1s"`, "at most"}},
		{name: "max age negative", opts: []Option{WithMaxAge(-time.Second)}, want: []string{"negative"}},
		{name: "max age sub-second", opts: []Option{WithMaxAge(time.Millisecond)}, want: []string{"below one second"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := New(tt.opts...)
			if err == nil {
				t.Fatalf("New() = %v, want an error", p)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New() error = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestNewAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		origins   []string
		wantExact []string
		wantPat   int
		wantAll   bool
	}{
		{name: "exact lowercased", origins: []string{"HTTPS://App.Example.COM"}, wantExact: []string{"https://app.example.com"}},
		{name: "default https port dropped", origins: []string{"https://app.example.com:443"}, wantExact: []string{"https://app.example.com"}},
		{name: "default http port dropped", origins: []string{"http://localhost:80"}, wantExact: []string{"http://localhost"}},
		{name: "other port kept", origins: []string{"http://localhost:5173"}, wantExact: []string{"http://localhost:5173"}},
		{name: "https port 80 kept", origins: []string{"https://a.example.com:80"}, wantExact: []string{"https://a.example.com:80"}},
		{name: "ipv6 normalized", origins: []string{"http://[0:0::1]:8080"}, wantExact: []string{"http://[::1]:8080"}},
		{name: "ipv4", origins: []string{"http://127.0.0.1:8080"}, wantExact: []string{"http://127.0.0.1:8080"}},
		{name: "extension scheme", origins: []string{"chrome-extension://abcdefgh"}, wantExact: []string{"chrome-extension://abcdefgh"}},
		{name: "pattern", origins: []string{"https://*.example.com", "https://*.example.com:443"}, wantPat: 1},
		{name: "pattern on registrable domain under public suffix", origins: []string{"https://*.example.co.uk"}, wantPat: 1},
		{name: "star", origins: []string{"*"}, wantAll: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := New(WithAllowedOrigins(tt.origins...))
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			for _, o := range tt.wantExact {
				if v := p.origins.exact[o]; len(v) != 1 || v[0] != o {
					t.Errorf("exact[%q] = %q, want [%q]; exact = %v", o, v, o, p.origins.exact)
				}
			}
			if len(p.origins.exact) != len(tt.wantExact) {
				t.Errorf("len(exact) = %d, want %d", len(p.origins.exact), len(tt.wantExact))
			}
			if len(p.origins.patterns) != tt.wantPat {
				t.Errorf("len(patterns) = %d, want %d", len(p.origins.patterns), tt.wantPat)
			}
			if p.origins.all != tt.wantAll {
				t.Errorf("all = %v, want %v", p.origins.all, tt.wantAll)
			}
		})
	}
}

func TestOriginMatch(t *testing.T) {
	t.Parallel()
	allowFunc := func(o string) bool { return o == "https://func.example.net" || o == "null" }
	tests := []struct {
		name    string
		origins []string
		fn      func(string) bool
		origin  string
		want    originVerdict
	}{
		{name: "exact", origins: []string{"https://app.example.com"}, origin: "https://app.example.com", want: originExact},
		{name: "exact configured with port 443", origins: []string{"https://app.example.com:443"}, origin: "https://app.example.com", want: originExact},
		{name: "exact other case refused", origins: []string{"https://app.example.com"}, origin: "https://App.example.com", want: originRefused},
		{name: "exact trailing slash refused", origins: []string{"https://app.example.com"}, origin: "https://app.example.com/", want: originRefused},
		{name: "exact other port refused", origins: []string{"https://app.example.com"}, origin: "https://app.example.com:8443", want: originRefused},
		{name: "exact explicit default port refused", origins: []string{"https://app.example.com"}, origin: "https://app.example.com:443", want: originRefused},
		{name: "exact other scheme refused", origins: []string{"https://app.example.com"}, origin: "http://app.example.com", want: originRefused},
		{name: "exact suffix bypass", origins: []string{"https://example.com"}, origin: "https://evil-example.com", want: originRefused},
		{name: "exact prefix bypass", origins: []string{"https://example.com"}, origin: "https://example.community", want: originRefused},
		{name: "GO-2024-2813 radix bug", origins: []string{"https://foo.com", "https://bar.com"}, origin: "https://barfoo.com", want: originRefused},
		{name: "pattern one label", origins: []string{"https://*.example.com"}, origin: "https://a.example.com", want: originEcho},
		{name: "pattern two labels", origins: []string{"https://*.example.com"}, origin: "https://a.b.example.com", want: originEcho},
		{name: "pattern apex refused", origins: []string{"https://*.example.com"}, origin: "https://example.com", want: originRefused},
		{name: "pattern host as prefix", origins: []string{"https://*.example.com"}, origin: "https://example.com.evil.com", want: originRefused},
		{name: "pattern glued", origins: []string{"https://*.example.com"}, origin: "https://evilexample.com", want: originRefused},
		{name: "pattern http", origins: []string{"https://*.example.com"}, origin: "http://a.example.com", want: originRefused},
		{name: "pattern port", origins: []string{"https://*.example.com"}, origin: "https://a.example.com:8443", want: originRefused},
		{name: "pattern with port", origins: []string{"https://*.example.com:8443"}, origin: "https://a.example.com:8443", want: originEcho},
		{name: "pattern with port, no port", origins: []string{"https://*.example.com:8443"}, origin: "https://a.example.com", want: originRefused},
		{name: "pattern empty label", origins: []string{"https://*.example.com"}, origin: "https://.example.com", want: originRefused},
		{name: "pattern double dot", origins: []string{"https://*.example.com"}, origin: "https://a..example.com", want: originRefused},
		{name: "pattern userinfo trick", origins: []string{"https://*.example.com"}, origin: "https://evil.com@a.example.com", want: originRefused},
		{name: "pattern slash trick", origins: []string{"https://*.example.com"}, origin: "https://evil.com/.example.com", want: originRefused},
		{name: "pattern uppercase", origins: []string{"https://*.example.com"}, origin: "https://A.example.com", want: originRefused},
		{name: "pattern suffix bypass CVE-2024-27302", origins: []string{"https://*.victim.com"}, origin: "https://evil-victim.com", want: originRefused},
		{name: "null never", origins: []string{"*"}, origin: "null", want: originRefused},
		{name: "null not given to func", fn: allowFunc, origin: "null", want: originRefused},
		{name: "star", origins: []string{"*"}, origin: "https://any.where", want: originStar},
		{name: "star malformed", origins: []string{"*"}, origin: "https://a b", want: originRefused},
		{name: "empty", origins: []string{"*"}, origin: "", want: originRefused},
		{name: "func", fn: allowFunc, origin: "https://func.example.net", want: originEcho},
		{name: "func refuses", fn: allowFunc, origin: "https://other.example.net", want: originRefused},
		{name: "nothing configured", origin: "https://app.example.com", want: originRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := New(WithAllowedOrigins(tt.origins...), WithOriginFunc(tt.fn))
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			got, acao := p.origins.match(tt.origin)
			if got != tt.want {
				t.Errorf("match(%q) = %v, want %v", tt.origin, got, tt.want)
			}
			if got == originExact && (len(acao) != 1 || acao[0] != tt.origin) {
				t.Errorf("match(%q) acao = %q, want [%q]", tt.origin, acao, tt.origin)
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		origin string
		tls    bool
		host   string
		want   bool
	}{
		{name: "http", origin: "http://localhost:8080", host: "localhost:8080", want: true},
		{name: "https", origin: "https://a.example.com", tls: true, host: "a.example.com", want: true},
		{name: "https default port in host", origin: "https://a.example.com", tls: true, host: "a.example.com:443", want: true},
		{name: "host case", origin: "http://a.example.com", host: "A.Example.com", want: true},
		{name: "scheme differs", origin: "https://a.example.com", host: "a.example.com", want: false},
		{name: "port differs", origin: "http://localhost:8080", host: "localhost:8081", want: false},
		{name: "host differs", origin: "http://evil.com", host: "a.example.com", want: false},
		{name: "empty host", origin: "http://", host: "", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := sameOrigin(tt.origin, tt.tls, tt.host); got != tt.want {
				t.Errorf("sameOrigin(%q, %v, %q) = %v, want %v", tt.origin, tt.tls, tt.host, got, tt.want)
			}
		})
	}
}

// FuzzOriginMatch checks the matcher against a plain reference: an exact
// origin matches only itself, a pattern only scheme://<labels>.base, and
// nothing matches "null" or a string that is not an origin.
// TestPatternMatchesHostsNoBrowserSends is the regression test of an origin
// pattern that granted hosts no browser can send: "https://*.example.org"
// matched a 60 000-byte label and the label "-". Labels over 63 bytes,
// labels starting or ending with "-" and hosts over 253 bytes are refused,
// by patterns and by "*" or an origin function alike.
func TestPatternMatchesHostsNoBrowserSends(t *testing.T) {
	t.Parallel()
	label63 := strings.Repeat("a", 63)
	// 3 labels of 63 and one of 49, then ".example.org" (12): 253 bytes.
	longest := label63 + "." + label63 + "." + label63 + "." + strings.Repeat("b", 49)
	tests := []struct {
		origin string
		want   bool
	}{
		{origin: "https://" + strings.Repeat("a", 60000) + ".example.org", want: false},
		{origin: "https://" + strings.Repeat("a", 64) + ".example.org", want: false},
		{origin: "https://-.example.org", want: false},
		{origin: "https://-app.example.org", want: false},
		{origin: "https://app-.example.org", want: false},
		{origin: "https://a.-.example.org", want: false},
		{origin: "https://" + longest + "b.example.org", want: false}, // 254 bytes
		{origin: "https://" + label63 + ".example.org", want: true},
		{origin: "https://" + longest + ".example.org", want: true},
		{origin: "https://my-app.example.org", want: true},
		{origin: "https://xn--bcher-kva.example.org", want: true},
	}
	pattern := mustNew(t, WithAllowedOrigins("https://*.example.org"))
	star := mustNew(t, WithAllowedOrigins("*"))
	fn := mustNew(t, WithOriginFunc(func(string) bool { return true }))
	for _, tt := range tests {
		for name, p := range map[string]*Policy{"pattern": pattern, "star": star, "func": fn} {
			got, _ := p.origins.match(tt.origin)
			if (got != originRefused) != tt.want {
				t.Errorf("%s: match(%q) = %v, want allowed %v", name, shortOrigin(tt.origin), got, tt.want)
			}
		}
	}
}

// shortOrigin keeps long test origins readable in messages.
func shortOrigin(s string) string {
	if len(s) > 80 {
		return s[:60] + "…(" + strconv.Itoa(len(s)) + " bytes)"
	}
	return s
}

func FuzzOriginMatch(f *testing.F) {
	for _, s := range []string{
		"https://app.example.com", "https://a.example.com", "https://example.com.evil.com",
		"https://evilexample.com", "http://a.example.com", "https://a.example.com:8443", "null", "",
		"https://a..example.com", "https://.example.com", "https://x.example.com/", "https://[::1]:1",
		"https://a.b.example.com", "HTTPS://A.EXAMPLE.COM", "https://a.example.com:443",
	} {
		f.Add(s)
	}
	p, err := New(WithAllowedOrigins("https://app.example.com", "https://*.example.com"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, origin string) {
		got, _ := p.origins.match(origin)
		want := originRefused
		switch {
		case origin == "https://app.example.com":
			want = originExact
		case referencePatternMatch(origin, "https://", ".example.com"):
			want = originEcho
		}
		if got != want {
			t.Fatalf("match(%q) = %v, want %v", origin, got, want)
		}
		if got != originRefused && !validRequestOrigin(origin) {
			t.Fatalf("match(%q) allowed an invalid origin", origin)
		}
	})
}

// referencePatternMatch is the slow, obvious form of a pattern match.
func referencePatternMatch(origin, scheme, suffix string) bool {
	rest, ok := strings.CutPrefix(origin, scheme)
	if !ok {
		return false
	}
	sub, ok := strings.CutSuffix(rest, suffix)
	if !ok || sub == "" || len(sub)+len(suffix) > 253 {
		return false
	}
	for _, label := range strings.Split(sub, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
