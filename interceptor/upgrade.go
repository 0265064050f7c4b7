package interceptor

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
)

// WebSockets are not covered by CORS: a browser sends no preflight before a
// WebSocket upgrade, sends the user's cookies with it, and lets any page read
// what comes back. A server that upgrades without checking the Origin itself
// lets every site on the web open streams as the user (cross-site WebSocket
// hijacking). An [UpgradeGuard] makes that check with the policy's own
// origin matcher and the table's per-procedure rules, so that a page that
// may not call a procedure over fetch may not stream it over a WebSocket
// either.

// UpgradeGuard decides WebSocket upgrades for the procedures of one table
// under one policy. Build it with [Policy.Upgrades]; it is immutable and safe
// for concurrent use.
type UpgradeGuard struct {
	h       *handler
	exposed map[string]*headerSet // path → exposed response headers, lowercase
	anyExp  bool                  // "*" exposed, without credentials
}

// Upgrades returns the guard of WebSocket upgrades to the procedures of t
// under p. A nil t holds no procedure. The per-procedure answers are
// precomputed here, once.
func (p *Policy) Upgrades(t *Table) *UpgradeGuard {
	h := p.Handler(t, nil).(*handler) //nolint:errcheck // Handler returns only *handler
	g := &UpgradeGuard{h: h, exposed: make(map[string]*headerSet, len(h.routes))}
	for path, tp := range h.t.procs {
		exp := appendUnique(nil, strings.ToLower, protocolExposedHeaders...)
		exp = appendUnique(exp, strings.ToLower, tp.exposed...)
		exp = appendUnique(exp, strings.ToLower, p.exposedHeaders...)
		g.exposed[path] = newHeaderSet(exp)
	}
	for _, e := range p.exposedHeaders {
		if e == "*" && !p.credentials {
			g.anyExp = true
		}
	}
	return g
}

// Credentials reports whether the policy lets browsers send cookies and
// HTTP authentication ([WithCredentials]).
func (p *Policy) Credentials() bool { return p.credentials }

// UpgradeVerdict is what an [UpgradeGuard] decided for one upgrade request.
type UpgradeVerdict struct {
	// Allowed is true when the stream may open.
	Allowed bool
	// Reason is the failed check ([ReasonOrigin], [ReasonProcedure] or
	// [ReasonBarred]), or [ReasonOK].
	Reason Reason
	// Detail says why, in words, for logs.
	Detail string
	// Origin is the request's Origin, "" when it had none.
	Origin string
	// Procedure is the procedure's path, "" when the path names none.
	Procedure string

	rt      *route
	exposed *headerSet
	anyExp  bool
}

// Check decides the upgrade request r: its Origin must be allowed by the
// policy, exactly as for CORS (one Origin line, never "null"); a request
// without Origin comes from a client that is not a browser and passes only
// when allowMissingOrigin is set. The path must name a procedure of the
// table that is not browser_barred. Refusals are logged at debug level with
// the failed check, as preflight refusals are.
func (g *UpgradeGuard) Check(r *http.Request, allowMissingOrigin bool) UpgradeVerdict {
	v := UpgradeVerdict{}
	origin, hasOrigin := r.Header[hOrigin]
	if hasOrigin && len(origin) > 0 {
		v.Origin = origin[0]
	}
	rt := g.h.route(r.URL.Path)
	if rt != nil {
		v.Procedure = rt.path
	}
	switch {
	case !hasOrigin && !allowMissingOrigin:
		v.Reason, v.Detail = ReasonOrigin, "no Origin: clients that are not browsers need the missing-origin setting"
	case hasOrigin && g.h.checkOrigin(origin) == nil:
		v.Reason, v.Detail = ReasonOrigin, "origin not allowed"
	case rt == nil:
		v.Reason, v.Detail = ReasonProcedure, "no such procedure"
	case rt.barred:
		v.Reason, v.Detail = ReasonBarred, "the procedure is browser_barred"
	default:
		v.Allowed = true
		v.rt = rt
		v.exposed = g.exposed[rt.path]
		v.anyExp = g.anyExp
		return v
	}
	g.h.p.logRefusal(r.Context(), "corsgate: websocket upgrade refused", v.Reason, v.Origin, r.URL.Path, v.Detail)
	return v
}

// LogRefusal logs a refusal the caller made itself after Check allowed the
// upgrade (a stream bound, a malformed header message), at debug level
// with the check's name, as the policy logs its own.
func (g *UpgradeGuard) LogRefusal(ctx context.Context, check, origin, path, detail string) {
	l := g.h.p.log()
	if !l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	l.DebugContext(ctx, "corsgate: websocket upgrade refused", "check", check, "origin", origin, "path", path, "detail", detail)
}

// AllowsRequestHeader reports whether a script may send the request header
// name (any case) to the procedure: the same answer a preflight asking for
// it would get. It is false for a verdict that did not allow the upgrade.
func (v *UpgradeVerdict) AllowsRequestHeader(name string) bool {
	if v.rt == nil {
		return false
	}
	if v.rt.allowed.has(name) {
		return true
	}
	return v.rt.anyHeader && validToken(name) && !strings.EqualFold(name, "authorization")
}

// ExposesResponseHeader reports whether a script may read the response
// header name (any case) under CORS: the protocol's status and encoding
// headers, the procedure's declared ones and the configured ones. It is
// false for a verdict that did not allow the upgrade.
func (v *UpgradeVerdict) ExposesResponseHeader(name string) bool {
	if v.rt == nil {
		return false
	}
	if v.anyExp || v.exposed.has(name) {
		return true
	}
	switch strings.ToLower(name) {
	case "cache-control", "content-language", "content-length", "content-type", "expires", "last-modified", "pragma":
		return true // CORS-safelisted response headers
	}
	return false
}
