package interceptor

import "net/http"

// preflight answers OPTIONS + Origin + Access-Control-Request-Method. It
// never calls the next handler.
func (h *handler) preflight(w http.ResponseWriter, r *http.Request, origin, acrm []string) {
	hdr := w.Header()
	vary := valueVaryPreflight
	if h.p.privateNetwork {
		vary = valueVaryPNA
	}
	setVary(hdr, vary)

	rt := h.route(r.URL.Path)
	reason, detail := ReasonOK, ""
	acao := h.checkOrigin(origin)
	var acrh []string // read only when the earlier checks pass
	if reason = requestReason(acao, rt, preflightMethod(acrm)); reason == ReasonOK {
		acrh = r.Header[hACRH]
		if bad, ok := rt.checkHeaders(acrh); !ok {
			reason, detail = ReasonHeader, bad
		}
	}
	if h.p.observer != nil {
		procedure := ""
		if rt != nil {
			procedure = rt.path
		}
		h.p.observe(Verdict{Preflight: true, Allowed: reason == ReasonOK, Reason: reason, Procedure: procedure})
	}
	if reason != ReasonOK {
		if detail == "" && reason == ReasonMethod && len(acrm) > 0 {
			detail = acrm[0]
		}
		o := ""
		if len(origin) > 0 {
			o = origin[0]
		}
		h.p.logRefusal(r.Context(), "corsgate: preflight refused", reason, o, r.URL.Path, detail)
		if h.p.tracer != nil {
			h.p.tracer.tracePreflight(r, rt, reason)
		}
		w.WriteHeader(http.StatusForbidden)
		return
	}
	hdr[hACAO] = acao
	if h.p.credentials {
		hdr[hACAC] = valueTrue
	}
	hdr[hACAM] = rt.acam
	if rt.anyHeader && len(acrh) > 0 {
		// Every name was checked above; echo the request's lines.
		hdr[hACAH] = acrh
	} else {
		hdr[hACAH] = rt.acah
	}
	if h.p.maxAge != nil {
		hdr[hMaxAge] = h.p.maxAge
	}
	if h.p.privateNetwork {
		if pn := r.Header[hACRPN]; len(pn) == 1 && pn[0] == "true" {
			hdr[hACAPN] = valueTrue
		}
	}
	w.WriteHeader(http.StatusNoContent)
}
