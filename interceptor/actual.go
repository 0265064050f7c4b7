package interceptor

import (
	"net/http"

	"connectrpc.com/connect"

	"github.com/corsgate/corsgate/internal/rpcerr"
)

// strictMessages are the PERMISSION_DENIED messages of strict mode, one per
// reason, built once.
var strictMessages = func() [len(reasonNames)]string {
	var m [len(reasonNames)]string
	for i := range m {
		m[i] = "corsgate: cross-origin call refused by the CORS policy (check: " + Reason(i).String() + ")"
	}
	return m
}()

// actual handles every request that is not a preflight.
func (h *handler) actual(w http.ResponseWriter, r *http.Request) {
	origin, hasOrigin := r.Header[hOrigin]
	rt := h.routes[r.URL.Path]
	if rt == nil && (!h.p.strict || !hasOrigin) {
		// Not ours: pass untouched, as documented on Policy.Handler.
		if hasOrigin && h.p.observer != nil && !(len(origin) == 1 && sameOrigin(origin[0], r.TLS != nil, r.Host)) {
			h.p.observe(Verdict{Reason: ReasonProcedure})
		}
		h.next.ServeHTTP(w, r)
		return
	}
	hdr := w.Header()
	setVary(hdr, valueVaryOrigin)
	if !hasOrigin {
		// Same-origin or not from a browser: no CORS headers, but the
		// handler's own are still dropped.
		h.serve(w, r, nil, rt)
		return
	}
	acao := h.checkOrigin(origin)
	reason := ReasonOK
	switch {
	case acao == nil:
		reason = ReasonOrigin
	case rt == nil:
		reason = ReasonProcedure
	case rt.barred:
		reason = ReasonBarred
	case !rt.methods.has(r.Method):
		reason = ReasonMethod
	}
	same := len(origin) == 1 && sameOrigin(origin[0], r.TLS != nil, r.Host)
	if !same {
		procedure := ""
		if rt != nil {
			procedure = rt.path
		}
		h.p.observe(Verdict{Allowed: reason == ReasonOK, Reason: reason, Procedure: procedure})
	}
	if reason != ReasonOK {
		if h.p.strict && !same {
			o := ""
			if len(origin) > 0 {
				o = origin[0]
			}
			h.p.logRefusal(r.Context(), "corsgate: cross-origin call refused (strict)", reason, o, r.URL.Path, r.Method)
			rpcerr.Write(w, r, connect.CodePermissionDenied, strictMessages[reason])
			return
		}
		h.serve(w, r, nil, rt)
		return
	}
	hdr[hACAO] = acao
	if h.p.credentials {
		hdr[hACAC] = valueTrue
	}
	hdr[hACEH] = rt.aceh
	h.serve(w, r, acao, rt)
}

// serve runs next with a writer that keeps the policy's CORS headers (acao
// nil: none) whatever next sets.
func (h *handler) serve(w http.ResponseWriter, r *http.Request, acao []string, rt *route) {
	cw := getWriter(w)
	cw.acao = acao
	if acao != nil {
		if h.p.credentials {
			cw.acac = valueTrue
		}
		cw.aceh = rt.aceh
	}
	h.next.ServeHTTP(cw, r)
	if !cw.wroteHeader {
		cw.fix()
	}
	putWriter(cw)
}
