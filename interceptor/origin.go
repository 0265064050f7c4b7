package interceptor

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"
)

// originMatcher decides whether a request's Origin is allowed. It is built
// once by [New] and only read afterwards.
type originMatcher struct {
	// all is set by "*".
	all bool
	// exact maps a serialized origin to its precomputed
	// Access-Control-Allow-Origin value.
	exact map[string][]string
	// exactIdx indexes the keys of exact for the hot path; exactVals[i] is
	// the value of the key at position i.
	exactIdx  strIndex
	exactVals [][]string
	// patterns are the "scheme://*.base[:port]" entries.
	patterns []originPattern
	// fn is the WithOriginFunc function, or nil.
	fn func(string) bool
}

// originPattern is "https://*.example.com[:port]" split for matching.
type originPattern struct {
	prefix string // "https://"
	suffix string // ".example.com" or ".example.com:8443"
	// hostSuffix is the length of the suffix's host part (".example.com").
	hostSuffix int
}

// DNS limits on what a browser can send as a host: a label is 1 to 63
// bytes, a name at most 253.
const (
	maxLabelLen = 63
	maxHostLen  = 253
)

// matches reports whether origin is scheme://<one or more labels><suffix>.
// It checks every byte of the subdomain part, so a match is a valid
// serialized origin: callers need not validate origin first. Labels a
// browser cannot send (over 63 bytes, starting or ending with "-") and
// hosts over 253 bytes do not match.
func (p originPattern) matches(origin string) bool {
	if len(origin) <= len(p.prefix)+len(p.suffix) ||
		origin[:len(p.prefix)] != p.prefix ||
		origin[len(origin)-len(p.suffix):] != p.suffix {
		return false
	}
	sub := origin[len(p.prefix) : len(origin)-len(p.suffix)]
	// sub is the subdomain part: host labels only, no port, no brackets,
	// no empty label. The suffix starts with "." so "evilexample.com" never
	// reaches this point for ".example.com".
	if len(sub)+p.hostSuffix > maxHostLen {
		return false
	}
	return validLabels(sub)
}

// validLabels reports whether host is dot-separated labels of lowercase
// letters, digits, "-" and "_", each 1 to 63 bytes and neither starting
// nor ending with "-".
func validLabels(host string) bool {
	start := 0
	for i := 0; i <= len(host); i++ {
		if i < len(host) {
			c := host[i]
			switch {
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
				continue
			case c != '.':
				return false
			}
		}
		label := host[start:i]
		if label == "" || len(label) > maxLabelLen || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		start = i + 1
	}
	return true
}

// originVerdict is the outcome of matching one request origin.
type originVerdict uint8

const (
	originRefused originVerdict = iota
	originExact                 // value is the precomputed ACAO
	originStar                  // ACAO "*"
	originEcho                  // ACAO echoes the request's Origin
)

// match decides for one Origin value. For originExact, acao is the
// precomputed header value. It never allocates. Exact origins cost one
// index lookup; patterns are tried only when that misses, and the syntax
// check only when "*" or an origin function needs it.
func (m *originMatcher) match(origin string) (originVerdict, []string) {
	if origin == "" || origin == "null" {
		return originRefused, nil
	}
	if i := m.exactIdx.find(origin); i >= 0 {
		return originExact, m.exactVals[i]
	}
	return m.matchInexact(origin), nil
}

// matchInexact is match for an origin that is not listed exactly: it tries
// the patterns, "*" and the origin function.
func (m *originMatcher) matchInexact(origin string) originVerdict {
	if origin == "" || origin == "null" {
		return originRefused
	}
	for _, p := range m.patterns {
		if p.matches(origin) {
			return originEcho
		}
	}
	if !m.all && m.fn == nil || !validRequestOrigin(origin) {
		return originRefused
	}
	if m.all {
		return originStar
	}
	if m.fn(origin) {
		return originEcho
	}
	return originRefused
}

// validRequestOrigin reports whether s is a serialized origin as browsers
// send it: lowercase scheme "://" lowercase host, optional ":port". IPv6
// hosts are in brackets. Nothing else: no path, userinfo, query or spaces.
func validRequestOrigin(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 || !validScheme(s[:i]) {
		return false
	}
	rest := s[i+3:]
	if rest == "" {
		return false
	}
	var port string
	if rest[0] == '[' {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return false
		}
		for j := 1; j < end; j++ {
			c := rest[j]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == ':' || c == '.') {
				return false
			}
		}
		if end == 1 {
			return false
		}
		rest = rest[end+1:] // after the bracketed address
		if rest != "" {
			if rest[0] != ':' {
				return false
			}
			port = rest[1:]
			if port == "" {
				return false
			}
		}
	} else {
		host := rest
		if c := strings.LastIndexByte(rest, ':'); c >= 0 {
			host, port = rest[:c], rest[c+1:]
			if port == "" {
				return false
			}
		}
		if len(host) > maxHostLen || !validLabels(host) {
			return false
		}
	}
	return validPort(s[:i], port)
}

// validPort reports whether port is absent or as a browser serializes it:
// 1 to 65535, no leading zero, never the scheme's default port.
func validPort(scheme, port string) bool {
	if port == "" {
		return true
	}
	if len(port) > 5 || port[0] == '0' {
		return false
	}
	n := 0
	for j := 0; j < len(port); j++ {
		if port[j] < '0' || port[j] > '9' {
			return false
		}
		n = n*10 + int(port[j]-'0')
	}
	if n > 65535 {
		return false
	}
	switch {
	case scheme == "https" && n == 443, scheme == "http" && n == 80:
		return false
	}
	return true
}

func validScheme(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// newOriginMatcher validates the configured origins. credentials refuses "*".
func newOriginMatcher(origins []string, fn func(string) bool, credentials bool) (*originMatcher, error) {
	m := &originMatcher{exact: make(map[string][]string), fn: fn}
	seenPattern := make(map[originPattern]bool)
	var exactKeys []string
	for _, o := range origins {
		if o == "*" {
			if credentials {
				return nil, &ConfigError{Option: OptionAllowedOrigins, Value: o, With: OptionCredentials,
					Reason: "browsers refuse a wildcard when credentials are allowed", Fix: "list the origins instead"}
			}
			m.all = true
			continue
		}
		norm, pat, err := parseOrigin(o)
		if err != nil {
			return nil, err
		}
		if pat != nil {
			if !seenPattern[*pat] {
				seenPattern[*pat] = true
				m.patterns = append(m.patterns, *pat)
			}
			continue
		}
		if _, dup := m.exact[norm]; !dup {
			v := []string{norm}
			m.exact[norm] = v
			exactKeys = append(exactKeys, norm)
			m.exactVals = append(m.exactVals, v)
		}
	}
	m.exactIdx = newStrIndex(exactKeys, false)
	if m.all && (len(m.exact) > 0 || len(m.patterns) > 0) {
		return nil, originError("*", fmt.Sprintf("allows every origin, so the other origins (%q) have no effect", origins),
			`remove either the "*" or the others`)
	}
	return m, nil
}

// parseOrigin validates one configured origin. It returns either the
// normalized serialized origin or, for "scheme://*.base[:port]", a pattern.
func parseOrigin(o string) (string, *originPattern, error) {
	if o == "" {
		return "", nil, &ConfigError{Option: OptionAllowedOrigins, Fix: `write an origin such as "https://app.example.com"`, subject: "empty origin"}
	}
	if strings.EqualFold(o, "null") {
		return "", nil, originError(o, "is sent by sandboxed iframes, file: pages and redirects, and anyone can "+
			"produce it: it can never be trusted", "remove it")
	}
	i := strings.Index(o, "://")
	if i <= 0 {
		return "", nil, originError(o, "has no scheme", "write it as "+strconv.Quote("https://"+strings.TrimPrefix(o, "//")))
	}
	scheme := strings.ToLower(o[:i])
	if !validScheme(scheme) {
		return "", nil, originError(o, "has an invalid scheme "+strconv.Quote(o[:i]), "use https:// or http://")
	}
	rest := o[i+3:]
	if j := strings.IndexAny(rest, "/?#"); j >= 0 {
		fix := scheme + "://" + strings.ToLower(rest[:j])
		if rest[j:] == "/" {
			return "", nil, originError(o, "ends with a slash, which browsers never send", "use "+strconv.Quote(fix))
		}
		return "", nil, originError(o, "has a path, query or fragment", "an origin is scheme://host[:port] only: use "+strconv.Quote(fix))
	}
	if strings.ContainsAny(rest, "@ \t\\") {
		return "", nil, originError(o, "has user info or spaces", "an origin is scheme://host[:port] only")
	}
	host, port, err := splitHostPort(o, rest)
	if err != nil {
		return "", nil, err
	}
	port, err = normalizePort(o, scheme, port)
	if err != nil {
		return "", nil, err
	}
	hostPort := host
	if port != "" {
		hostPort += ":" + port
	}
	if strings.Contains(host, "*") {
		pat, err := parsePattern(o, scheme, host, port)
		return "", pat, err
	}
	if host[0] == '[' {
		addr, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return "", nil, originError(o, "has an invalid IPv6 address", `write it as "https://[::1]:8080"`)
		}
		hostPort = "[" + addr.String() + "]"
		if port != "" {
			hostPort += ":" + port
		}
	} else if err := validHostname(o, host); err != nil {
		return "", nil, err
	}
	return scheme + "://" + hostPort, nil, nil
}

func splitHostPort(o, rest string) (host, port string, err error) {
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", "", originError(o, "has an unclosed IPv6 bracket", "write scheme://[addr]:port")
		}
		host, rest = rest[:end+1], rest[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", "", originError(o, "has text after the IPv6 address", "write scheme://[addr]:port")
			}
			port = rest[1:]
			if port == "" {
				return "", "", originError(o, "has an empty port", "drop the colon")
			}
		}
		return host, port, nil
	}
	host = rest
	if c := strings.LastIndexByte(rest, ':'); c >= 0 {
		host, port = rest[:c], rest[c+1:]
		if port == "" {
			return "", "", originError(o, "has an empty port", "drop the colon")
		}
	}
	if host == "" {
		return "", "", originError(o, "has no host", `write it as "https://app.example.com"`)
	}
	return strings.ToLower(host), port, nil
}

// normalizePort checks the port and drops it when it is the scheme's
// default, as browsers do when they serialize an origin.
func normalizePort(o, scheme, port string) (string, error) {
	if port == "" {
		return "", nil
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || port[0] == '0' {
		return "", originError(o, "has an invalid port "+strconv.Quote(port), "use a number from 1 to 65535")
	}
	if (scheme == "https" && n == 443) || (scheme == "http" && n == 80) {
		return "", nil
	}
	return port, nil
}

// validHostname accepts lowercase ASCII DNS names and IPv4 addresses.
func validHostname(o, host string) error {
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return originError(o, "has a non-ASCII host", "browsers send the punycode form (xn--...): use that")
		}
	}
	if strings.HasSuffix(host, ".") {
		return originError(o, "has a trailing dot in the host", "remove it")
	}
	if len(host) > 253 {
		return originError(o, "has a host longer than 253 bytes", "")
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 {
			return originError(o, "has an empty or too long label in host "+strconv.Quote(host), "")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return originError(o, "has the invalid character "+strconv.Quote(string(c))+" in its host", "")
			}
		}
	}
	return nil
}

// parsePattern validates "scheme://*.base[:port]". The wildcard must be the
// whole leftmost label, the scheme http or https, and base a registrable
// domain or below it (not a public suffix such as "com", "co.uk" or
// "github.io"), so the pattern can never match a host of somebody else.
func parsePattern(o, scheme, host, port string) (*originPattern, error) {
	if scheme != "https" && scheme != "http" {
		return nil, patternError(o, "must use https:// or http://", "")
	}
	if !strings.HasPrefix(host, "*.") || strings.Contains(host[2:], "*") {
		return nil, patternError(o, "could match hosts of somebody else: a \"*\" may only stand for whole leftmost "+
			"labels, as in "+strconv.Quote(scheme+"://*.example.com"), "")
	}
	base := host[2:]
	if err := validHostname(o, base); err != nil {
		return nil, err
	}
	if _, err := netip.ParseAddr(base); err == nil {
		return nil, patternError(o, "puts a wildcard in front of an IP address", "list the origin exactly")
	}
	if !strings.Contains(base, ".") {
		return nil, patternError(o, "matches every host under the top-level name "+strconv.Quote(base)+", hosts of somebody else",
			"name your own domain, as in "+strconv.Quote(scheme+"://*.example.com"))
	}
	if ps, _ := publicsuffix.PublicSuffix(base); ps == base {
		return nil, patternError(o, "matches every site under the public suffix "+strconv.Quote(base)+", hosts of somebody else",
			"name your own domain below it")
	}
	suffix := "." + base
	if port != "" {
		suffix += ":" + port
	}
	return &originPattern{prefix: scheme + "://", suffix: suffix, hostSuffix: 1 + len(base)}, nil
}

// sameOrigin reports whether origin equals the request's own scheme and host
// (scheme from the connection: https when TLS terminated here). Default
// ports are ignored on both sides.
func sameOrigin(origin string, tls bool, host string) bool {
	scheme, def := "http://", ":80"
	if tls {
		scheme, def = "https://", ":443"
	}
	if len(origin) <= len(scheme) || origin[:len(scheme)] != scheme {
		return false
	}
	o := origin[len(scheme):]
	if len(host) > len(def) && strings.EqualFold(host[len(host)-len(def):], def) {
		host = host[:len(host)-len(def)]
	}
	return o != "" && strings.EqualFold(o, host)
}
