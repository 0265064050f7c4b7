package interceptor

import (
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/corsgate/corsgate/internal/wire"
)

// StrictErrorDomain is the domain of the google.rpc.ErrorInfo detail of a
// strict-mode refusal; its reason is "CORS_REFUSED" and its metadata
// "check" holds the [Reason] of the check that failed ("origin", ...).
const StrictErrorDomain = "corsgate.dev"

// strictStatuses are the PERMISSION_DENIED statuses of strict mode, one per
// reason, built once.
var strictStatuses = func() [len(reasonNames)]*wire.Status {
	var m [len(reasonNames)]*wire.Status
	for i := range m {
		st := wire.NewStatus(connect.CodePermissionDenied,
			"corsgate: cross-origin call refused by the CORS policy (check: "+Reason(i).String()+")")
		// Marshaling a generated message cannot fail.
		_ = st.SetDetails(&errdetails.ErrorInfo{
			Reason:   "CORS_REFUSED",
			Domain:   StrictErrorDomain,
			Metadata: map[string]string{"check": Reason(i).String()},
		})
		m[i] = st
	}
	return m
}()

// actual handles every request that is not a preflight.
func (h *handler) actual(w http.ResponseWriter, r *http.Request) {
	origin, hasOrigin := r.Header[hOrigin]
	rt := h.route(r.URL.Path)
	if rt == nil && (!h.p.strict || !hasOrigin) {
		// Not ours: pass untouched, as documented on Policy.Handler.
		if hasOrigin && h.p.observer != nil && !(len(origin) == 1 && sameOrigin(origin[0], r.TLS != nil, r.Host)) {
			h.p.observe(Verdict{Reason: ReasonProcedure})
		}
		h.next.ServeHTTP(w, r)
		return
	}
	hdr := w.Header()
	fresh := len(hdr) == 0
	vary := setVary(hdr, valueVaryOrigin)
	if !hasOrigin {
		// Same-origin or not from a browser: no CORS headers, but the
		// handler's own are still dropped.
		h.serve(w, r, fresh, vary, nil, nil, nil, rt, ReasonOK)
		return
	}
	acao := h.checkOrigin(origin)
	reason := requestReason(acao, rt, r.Method)
	// A browser-barred procedure never runs for another origin, strict or
	// not, whatever the origin: its preflight is always refused, but a
	// request can still arrive without one (a simple request, or after a
	// preflight granted before the procedure was known to be barred).
	barred := rt != nil && rt.barred
	// Whether the call is same-origin matters only to the observer and to
	// refusals; skip the comparison when neither is in play.
	if h.p.observer != nil || (h.p.strict && reason != ReasonOK) || barred {
		same := len(origin) == 1 && sameOrigin(origin[0], r.TLS != nil, r.Host)
		if !same {
			procedure := ""
			if rt != nil {
				procedure = rt.path
			}
			h.p.observe(Verdict{Allowed: reason == ReasonOK, Reason: reason, Procedure: procedure})
		}
		if !same && (barred || reason != ReasonOK && h.p.strict) {
			o := ""
			if len(origin) > 0 {
				o = origin[0]
			}
			msg := "corsgate: cross-origin call refused (strict)"
			if barred {
				reason, msg = ReasonBarred, "corsgate: cross-origin call to a browser-barred procedure refused"
			}
			h.p.logRefusal(r.Context(), msg, reason, o, r.URL.Path, r.Method)
			class := wire.Classify(r)
			if h.p.tracer != nil {
				h.p.tracer.traceRefusal(r, class, rt, reason, strictStatuses[reason])
			}
			wire.WriteError(w, class, strictStatuses[reason], nil)
			return
		}
	}
	if reason != ReasonOK {
		h.serve(w, r, fresh, vary, nil, nil, nil, rt, reason)
		return
	}
	hdr[hACAO] = acao
	var acac []string
	if h.p.credentials {
		acac = valueTrue
		hdr[hACAC] = acac
	}
	hdr[hACEH] = rt.aceh
	h.serve(w, r, fresh, vary, acao, acac, rt.aceh, rt, ReasonOK)
}

// serve runs next with a writer that keeps the policy's CORS headers (acao
// nil: none) whatever next sets. fresh says that the header map held
// nothing before the policy set vary (the Vary value it stored) and the
// others, which lets the writer check cheaply that next changed nothing.
// rt is the request's route (nil: the path names no procedure) and reason
// the CORS verdict, for the span of [WithTracing].
func (h *handler) serve(w http.ResponseWriter, r *http.Request, fresh bool, vary, acao, acac, aceh []string, rt *route, reason Reason) {
	cw := getWriter(w)
	cw.vary, cw.acao, cw.acac, cw.aceh = vary, acao, acac, aceh
	cw.fresh = fresh
	if rt != nil && h.p.tracer != nil {
		h.serveTraced(cw, r, rt, reason)
	} else {
		h.next.ServeHTTP(cw, r)
	}
	if !cw.wroteHeader {
		cw.fix()
	}
	putWriter(cw)
}
