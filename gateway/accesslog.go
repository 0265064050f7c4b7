package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/corsgate/corsgate/interceptor"
)

// The access log ([Config.AccessLog]) has one line per request, message
// "access", at info level, with these attributes (absent ones omitted):
//
//	procedure    the request path, cut at maxLoggedPath bytes
//	protocol     grpc_web, grpc_web_text, connect, grpc; preflight; http for anything else
//	route        the route's name: "routes[0]", or "backends.NAME" for a service no route claims
//	backend      the backend's name
//	replica      the replica's host:port, for a call that reached a backend with one
//	             address (the balancer of several replicas does not tell which one served)
//	code         the gRPC code in snake case ("ok", "permission_denied"); not for preflights
//	http_status  the HTTP status of the answer
//	duration_ms  from the request's arrival to the end of its answer
//	bytes_in     request body bytes read, as sent on the wire
//	bytes_out    response body bytes written
//	origin       the Origin header, cut at maxLoggedOrigin bytes
//	cors         allowed, refused, same-origin, none (no Origin), or unknown
//	cors_reason  the failed check when refused: origin, procedure, barred, method, header
//	trace_id     the trace id of a valid W3C traceparent header
//
// No other header value is ever logged: not authorization, not cookies.
// WebSocket streams are not logged (their connections are hijacked).

const (
	maxLoggedPath   = 256
	maxLoggedOrigin = 256
)

type accessKey struct{}

// accessRecord is what one request leaves in the access log; serveRPC fills
// in the call's part through [call.rec].
type accessRecord struct {
	rpc      bool // serveRPC ended the call
	protocol string
	code     connect.Code
	route    string
	backend  string
	replica  string
	// in and out are atomic: a request body may be read by the backend
	// client's goroutine.
	in     atomic.Int64
	out    atomic.Int64
	status int
}

// recordOf returns r's access record; it is only called with an access log.
func recordOf(r *http.Request) *accessRecord {
	rec, _ := r.Context().Value(accessKey{}).(*accessRecord)
	return rec
}

// end records the outcome of an RPC.
func (a *accessRecord) end(c *call, rt *route, st *rpcStatus) {
	a.rpc, a.protocol, a.code = true, c.proto.name(), st.Code
	if rt == nil {
		return
	}
	a.route, a.backend = rt.rule.name, rt.backend.name
	if _, ok := rt.backend.client.(h2Backend); ok {
		a.replica = rt.backend.authority
	}
}

// serveLogged serves r as [Gateway.serve] does and logs it.
func (g *Gateway) serveLogged(w http.ResponseWriter, r *http.Request) {
	if g.ws != nil && isWebSocketUpgrade(r) {
		g.serve(w, r, nil)
		return
	}
	start := time.Now()
	st := g.state.Load()
	rec := &accessRecord{}
	lr := r.WithContext(context.WithValue(r.Context(), accessKey{}, rec))
	var body *countingBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingBody{ReadCloser: r.Body, n: &rec.in}
		lr.Body = body
	}
	lw := &accessWriter{ResponseWriter: w, rec: rec}
	// Deferred, so that a call aborted with http.ErrAbortHandler is logged
	// too, while the panic goes on to net/http.
	defer g.logAccess(r, st, rec, start)
	g.serve(lw, lr, st)
}

// logAccess writes rec's line.
func (g *Gateway) logAccess(r *http.Request, st *state, rec *accessRecord, start time.Time) {
	path := r.URL.Path
	attrs := make([]slog.Attr, 0, 15)
	attrs = append(attrs, slog.String("procedure", cut(path, maxLoggedPath)))
	var h http.Handler = st.fallback
	if rt := st.routes[path]; rt != nil {
		h = rt.handler
		if !rec.rpc {
			// Answered before the RPC handler: a preflight or a refusal.
			rec.route, rec.backend = rt.rule.name, rt.backend.name
		}
	}
	d, known := interceptor.Decide(h, r)
	protocol := rec.protocol
	switch {
	case protocol != "":
	case d.Preflight:
		protocol = "preflight"
	default:
		protocol = "http"
		if p, _, _, refusal := detect(r); refusal == 0 && path != "/healthz" {
			protocol = p.name()
		}
	}
	attrs = append(attrs, slog.String("protocol", protocol))
	if rec.route != "" {
		attrs = append(attrs, slog.String("route", rec.route), slog.String("backend", rec.backend))
	}
	if rec.replica != "" {
		attrs = append(attrs, slog.String("replica", rec.replica))
	}
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	switch {
	case rec.rpc:
		attrs = append(attrs, slog.String("code", codeLabel(rec.code)))
	case known && d.Answered && !d.Preflight:
		attrs = append(attrs, slog.String("code", codeLabel(connect.CodePermissionDenied)))
	}
	attrs = append(attrs,
		slog.Int("http_status", status),
		slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
		slog.Int64("bytes_in", rec.in.Load()),
		slog.Int64("bytes_out", rec.out.Load()),
	)
	origin := r.Header["Origin"]
	if len(origin) > 0 {
		attrs = append(attrs, slog.String("origin", cut(origin[0], maxLoggedOrigin)))
	}
	switch {
	case len(origin) == 0:
		attrs = append(attrs, slog.String("cors", "none"))
	case !known:
		attrs = append(attrs, slog.String("cors", "unknown"))
	case !d.CrossOrigin:
		attrs = append(attrs, slog.String("cors", "same-origin"))
	case d.Allowed:
		attrs = append(attrs, slog.String("cors", "allowed"))
	default:
		attrs = append(attrs, slog.String("cors", "refused"), slog.String("cors_reason", d.Reason.String()))
	}
	if id := traceID(r.Header["Traceparent"]); id != "" {
		attrs = append(attrs, slog.String("trace_id", id))
	}
	g.alog.LogAttrs(context.Background(), slog.LevelInfo, "access", attrs...)
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// traceID returns the trace id of a W3C traceparent header
// ("00-<32 hex>-<16 hex>-<2 hex>"), or "" when there is not exactly one
// valid line: a malformed value is never logged.
func traceID(lines []string) string {
	if len(lines) != 1 {
		return ""
	}
	v := lines[0]
	if len(v) < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-' || (len(v) > 55 && (v[:2] == "00" || v[55] != '-')) {
		return ""
	}
	if !lowerHex(v[:2]) || v[:2] == "ff" || !lowerHex(v[3:35]) || !lowerHex(v[36:52]) || !lowerHex(v[53:55]) {
		return ""
	}
	id := v[3:35]
	if id == "00000000000000000000000000000000" || v[36:52] == "0000000000000000" {
		return ""
	}
	return id
}

func lowerHex(s string) bool {
	for i := range len(s) {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// countingBody counts the bytes read from a request body.
type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// accessWriter records the status and counts the bytes of a response. It
// keeps Flush and Unwrap, so http.ResponseController works through it.
type accessWriter struct {
	http.ResponseWriter
	rec *accessRecord
}

func (w *accessWriter) WriteHeader(code int) {
	if w.rec.status == 0 && code >= 200 {
		w.rec.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *accessWriter) Write(p []byte) (int, error) {
	if w.rec.status == 0 {
		w.rec.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.rec.out.Add(int64(n))
	return n, err
}

func (w *accessWriter) Flush() {
	if w.rec.status == 0 {
		w.rec.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the writer underneath, for http.ResponseController.
func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
