package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/trace"

	"github.com/corsgate/corsgate/interceptor"
)

// The access log: [Config.AccessLog] documents its lines. With no access
// log, each step below is skipped after a nil check, and nothing is
// allocated.

const (
	maxLoggedPath   = 256
	maxLoggedOrigin = 256
)

type accessKey struct{}

// accessRecord is what one request leaves in the access log; serveRPC fills
// in the call's part through [call.rec], the WebSocket transport its own.
type accessRecord struct {
	rpc      bool // serveRPC ended the call
	protocol string
	code     connect.Code
	route    string
	backend  string
	replica  string
	trace    trace.TraceID // the call's span's; zero without one
	// ws is set for a WebSocket upgrade: checked once its guard decided,
	// allowed and reason its verdict; traceparent the header message's.
	ws          bool
	checked     bool
	allowed     bool
	reason      interceptor.Reason
	traceparent []string
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
	a.rpc, a.code = true, st.Code
	if !a.ws {
		a.protocol = c.proto.name()
	}
	if rt != nil {
		a.route, a.backend = rt.rule.name, rt.backend.name
	}
}

// upgrade records the verdict of a WebSocket upgrade's guard.
func (a *accessRecord) upgrade(v *interceptor.UpgradeVerdict) {
	a.checked, a.allowed, a.reason = true, v.Allowed, v.Reason
	if !v.Allowed {
		a.code = connect.CodePermissionDenied
	}
}

// callBackend makes the backend call of c, recording the replica that took
// it: the backend's one address, or the one its balancer picked.
func (c *call) callBackend(out *http.Request, whole bool) (*http.Response, error) {
	b := c.route.backend
	if rc, ok := b.client.(replicaCaller); ok {
		resp, addr, err := rc.CallReplica(c.ctx, out, whole)
		c.rec.replica = addr
		return resp, err
	}
	c.rec.replica = b.authority
	return b.client.Call(c.ctx, out, whole)
}

// serveLogged serves r as [Gateway.serve] does and logs it.
func (g *Gateway) serveLogged(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := g.state.Load()
	rec := &accessRecord{ws: g.ws != nil && isWebSocketUpgrade(r)}
	if rec.ws {
		rec.protocol = "grpc_websocket"
	}
	lr := r.WithContext(context.WithValue(r.Context(), accessKey{}, rec))
	if r.Body != nil && r.Body != http.NoBody {
		lr.Body = &countingBody{ReadCloser: r.Body, n: &rec.in}
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
	attrs := make([]slog.Attr, 0, 16)
	attrs = append(attrs, slog.String("procedure", cut(path, maxLoggedPath)))
	var h http.Handler = st.fallback
	if rt := st.routes[path]; rt != nil {
		h = rt.handler
		if rec.route == "" {
			// Answered before the RPC handler: a preflight or a refusal.
			rec.route, rec.backend = rt.rule.name, rt.backend.name
		}
	}
	var d interceptor.Decision
	known := false
	if !rec.ws && path != "/healthz" && !strings.HasPrefix(path, g.healthPfx) {
		d, known = interceptor.Decide(h, r)
	}
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
	case rec.rpc || rec.code != 0:
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
	cors, reason := "refused", interceptor.ReasonOK
	switch {
	case len(origin) == 0:
		cors = "none"
	case rec.ws && !rec.checked, !rec.ws && !known:
		cors = "unknown"
	case rec.ws && rec.allowed, !rec.ws && d.CrossOrigin && d.Allowed:
		cors = "allowed"
	case rec.ws:
		reason = rec.reason
	case !d.CrossOrigin:
		cors = "same-origin"
	default:
		reason = d.Reason
	}
	attrs = append(attrs, slog.String("cors", cors))
	if cors == "refused" {
		attrs = append(attrs, slog.String("cors_reason", reason.String()))
	}
	var id string
	switch {
	case rec.trace.IsValid():
		id = rec.trace.String()
	case rec.ws:
		id = traceID(rec.traceparent)
	default:
		id = traceID(r.Header["Traceparent"])
	}
	if id != "" {
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
	if w.rec.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
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
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the writer underneath, for http.ResponseController.
func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
