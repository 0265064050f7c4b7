package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/cliflags"
)

// validate checks each value the file set, then the CORS settings together.
func (f *File) validate() error {
	checks := []struct {
		key   string
		check func() error
	}{
		{key: "listen", check: func() error { return checkListen(f.Listen) }},
		{key: "metrics-listen", check: func() error { return checkListen(f.MetricsListen) }},
		{key: "grpc-listen", check: func() error { return checkListen(f.GRPCListen) }},
		{key: "backend", check: func() error { return checkBackend(f.Backend) }},
		{key: "backend-ca", check: func() error { return checkPath(f.BackendCA) }},
		{key: "backend-server-name", check: func() error { return checkServerName(f.BackendServerName) }},
		{key: "tls-cert", check: func() error { return checkPath(f.TLSCert) }},
		{key: "tls-key", check: func() error { return checkPath(f.TLSKey) }},
		{key: "descriptors", check: func() error { return checkPath(f.Descriptors) }},
		{key: "allow-origin", check: func() error { return checkOrigins(f.AllowOrigin) }},
		{key: "allow-header", check: func() error { return checkHeaderNames(f.AllowHeader, interceptor.WithAllowedHeaders) }},
		{key: "expose-header", check: func() error { return checkHeaderNames(f.ExposeHeader, interceptor.WithExposedHeaders) }},
		{key: "max-age", check: func() error { return cliflags.CheckMaxAge(time.Duration(f.MaxAge)) }},
		{key: "max-message-size", check: func() error { return checkMessageSize(f.MaxMessageSize) }},
		{key: "max-request-buffer", check: func() error { return checkRequestBuffer(f.MaxRequestBuffer) }},
		{key: "shutdown-grace", check: func() error { return checkGrace(time.Duration(f.ShutdownGrace)) }},
		{key: "websocket-ping-interval", check: func() error { return CheckWebSocketPing(time.Duration(f.WebSocketPingInterval)) }},
		{key: "websocket-max-streams", check: func() error { return CheckWebSocketStreams(f.WebSocketMaxStreams) }},
		{key: "log-level", check: func() error { return checkLevel(f.LogLevel) }},
		{key: "access-log", check: func() error { return CheckAccessLog(f.AccessLog) }},
		{key: "services", check: func() error { return checkServices(f.Services) }},
		{key: "backend-cert", check: func() error { return checkPath(f.BackendCert) }},
		{key: "backend-key", check: func() error { return checkPath(f.BackendKey) }},
		{key: "client-ca", check: func() error { return checkPath(f.ClientCA) }},
		{key: "client-auth", check: func() error { return CheckClientAuth(f.ClientAuth) }},
	}
	for _, c := range checks {
		if !f.present[c.key] {
			continue
		}
		if err := c.check(); err != nil {
			return &KeyError{Key: c.key, Err: err}
		}
	}
	if f.present["tls-cert"] != f.present["tls-key"] {
		missing := "tls-key"
		if !f.present["tls-cert"] {
			missing = "tls-cert"
		}
		return keyErrorf(missing, "missing: tls-cert and tls-key go together")
	}
	if f.present["backend-cert"] != f.present["backend-key"] {
		missing := "backend-key"
		if !f.present["backend-cert"] {
			missing = "backend-cert"
		}
		return keyErrorf(missing, "missing: backend-cert and backend-key go together")
	}
	if f.present["client-auth"] && !f.present["client-ca"] {
		return keyErrorf("client-auth", "without client-ca: give the CAs that verify client certificates")
	}
	// Each key was checked on its own above; what is left is a combination,
	// such as the "*" origin with credentials.
	if _, err := interceptor.New(f.corsOptions()...); err != nil {
		return policyError(err)
	}
	return f.validateRouting()
}

// CheckClientAuth checks a client-auth value (also the --client-auth flag):
// "require" or "verify-if-given".
func CheckClientAuth(mode string) error {
	switch mode {
	case "require", "verify-if-given":
		return nil
	}
	return fmt.Errorf("%q: use require or verify-if-given", mode)
}

// policyError is a refusal of interceptor.New in the words of the file: a
// *KeyError naming the key at fault (see cliflags.KeyTerms).
func policyError(err error) error {
	var ce *interceptor.ConfigError
	if !errors.As(err, &ce) {
		return errors.New(oneLine(err.Error()))
	}
	key, kerr := cliflags.KeyTerms(ce)
	return &KeyError{Key: key, Err: kerr}
}

// checkPolicy runs interceptor.New with the options of one key and returns
// its refusal in the words of the file, without the key (the caller adds it).
func checkPolicy(opts ...interceptor.Option) error {
	_, err := interceptor.New(opts...)
	if err == nil {
		return nil
	}
	var ce *interceptor.ConfigError
	if !errors.As(err, &ce) {
		return errors.New(oneLine(err.Error()))
	}
	_, kerr := cliflags.KeyTerms(ce)
	return kerr
}

// corsOptions returns the interceptor options for the CORS keys the file set.
func (f *File) corsOptions() []interceptor.Option {
	var opts []interceptor.Option
	if len(f.AllowOrigin) > 0 {
		opts = append(opts, interceptor.WithAllowedOrigins(f.AllowOrigin...))
	}
	if len(f.AllowHeader) > 0 {
		opts = append(opts, interceptor.WithAllowedHeaders(f.AllowHeader...))
	}
	if len(f.ExposeHeader) > 0 {
		opts = append(opts, interceptor.WithExposedHeaders(f.ExposeHeader...))
	}
	if f.present["max-age"] {
		opts = append(opts, interceptor.WithMaxAge(time.Duration(f.MaxAge)))
	}
	return append(opts,
		interceptor.WithCredentials(f.AllowCredentials),
		interceptor.WithPrivateNetwork(f.PrivateNetwork),
		interceptor.WithStrict(f.Strict),
		interceptor.WithTraceHeaders(f.traceHeaders()),
	)
}

// traceHeaders is the trace-headers key's value, true when absent.
func (f *File) traceHeaders() bool {
	return !f.present["trace-headers"] || f.TraceHeaders
}

func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (for example 127.0.0.1:8080 or :8080)", addr)
	}
	if strings.ContainsAny(host, " /\t") {
		return fmt.Errorf("%q: bad host %q", addr, host)
	}
	if _, err := parsePort(port, true); err != nil {
		return fmt.Errorf("%q: %w", addr, err)
	}
	return nil
}

func parsePort(s string, zeroOK bool) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !zeroOK) {
		if zeroOK {
			return 0, fmt.Errorf("port %q is not a number from 0 to 65535", s)
		}
		return 0, fmt.Errorf("port %q is not a number from 1 to 65535", s)
	}
	return n, nil
}

func checkBackend(b string) error {
	if !strings.Contains(b, "://") {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" {
			return fmt.Errorf("%q is neither host:port nor an http:// or https:// URL", b)
		}
		if strings.ContainsAny(host, " /\t") {
			return fmt.Errorf("%q: bad host %q", b, host)
		}
		if _, err := parsePort(port, false); err != nil {
			return fmt.Errorf("%q: %w", b, err)
		}
		return nil
	}
	u, err := url.Parse(b)
	if err != nil {
		return fmt.Errorf("%q is not a URL", b)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: scheme %q; use http:// (h2c) or https://", b, u.Scheme)
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", b)
	case u.User != nil:
		return fmt.Errorf("%q: credentials in the URL are not supported", b)
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return fmt.Errorf("%q: a backend URL has no path, query or fragment", b)
	}
	if p := u.Port(); p != "" {
		if _, err := parsePort(p, false); err != nil {
			return fmt.Errorf("%q: %w", b, err)
		}
	}
	return nil
}

func checkPath(p string) error {
	if p == "" {
		return errors.New("empty path")
	}
	if strings.ContainsRune(p, 0) {
		return fmt.Errorf("%q contains a NUL byte", p)
	}
	return nil
}

func checkServerName(name string) error {
	if name == "" || len(name) > 253 || strings.ContainsAny(name, " /:\t\r\n") {
		return fmt.Errorf("%q is not a host name", name)
	}
	return nil
}

// checkOrigins validates each origin, then the list ("*" with others).
func checkOrigins(origins []string) error {
	for _, o := range origins {
		if err := checkPolicy(interceptor.WithAllowedOrigins(o)); err != nil {
			return err
		}
	}
	return checkPolicy(interceptor.WithAllowedOrigins(origins...))
}

// checkHeaderNames validates each name as a token, then as the interceptor
// does through option (CORS headers, length).
func checkHeaderNames(names []string, option func(...string) interceptor.Option) error {
	for _, n := range names {
		if !isToken(n) {
			return fmt.Errorf("%q is not a header name", n)
		}
		if err := checkPolicy(option(n)); err != nil {
			return err
		}
	}
	return nil
}

// isToken reports whether s is an HTTP token (RFC 9110 section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func checkMessageSize(n int) error {
	switch {
	case n <= 0:
		return fmt.Errorf("%d: must be more than 0 bytes (default 4194304, 4 MiB)", n)
	case n > MaxMessageSize:
		return fmt.Errorf("%d bytes is more than %d (1 GiB)", n, MaxMessageSize)
	}
	return nil
}

func checkRequestBuffer(n int64) error {
	switch {
	case n <= 0:
		return fmt.Errorf("%d: must be more than 0 bytes (default 134217728, 128 MiB)", n)
	case n > MaxRequestBuffer:
		return fmt.Errorf("%d bytes is more than %d (64 GiB)", n, int64(MaxRequestBuffer))
	}
	return nil
}

func checkGrace(d time.Duration) error {
	switch {
	case d < 0:
		return fmt.Errorf("%v is negative", d)
	case d > MaxShutdownGrace:
		return fmt.Errorf("%v is more than %v", d, MaxShutdownGrace)
	}
	return nil
}

// MaxWebSocketStreams is the largest websocket-max-streams.
const MaxWebSocketStreams = 1 << 20

// CheckWebSocketStreams checks websocket-max-streams: 1 to
// [MaxWebSocketStreams].
func CheckWebSocketStreams(n int) error {
	if n <= 0 || n > MaxWebSocketStreams {
		return fmt.Errorf("%d: must be between 1 and %d (default 4096)", n, MaxWebSocketStreams)
	}
	return nil
}

// CheckWebSocketPing checks websocket-ping-interval: 0 (never) or 1 s to 1 h.
func CheckWebSocketPing(d time.Duration) error {
	if d != 0 && (d < time.Second || d > time.Hour) {
		return fmt.Errorf("%v: must be 0 (never ping) or between 1s and 1h (default 30s)", d)
	}
	return nil
}

func checkLevel(l string) error {
	switch strings.ToLower(strings.TrimSpace(l)) {
	case "debug", "info", "warn", "error":
		return nil
	}
	return fmt.Errorf("%q: use debug, info, warn or error", l)
}

func checkServices(services []interceptor.Service) error {
	if _, err := interceptor.NewTable(services...); err != nil {
		return errors.New(oneLine(err.Error()))
	}
	return nil
}

// suggest returns the known key closest to key when it is close enough to be
// a misspelling, else "".
func suggest(key string, known []string) string {
	best, bestDist := "", 3
	for _, k := range known {
		if d := distance(strings.ToLower(key), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance of a and b (bytes), capped for long
// inputs so hostile keys cost little.
func distance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		if a == b {
			return 0
		}
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
