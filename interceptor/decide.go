package interceptor

import "net/http"

// requestReason is the one decision of every request the policy checks, a
// preflight's (method from Access-Control-Request-Method) and an actual
// request's alike: the first check that fails, or ReasonOK. A preflight's
// request headers are checked after it, only when it passes. acao is what
// checkOrigin returned, rt the route of the path or nil.
func requestReason(acao []string, rt *route, method string) Reason {
	switch {
	case acao == nil:
		return ReasonOrigin
	case rt == nil:
		return ReasonProcedure
	case rt.barred:
		return ReasonBarred
	case !rt.methods.has(method):
		return ReasonMethod
	}
	return ReasonOK
}

// preflightMethod is the method a preflight asks for, "" unless exactly one
// Access-Control-Request-Method line was sent (no procedure allows "").
func preflightMethod(acrm []string) string {
	if len(acrm) != 1 {
		return ""
	}
	return acrm[0]
}

// Decision is what a CORS handler decides for one request; see [Decide].
type Decision struct {
	// Verdict is the verdict, as the observer of [WithObserver] is told it.
	Verdict
	// CrossOrigin is false when CORS does not apply: the request has no
	// Origin, or its Origin is the request's own scheme and host. Verdict
	// is then meaningless.
	CrossOrigin bool
	// Answered is true when the handler answers the request itself and
	// never calls the next handler: a preflight, or an actual request
	// refused with PERMISSION_DENIED (a browser-barred procedure, or a
	// disallowed one in strict mode).
	Answered bool
}

// Decide tells what h, a handler returned by [Policy.Handler], decides for
// r, by the same checks the handler runs, without answering, logging or
// calling the observer. It reads only r's method, path, Host, TLS state and
// CORS request headers, and does not change the handler's caches. The
// second result is false when h is not such a handler. It is meant for
// access logs, after the handler has served r.
func Decide(h http.Handler, r *http.Request) (Decision, bool) {
	ch, ok := h.(*handler)
	if !ok {
		return Decision{}, false
	}
	return ch.decide(r), true
}

func (h *handler) decide(r *http.Request) Decision {
	origin, hasOrigin := r.Header[hOrigin]
	rt := h.route(r.URL.Path)
	var d Decision
	if rt != nil {
		d.Procedure = rt.path
	}
	acrm, hasACRM := r.Header[hACRM]
	if r.Method == http.MethodOptions && hasACRM && hasOrigin {
		// A preflight is never same-origin: browsers send none then.
		d.Preflight, d.CrossOrigin, d.Answered = true, true, true
		d.Reason = requestReason(h.checkOrigin(origin), rt, preflightMethod(acrm))
		if d.Reason == ReasonOK {
			if _, ok := rt.scanHeaders(r.Header[hACRH]); !ok {
				d.Reason = ReasonHeader
			}
		}
		d.Allowed = d.Reason == ReasonOK
		return d
	}
	if !hasOrigin || len(origin) == 1 && sameOrigin(origin[0], r.TLS != nil, r.Host) {
		return d
	}
	d.CrossOrigin = true
	d.Reason = requestReason(h.checkOrigin(origin), rt, r.Method)
	d.Allowed = d.Reason == ReasonOK
	d.Answered = rt != nil && rt.barred || d.Reason != ReasonOK && h.p.strict
	return d
}
