package interceptor

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// Check is one step of an [Explanation].
type Check struct {
	// Name is "origin", "procedure", "barred", "method" or
	// "header <name>", in the order the policy checks them.
	Name string
	// OK is true when the check passed.
	OK bool
	// Detail says why, in words.
	Detail string
}

// Explanation is what a browser would get for one call; see
// [Policy.Explain].
type Explanation struct {
	// Allowed is true when every check passed: the preflight succeeds and
	// the script can read the response.
	Allowed bool
	// Checks are the checks, in order; every check is listed, also after
	// one failed.
	Checks []Check
	// PreflightHeader holds the headers the preflight answer would carry;
	// empty when the preflight is refused.
	PreflightHeader http.Header
	// ActualHeader holds the CORS headers (and Vary) the actual response
	// would carry.
	ActualHeader http.Header
}

// Explain tells what a browser at origin calling procedurePath
// ("/greet.v1.GreetService/Greet") with the HTTP method and the request
// headers (names, as the script sets them; the protocol's own need not be
// listed) would get under this policy and table. It runs the same code as
// the handler, without logging and without calling the observer.
func (p *Policy) Explain(t *Table, origin, procedurePath, method string, requestHeaders []string) Explanation {
	quiet := *p
	quiet.observer = nil
	quiet.logger = slog.New(slog.DiscardHandler)
	quiet.strict = false
	h := quiet.Handler(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).(*handler)
	rt := h.routes[procedurePath]

	// Accept "a, b" entries as browsers list them, as well as one name per entry.
	var names []string
	for _, entry := range requestHeaders {
		for _, n := range strings.Split(entry, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
	}
	requestHeaders = names

	var ex Explanation
	add := func(name string, ok bool, format string, args ...any) {
		ex.Checks = append(ex.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, args...)})
	}
	acao := h.checkOrigin([]string{origin})
	switch {
	case acao != nil:
		add("origin", true, "%q is allowed; Access-Control-Allow-Origin: %s", origin, acao[0])
	case origin == "":
		add("origin", false, "no origin: the request is not cross-origin, CORS does not apply")
	case origin == "null":
		add("origin", false, "%q is never trusted: anyone can produce it", origin)
	case !validRequestOrigin(origin):
		add("origin", false, "%q is not an origin as browsers send it (lowercase scheme://host[:port])", origin)
	default:
		add("origin", false, "%q is not among the allowed origins", origin)
	}
	if rt == nil {
		add("procedure", false, "%q is not a procedure of the table (%d procedures); paths look like %q", procedurePath, len(h.routes), "/greet.v1.GreetService/Greet")
	} else {
		add("procedure", true, "%q is known", procedurePath)
	}
	switch {
	case rt == nil:
		add("barred", false, "unknown procedure")
	case rt.barred:
		add("barred", false, "the procedure is browser_barred: browsers may never call it")
	default:
		add("barred", true, "browsers may call the procedure")
	}
	switch {
	case rt == nil:
		add("method", false, "unknown procedure")
	case rt.methods.has(method):
		add("method", true, "%s is allowed (%s)", method, rt.acam[0])
	default:
		add("method", false, "%q is not allowed; allowed: %s", method, rt.acam[0])
	}
	for _, name := range requestHeaders {
		check := "header " + strings.ToLower(name)
		switch {
		case rt == nil:
			add(check, false, "unknown procedure")
		case !validToken(name):
			add(check, false, "%q is not a valid header name", name)
		case rt.allowed.has(name):
			add(check, true, "allowed")
		case rt.anyHeader && !strings.EqualFold(name, "authorization"):
			add(check, true, "allowed by \"*\"")
		case strings.EqualFold(name, "authorization"):
			add(check, false, "not allowed: authorization must be declared in the proto options or allowed by name, \"*\" never covers it")
		default:
			add(check, false, "not allowed: declare it in the proto options ((corsgate.v1.method).request_headers) or allow it with --allow-header")
		}
	}
	ex.Allowed = true
	for _, c := range ex.Checks {
		ex.Allowed = ex.Allowed && c.OK
	}

	// The headers, by running the handler itself.
	pre := newExplainRequest(http.MethodOptions, procedurePath)
	if origin != "" {
		pre.Header.Set(hOrigin, origin)
	}
	pre.Header.Set(hACRM, method)
	if len(requestHeaders) > 0 {
		pre.Header.Set(hACRH, strings.Join(requestHeaders, ","))
	}
	if rec := newRecorder(); origin != "" {
		h.preflight(rec, pre, pre.Header[hOrigin], pre.Header[hACRM])
		if rec.code == http.StatusNoContent {
			ex.PreflightHeader = rec.header.Clone()
		}
	}
	if ex.PreflightHeader == nil {
		ex.PreflightHeader = http.Header{}
	}
	act := newExplainRequest(method, procedurePath)
	if origin != "" {
		act.Header.Set(hOrigin, origin)
	}
	rec := newRecorder()
	h.actual(rec, act)
	ex.ActualHeader = http.Header{}
	for k, v := range rec.header {
		if strings.HasPrefix(k, headerStart) || k == hVary {
			ex.ActualHeader[k] = append([]string(nil), v...) // never share the policy's values
		}
	}
	return ex
}

func newExplainRequest(method, path string) *http.Request {
	if method == "" {
		method = http.MethodPost
	}
	r, err := http.NewRequestWithContext(context.Background(), method, "http://corsgate.invalid/", nil)
	if err != nil {
		// An invalid method: explain it as POST; the method check says why.
		r, _ = http.NewRequestWithContext(context.Background(), http.MethodPost, "http://corsgate.invalid/", nil)
	}
	r.URL.Path = path
	return r
}

// recorder is the least ResponseWriter Explain needs.
type recorder struct {
	header http.Header
	code   int
}

func newRecorder() *recorder { return &recorder{header: http.Header{}, code: http.StatusOK} }

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) WriteHeader(code int)        { r.code = code }
