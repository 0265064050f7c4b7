package interceptor

import (
	"fmt"
	"math/bits"
	"net/http"
	"slices"
	"strconv"
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

// traceRequestHeaders are the W3C Trace Context and Baggage headers that
// OpenTelemetry web instrumentation adds to every fetch (whatwg/fetch#911:
// a preflight that does not allow them fails every call). Every procedure
// allows them unless [WithTraceHeaders] turns that off.
var traceRequestHeaders = []string{
	"traceparent",
	"tracestate",
	"baggage",
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

// validateHeaderName checks one header name declared in a [Service] rule.
// what names the source in the error ("Greet's request header").
func validateHeaderName(what, name string) error {
	reason, fix := headerNameProblem(name)
	switch {
	case reason == "" && fix == "":
		return nil
	case name == "":
		return fmt.Errorf("interceptor: empty %s name; %s", what, fix)
	}
	return fmt.Errorf("interceptor: %s %q %s; %s", what, name, reason, fix)
}

// checkOptionHeader checks one header name given to option
// (OptionAllowedHeaders or OptionExposedHeaders).
func checkOptionHeader(option, name string) error {
	reason, fix := headerNameProblem(name)
	switch {
	case reason == "" && fix == "":
		return nil
	case name == "":
		return &ConfigError{Option: option, Fix: fix, subject: "empty " + optionNouns[option] + " name"}
	}
	return &ConfigError{Option: option, Value: name, Reason: reason, Fix: fix}
}

// headerNameProblem says what is wrong with a configured or declared header
// name and how to fix it; both are "" for a good name, and reason is "" for
// an empty one.
func headerNameProblem(name string) (reason, fix string) {
	if name == "" {
		return "", "remove the empty entry"
	}
	if len(name) > maxHeaderNameLen {
		return "is longer than " + strconv.Itoa(maxHeaderNameLen) + " bytes", "shorten it"
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return "is not a valid header name (character " + strconv.Quote(string(name[i])) + ")",
				"use letters, digits and '-' only, one name per entry"
		}
	}
	if strings.HasPrefix(strings.ToLower(name), "access-control-") {
		return "is a CORS header the browser and corsgate manage", "remove it"
	}
	return "", ""
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
	lines []string // the lines after the current one
	rest  string   // what is left of the current line
	count int
	empty int
	over  bool // a bound was exceeded
}

// newHeaderScanner checks the bounds that can be checked up front: number of
// lines and total bytes. It returns a scanner whose over is set if they are
// exceeded.
func newHeaderScanner(lines []string) headerScanner {
	var s headerScanner
	s.reset(lines)
	return s
}

// reset makes s a scanner of lines, as [newHeaderScanner] does, in place:
// hot paths use it to skip copying the struct.
func (s *headerScanner) reset(lines []string) {
	*s = headerScanner{}
	if len(lines) > maxRequestHeaderLines {
		s.over = true
		return
	}
	total := 0
	for _, l := range lines {
		total += len(l)
	}
	s.lines, s.over = lines, total > maxRequestHeaderBytes
}

// next returns the next element, or ok false at the end or when a bound
// was exceeded (see over).
func (s *headerScanner) next() (name string, ok bool) {
	if s.over {
		return "", false
	}
	rest := s.rest
	for {
		// Bare commas are the empty elements of hostile lists: count them
		// without the general path.
		for rest != "" && rest[0] == ',' {
			s.empty++
			if s.empty > maxEmptyElements {
				s.over = true
				return "", false
			}
			rest = rest[1:]
		}
		for rest == "" {
			if len(s.lines) == 0 {
				s.rest = ""
				return "", false
			}
			rest, s.lines = s.lines[0], s.lines[1:]
		}
		i := indexComma(rest)
		elem := rest[:i]
		if i < len(rest) {
			rest = rest[i+1:]
		} else {
			rest = ""
		}
		// Trim optional whitespace.
		for elem != "" && (elem[0] == ' ' || elem[0] == '\t') {
			elem = elem[1:]
		}
		for elem != "" && (elem[len(elem)-1] == ' ' || elem[len(elem)-1] == '\t') {
			elem = elem[:len(elem)-1]
		}
		if elem == "" {
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
		s.rest = rest
		return elem, true
	}
}

// indexComma returns the index of the first comma in s, or len(s). It
// tests eight bytes at a time: header names are short, so this beats both
// a byte loop and the call into [strings.IndexByte].
func indexComma(s string) int {
	const ones, highs, commas = 0x0101010101010101, 0x8080808080808080, 0x2c2c2c2c2c2c2c2c
	// zeroByte has the high bit set in the lowest byte of v that is zero
	// (higher bytes may be marked wrongly; only the lowest is used).
	zeroByte := func(v uint64) uint64 { return (v - ones) &^ v & highs }
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if m := zeroByte(load64(s, i) ^ commas); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	if i == len(s) {
		return i
	}
	if len(s) >= 8 {
		// The last eight bytes overlap bytes known to hold no comma, so a
		// match is in the unchecked tail.
		if m := zeroByte(load64(s, len(s)-8) ^ commas); m != 0 {
			return len(s) - 8 + bits.TrailingZeros64(m)>>3
		}
		return len(s)
	}
	for ; i < len(s); i++ {
		if s[i] == ',' {
			return i
		}
	}
	return i
}

// headerSet is a set of lowercase header names with a lookup that takes any
// case and does not allocate: a [strIndex] with case folding.
type headerSet struct {
	idx strIndex
}

func newHeaderSet(names []string) *headerSet {
	keep := make([]string, 0, len(names))
	for _, n := range names {
		n = strings.ToLower(n)
		if len(n) <= maxHeaderNameLen && !slices.Contains(keep, n) {
			keep = append(keep, n)
		}
	}
	return &headerSet{idx: newStrIndex(keep, true)}
}

// has reports whether name, in any case, is in the set.
func (s *headerSet) has(name string) bool {
	return len(name) <= maxHeaderNameLen && s.idx.find(name) >= 0
}

// canonical returns the canonical MIME form of a header name, for
// Access-Control-Expose-Headers.
func canonical(name string) string {
	if name == "*" {
		return name
	}
	return http.CanonicalHeaderKey(name)
}
