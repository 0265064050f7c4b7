package interceptor

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Limits on Access-Control-Request-Headers. A browser sends one line with a
// handful of names; anything past these bounds is refused without further
// scanning (see GHSA-mh55-gqvf-xfwm for what unbounded parsing costs).
const (
	maxRequestHeaderNames = 64   // names in all ACRH lines together
	maxEmptyElements      = 16   // empty elements ("a,,b") tolerated
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

// tokenChars marks the bytes that may appear in an HTTP field name (RFC 9110
// tchar).
var tokenChars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

// isTokenChar reports whether c may appear in an HTTP field name.
func isTokenChar(c byte) bool { return tokenChars[c] }

// validToken reports whether s is a non-empty HTTP field name.
func validToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tokenChars[s[i]] {
			return false
		}
	}
	return s != ""
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
// bound is exceeded. It does not check that elements are header names:
// callers compare them with known names first and call validToken only for
// the others, which keeps the common case to one pass over the bytes.
type headerScanner struct {
	lines []string
	line  int
	pos   int
	count int
	empty int
	over  bool // a bound was exceeded
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

// next returns the next element, or ok false at the end or when a bound
// was exceeded (see over).
func (s *headerScanner) next() (name string, ok bool) {
	if s.over {
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
				s.empty++
				if s.empty > maxEmptyElements {
					s.over = true
					return "", false
				}
				continue
			}
			s.count++
			if s.count > maxRequestHeaderNames {
				s.over = true
				return "", false
			}
			return l[start:end], true
		}
		s.line++
		s.pos = 0
	}
	return "", false
}

// headerSet is a set of lowercase header names with a lookup that takes any
// case, does not hash and does not allocate: names are bucketed by length,
// and a lookup compares the few candidates of the same length byte by byte.
type headerSet struct {
	byLen [maxHeaderNameLen + 1][]string
}

func newHeaderSet(names []string) *headerSet {
	s := new(headerSet)
	for _, n := range names {
		n = strings.ToLower(n)
		if len(n) <= maxHeaderNameLen && !slices.Contains(s.byLen[len(n)], n) {
			s.byLen[len(n)] = append(s.byLen[len(n)], n)
		}
	}
	return s
}

// has reports whether name, in any case, is in the set.
func (s *headerSet) has(name string) bool {
	if len(name) > maxHeaderNameLen {
		return false
	}
next:
	for _, cand := range s.byLen[len(name)] {
		for i := 0; i < len(name); i++ {
			c := name[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != cand[i] {
				continue next
			}
		}
		return true
	}
	return false
}

// canonical returns the canonical MIME form of a header name, for
// Access-Control-Expose-Headers.
func canonical(name string) string {
	if name == "*" {
		return name
	}
	return http.CanonicalHeaderKey(name)
}
