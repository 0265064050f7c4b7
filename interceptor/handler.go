package interceptor

import (
	"net/http"
	"strings"
)

// route is one procedure's precomputed answer under one policy: header
// values are built once, so requests only compare and assign.
type route struct {
	path      string
	barred    bool
	methods   methodSet
	allowed   headerSet // lowercase request headers: protocol + declared + configured
	anyHeader bool      // "*" configured: any token except authorization
	acam      []string
	acah      []string
	aceh      []string
	// granted is the last single Access-Control-Request-Headers line
	// checkHeaders granted.
	granted lineCache
	// trace is what the route's spans share, nil when tracing is off.
	trace *routeTrace
}

// handler is the middleware [Policy.Handler] returns.
type handler struct {
	p      *Policy
	t      *Table
	routes map[string]*route
	// routeIdx indexes the paths of routes for the hot path; routeList[i]
	// is the route of the path at position i.
	routeIdx  strIndex
	routeList []*route
	next      http.Handler
}

// Handler returns the CORS middleware for the procedures in t, in front of
// next. Preflights are answered here and never reach next: 204 with the CORS
// headers when allowed, 403 without them when refused (a path that names no
// procedure in t is refused). Actual requests to procedures in t get their
// CORS headers before next runs, and CORS headers next sets itself are
// dropped; actual requests to other paths pass to next untouched, unless the
// policy is strict and the request is cross-origin, in which case they are
// refused with PERMISSION_DENIED like disallowed origins. Cross-origin
// requests to a browser-barred procedure are refused with PERMISSION_DENIED
// in every mode. The handler is safe
// for concurrent use. A nil t holds no procedure; a nil next answers 404.
func (p *Policy) Handler(t *Table, next http.Handler) http.Handler {
	if t == nil {
		t = &Table{}
	}
	if next == nil {
		next = http.NotFoundHandler()
	}
	h := &handler{p: p, t: t, routes: make(map[string]*route, len(t.procs)), next: next}
	for _, path := range t.order {
		rt := p.compile(t.procs[path])
		h.routes[path] = rt
		h.routeList = append(h.routeList, rt)
	}
	h.routeIdx = newStrIndex(t.order, false)
	return h
}

// route returns the route of a request path, or nil.
func (h *handler) route(path string) *route {
	if i := h.routeIdx.find(path); i >= 0 {
		return h.routeList[i]
	}
	return nil
}

// compile merges a table procedure with the policy's lists.
func (p *Policy) compile(tp *tableProc) *route {
	req := appendUnique(nil, strings.ToLower, protocolRequestHeaders...)
	if p.traceHeaders {
		req = appendUnique(req, strings.ToLower, traceRequestHeaders...)
	}
	req = appendUnique(req, strings.ToLower, tp.request...)
	req = appendUnique(req, strings.ToLower, p.allowedHeaders...)
	exp := appendUnique(nil, canonical, protocolExposedHeaders...)
	exp = appendUnique(exp, canonical, tp.exposed...)
	exp = appendUnique(exp, canonical, p.exposedHeaders...)
	var rtr *routeTrace
	if p.tracer != nil {
		rtr = newRouteTrace(tp.path)
	}
	return &route{
		trace:     rtr,
		path:      tp.path,
		barred:    tp.barred,
		methods:   tp.methods,
		allowed:   *newHeaderSet(req),
		anyHeader: p.anyHeader,
		acam:      []string{tp.methods.String()},
		acah:      []string{strings.Join(req, ", ")},
		aceh:      []string{strings.Join(exp, ", ")},
	}
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodOptions {
		if acrm, ok := r.Header[hACRM]; ok {
			if origin, ok := r.Header[hOrigin]; ok {
				h.preflight(w, r, origin, acrm)
				return
			}
		}
	}
	h.actual(w, r)
}

// checkOrigin matches the request's Origin lines (exactly one is valid) and
// returns the Access-Control-Allow-Origin value to send, or nil.
func (h *handler) checkOrigin(origin []string) []string {
	if len(origin) != 1 {
		return nil
	}
	// What match does, with the usual case first and inline: an origin
	// listed exactly (never "" or "null", which New refuses).
	m := h.p.origins
	if i := m.exactIdx.find(origin[0]); i >= 0 {
		return m.exactVals[i]
	}
	switch m.matchInexact(origin[0]) {
	case originStar:
		if h.p.credentials {
			// New refuses this combination; echo to be safe.
			return origin[:1:1]
		}
		return valueStar
	case originEcho:
		// The request's own []string, capacity-limited: no allocation.
		return origin[:1:1]
	}
	return nil
}

// checkHeaders reports whether every name in the ACRH lines is allowed for
// rt, and the offending name when not. A browser sends the same single line
// for a route again and again: the last one granted is remembered, and
// found again by one comparison.
func (rt *route) checkHeaders(lines []string) (bad string, ok bool) {
	if len(lines) != 1 {
		return rt.scanHeaders(lines)
	}
	if rt.granted.has(lines[0]) {
		return "", true
	}
	if bad, ok = rt.scanHeaders(lines); ok {
		rt.granted.store(lines[0])
	}
	return bad, ok
}

// scanHeaders is checkHeaders without the memory of the last line.
func (rt *route) scanHeaders(lines []string) (bad string, ok bool) {
	// Fast path for the line browsers send: one line of allowed names
	// joined by commas, within the scanner's bounds. It can only accept,
	// and only what the scanner accepts: an element with spaces, an empty
	// element (no name is empty or has spaces), an unknown name or too many
	// names make it give up, and the scanner decides.
	if len(lines) == 1 && len(lines[0]) <= maxRequestHeaderBytes {
		l := lines[0]
		for names := 0; l != "" && names < maxRequestHeaderNames; names++ {
			i := indexComma(l)
			if !rt.allowed.has(l[:i]) {
				break
			}
			if i == len(l) {
				return "", true
			}
			l = l[i+1:] // a final comma leaves "", which ends the list
		}
		if l == "" {
			return "", true
		}
	}
	var s headerScanner
	s.reset(lines)
	if s.over {
		return "(more than the parser's bounds)", false
	}
	for {
		name, ok := s.next()
		if !ok {
			break
		}
		if rt.allowed.has(name) {
			continue // a configured name, so a valid one
		}
		if !validToken(name) {
			return "(malformed header name)", false
		}
		if rt.anyHeader && !strings.EqualFold(name, "authorization") {
			continue
		}
		return name, false
	}
	if s.over {
		return "(more than the parser's bounds)", false
	}
	return "", true
}

// setVary sets or extends Vary with value, allocating only when another
// Vary is already present. It returns the slice it left in hdr.
func setVary(hdr http.Header, value []string) []string {
	if len(hdr) == 0 {
		hdr[hVary] = value // nothing to keep; skips a lookup
		return value
	}
	old, ok := hdr[hVary]
	if !ok {
		hdr[hVary] = value
		return value
	}
	for _, v := range old {
		if v == value[0] {
			return old
		}
	}
	v := append(old[:len(old):len(old)], value[0])
	hdr[hVary] = v
	return v
}
