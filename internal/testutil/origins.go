package testutil

import (
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// The origin bypass corpus: attack origins derived from every kind of
// configured origin, and a reference matcher, written independently of the
// code under test, that says which of them a correct CORS policy allows.
// The interceptor runs it through its middleware, the gateway through a
// gateway in front of greetd.

// CorpusOrigins are the allowed origins of the bypass corpus: every kind
// New accepts (exact, default and explicit ports, IPv4, IPv6, punycode,
// subdomain patterns with and without a port, uppercase input).
var CorpusOrigins = []string{
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

// RefOrigin is an allowed origin as the reference matcher sees it.
type RefOrigin struct {
	Scheme, Host, Port string // lowercase; Port "" when the scheme's default
	Wildcard           bool   // Host is the base of "*.base"
}

// ParseRefOrigin parses a configured origin with net/url, independently of
// the code under test.
func ParseRefOrigin(tb testing.TB, s string) RefOrigin {
	tb.Helper()
	u, err := url.Parse(strings.ToLower(s))
	if err != nil {
		tb.Fatalf("configured origin %s: %v", Short(s), err)
	}
	o := RefOrigin{Scheme: u.Scheme, Host: u.Hostname(), Port: u.Port()}
	if strings.Contains(o.Host, ":") {
		if a, err := netip.ParseAddr(o.Host); err == nil {
			o.Host = a.String()
		}
		o.Host = "[" + o.Host + "]"
	}
	if (o.Scheme == "https" && o.Port == "443") || (o.Scheme == "http" && o.Port == "80") {
		o.Port = ""
	}
	if base, ok := strings.CutPrefix(o.Host, "*."); ok {
		o.Host, o.Wildcard = base, true
	}
	return o
}

// ReferenceAllows is the slow, obvious definition of who may call: a request
// Origin is allowed when it is exactly a browser-serialized origin
// (lowercase scheme://host[:port], no default port, nothing else) whose
// scheme, host and port equal a configured origin's, or whose host is one or
// more DNS labels followed by ".base" of a pattern with the same scheme and
// port, labels a browser can send: 1 to 63 bytes, not starting or ending
// with "-", in a host of at most 253 bytes.
func ReferenceAllows(allowed []RefOrigin, origin string) bool {
	if !SerializedOrigin(origin) {
		return false
	}
	u, _ := url.Parse(origin)
	host, port := u.Hostname(), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	for _, a := range allowed {
		if a.Scheme != u.Scheme || a.Port != port {
			continue
		}
		if !a.Wildcard {
			if host == a.Host {
				return true
			}
			continue
		}
		sub, ok := strings.CutSuffix(host, "."+a.Host)
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

// SerializedOrigin reports whether origin is exactly what a browser
// serializes: lowercase scheme://host[:port] with a port from 1 to 65535,
// written without leading zeros and never the scheme's default, and
// nothing else.
func SerializedOrigin(origin string) bool {
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

// BypassVariants derives attack origins from one configured origin: suffix,
// prefix and embedded forms, scheme, port, case, encoding and Unicode
// variants. Some variants are legitimately allowed (a subdomain under a
// pattern); the reference matcher decides.
func BypassVariants(configured string) []string {
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
		s + host + ".evil.com" + portSuffix(port), s + host + "-evil.com", s + host + "evil.com", s + hp + ".evil.com",
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
		s + host + ":" + def, s + host + ":" + bump(port, def), s + host + ":0", s + host + ":",
		s + host + ":65536", s + host + ":99999", s + host + ":0" + nonEmpty(port, def), s + host + ":+" + nonEmpty(port, def),
		s + host + ":-1", s + hp + ":" + nonEmpty(port, def), s + host + ":" + nonEmpty(port, def) + "0",
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

func portSuffix(port string) string {
	if port == "" {
		return ""
	}
	return ":" + port
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// bump returns a port next to port (or to def).
func bump(port, def string) string {
	n, _ := strconv.Atoi(nonEmpty(port, def))
	return strconv.Itoa(n + 1)
}

// OriginCorpus is the bypass corpus: the variants of every origin of
// [CorpusOrigins] and origins derived from none, each once.
func OriginCorpus() []string {
	var corpus []string
	seen := map[string]bool{}
	add := func(v string) {
		if !seen[v] {
			seen[v] = true
			corpus = append(corpus, v)
		}
	}
	for _, o := range CorpusOrigins {
		for _, v := range BypassVariants(o) {
			add(v)
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
		add(v)
	}
	return corpus
}

// OriginReference is the reference matcher for the origins of
// [CorpusOrigins].
type OriginReference struct{ allowed []RefOrigin }

// NewOriginReference parses [CorpusOrigins] with net/url, independently of
// the code under test.
func NewOriginReference(tb testing.TB) *OriginReference {
	tb.Helper()
	r := &OriginReference{}
	for _, o := range CorpusOrigins {
		r.allowed = append(r.allowed, ParseRefOrigin(tb, o))
	}
	return r
}

// Allows reports whether a correct policy allowing [CorpusOrigins] allows
// origin.
func (r *OriginReference) Allows(origin string) bool { return ReferenceAllows(r.allowed, origin) }

// Short quotes s, cut to 80 bytes, for messages about huge inputs.
func Short(s string) string {
	if len(s) > 80 {
		return strconv.Quote(s[:80]) + "..."
	}
	return strconv.Quote(s)
}
