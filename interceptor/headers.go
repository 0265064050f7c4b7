package interceptor

import (
	"fmt"
	"net/http"
	"strings"
)

// Limits on Access-Control-Request-Headers. A browser sends one line with a
// handful of names; anything past these bounds is refused without further
// scanning (see GHSA-mh55-gqvf-xfwm for what unbounded parsing costs).
const (
	maxRequestHeaderNames = 64   // names in all ACRH lines together
	maxRequestHeaderBytes = 4096 // bytes in all ACRH lines together
	maxRequestHeaderLines = 16   // ACRH header lines
	maxHeaderNameLen      = 128  // longest name New and NewTable accept
)

// protocolRequestHeaders are the headers Connect and gRPC-Web clients send
// (shared/REFERENCE.md), lowercase. Every procedure allows them.
var protocolRequestHeaders = []string{
	"content-type",
	"connect-protocol-version",
	"connect-timeout-ms",
	"grpc-timeout",
	"x-grpc-web",
	"x-user-agent",
	"content-encoding",
	"accept-encoding",
	"connect-content-encoding",
	"connect-accept-encoding",
	"grpc-message-type",
	"grpc-encoding",
	"grpc-accept-encoding",
}

// protocolExposedHeaders are the response headers every procedure exposes:
// the gRPC-Web trailers-only status and the encoding headers.
var protocolExposedHeaders = []string{
	"Grpc-Status",
	"Grpc-Message",
	"Grpc-Status-Details-Bin",
	"Content-Encoding",
	"Connect-Content-Encoding",
	"Grpc-Encoding",
	"Accept-Encoding",
	"Connect-Accept-Encoding",
	"Grpc-Accept-Encoding",
}

// isTokenChar reports whether c may appear in an HTTP field name (RFC 9110
// tchar).
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validateHeaderName checks one configured or declared header name. what
// names the source in the error ("allowed header", "Greet's request header").
func validateHeaderName(what, name string) error {
	if name == "" {
		return fmt.Errorf("interceptor: empty %s name; remove the empty entry", what)
	}
	if len(name) > maxHeaderNameLen {
		return fmt.Errorf("interceptor: %s %q is longer than %d bytes; shorten it", what, name, maxHeaderNameLen)
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("interceptor: %s %q is not a valid header name (character %q); "+
				"use letters, digits and '-' only, one name per entry", what, name, string(name[i]))
		}
	}
	if strings.HasPrefix(strings.ToLower(name), "access-control-") {
		return fmt.Errorf("interceptor: %s %q is a CORS header the browser and corsgate manage; remove it", what, name)
	}
	return nil
}

// appendUnique appends names not yet in list, comparing case-insensitively,
// converting each with conv.
func appendUnique(list []string, conv func(string) string, names ...string) []string {
next:
	for _, n := range names {
		n = conv(n)
		for _, have := range list {
			if strings.EqualFold(have, n) {
				continue next
			}
		}
		list = append(list, n)
	}
	return list
}

// headerScanner walks the names of Access-Control-Request-Headers lines
// without allocating. Elements are separated by commas; spaces and tabs
// around them and empty elements are skipped. It stops with over set when a
// bound is exceeded and with bad set when an element is not a token.
type headerScanner struct {
	lines []string
	line  int
	pos   int
	count int
	over  bool // a bound was exceeded
	bad   bool // an element was not a header name
}

// newHeaderScanner checks the bounds that can be checked up front: number of
// lines and total bytes. It returns a scanner whose over is set if they are
// exceeded.
func newHeaderScanner(lines []string) headerScanner {
	s := headerScanner{lines: lines}
	if len(lines) > maxRequestHeaderLines {
		s.over = true
		return s
	}
	total := 0
	for _, l := range lines {
		total += len(l)
	}
	if total > maxRequestHeaderBytes {
		s.over = true
	}
	return s
}

// next returns the next name, or ok false at the end or on an error (see
// over and bad).
func (s *headerScanner) next() (name string, ok bool) {
	if s.over || s.bad {
		return "", false
	}
	for s.line < len(s.lines) {
		l := s.lines[s.line]
		for s.pos < len(l) {
			start := s.pos
			end := strings.IndexByte(l[start:], ',')
			if end < 0 {
				end = len(l)
			} else {
				end += start
			}
			s.pos = end + 1
			// Trim optional whitespace.
			for start < end && (l[start] == ' ' || l[start] == '\t') {
				start++
			}
			for end > start && (l[end-1] == ' ' || l[end-1] == '\t') {
				end--
			}
			if start == end {
				continue
			}
			s.count++
			if s.count > maxRequestHeaderNames {
				s.over = true
				return "", false
			}
			elem := l[start:end]
			for i := 0; i < len(elem); i++ {
				if !isTokenChar(elem[i]) {
					s.bad = true
					return elem, false
				}
			}
			return elem, true
		}
		s.line++
		s.pos = 0
	}
	return "", false
}

// headerSet is a set of lowercase header names with a lookup that takes any
// case and does not allocate.
type headerSet struct {
	names  map[string]struct{}
	maxLen int
}

func newHeaderSet(names []string) headerSet {
	s := headerSet{names: make(map[string]struct{}, len(names))}
	for _, n := range names {
		n = strings.ToLower(n)
		s.names[n] = struct{}{}
		s.maxLen = max(s.maxLen, len(n))
	}
	return s
}

// has reports whether name, in any case, is in the set.
func (s headerSet) has(name string) bool {
	if len(name) > s.maxLen || len(name) > maxHeaderNameLen {
		return false
	}
	var buf [maxHeaderNameLen]byte
	lower := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
			lower = false
		}
		buf[i] = c
	}
	if lower {
		_, ok := s.names[name]
		return ok
	}
	_, ok := s.names[string(buf[:len(name)])]
	return ok
}

// canonical returns the canonical MIME form of a header name, for
// Access-Control-Expose-Headers.
func canonical(name string) string {
	if name == "*" {
		return name
	}
	return http.CanonicalHeaderKey(name)
}
