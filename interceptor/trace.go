package interceptor

import (
	"context"
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/corsgate/corsgate/internal/rpctrace"
	"github.com/corsgate/corsgate/internal/wire"
)

// tracerName is the instrumentation scope of the policy's spans.
const tracerName = "github.com/corsgate/corsgate/interceptor"

// Attribute keys of the spans of [WithTracing] beyond the RPC semantic
// conventions. The gateway's spans carry the same keys.
const (
	// AttrCORSOrigin is the request's Origin, absent without one.
	AttrCORSOrigin = attribute.Key("corsgate.cors.origin")
	// AttrCORSAllowed tells whether the policy gave the request's Origin
	// the CORS headers that let its browser read the response; absent
	// without an Origin.
	AttrCORSAllowed = attribute.Key("corsgate.cors.allowed")
	// AttrCORSReason is the check that failed ([Reason.String]: "origin",
	// "procedure", "barred", "method", "header") when AttrCORSAllowed is
	// false.
	AttrCORSReason = attribute.Key("corsgate.cors.reason")
	// AttrCORSPreflight is true on the span of a refused preflight.
	AttrCORSPreflight = attribute.Key("corsgate.cors.preflight")
)

// WithTracing makes the policy's handlers start an OpenTelemetry server
// span, from tp, for every request to a procedure of their table, as
// connectrpc.com/otelconnect describes a call:
//
//   - the name is the procedure without its leading '/'
//     ("greet.v1.GreetService/Greet"), the kind server;
//   - rpc.system is "connect_rpc", "grpc" or "grpc_web" (binary and text),
//     with rpc.service, rpc.method, net.peer.name and net.peer.port;
//   - at the end, rpc.grpc.status_code or rpc.grpc_web.status_code (0 on
//     success), or for Connect rpc.connect_rpc.error_code on errors, read
//     from the response the handler wrote (the grpc-status trailer, the
//     gRPC-Web trailer frame, the Connect end-of-stream message or error
//     JSON); the span status is Error for the codes that say the server
//     failed (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
//     UNAVAILABLE, DATA_LOSS);
//   - the CORS verdict: [AttrCORSOrigin], [AttrCORSAllowed] and, when not
//     allowed, [AttrCORSReason].
//
// The span's parent is the span already in the request's context (an
// otelhttp middleware in front, say), else the trace context the
// propagator reads from the request ([WithTracePropagator]; W3C
// traceparent, tracestate and baggage by default). The handler runs with
// the span in its request's context, so an otelconnect interceptor on the
// connect-go handler makes its span a child of this one.
//
// Requests the policy refuses get a span too, ended at once: a refused
// preflight (named by the procedure, or "OPTIONS" for a path that names
// none; [AttrCORSPreflight] true and no rpc.system), and an actual request
// refused with PERMISSION_DENIED (strict mode, browser-barred procedures;
// named "POST" or "GET" for a path that names no procedure). Granted
// preflights, which carry no trace context and which browsers cache, and
// requests to paths outside the table that pass to the handler untouched
// get none.
//
// Default: no spans, at no cost per request. A nil tp is
// otel.GetTracerProvider() at the time of [New].
func WithTracing(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) {
		c.tracing = true
		c.tracerProvider = tp
	})
}

// WithTracePropagator sets the propagator that reads the trace context of
// requests for the spans of [WithTracing]; it does nothing without
// WithTracing. Default (and nil): W3C Trace Context and W3C Baggage, the
// headers OpenTelemetry web instrumentation sends, as the gateway's
// default. Pass otel.GetTextMapPropagator() to use the global one.
func WithTracePropagator(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.propagator = p })
}

// tracer is a policy's tracing, nil when off.
type tracer struct {
	t    trace.Tracer
	prop propagation.TextMapPropagator
}

func newTracer(c *config) *tracer {
	if !c.tracing {
		return nil
	}
	tp, prop := c.tracerProvider, c.propagator
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if prop == nil {
		prop = rpctrace.DefaultPropagator()
	}
	return &tracer{t: tp.Tracer(tracerName), prop: prop}
}

// routeTrace is what a route's spans share, built once per route.
type routeTrace struct {
	name  string // the procedure without its leading '/'
	attrs []attribute.KeyValue
}

func newRouteTrace(path string) *routeTrace {
	name := strings.TrimPrefix(path, "/")
	service, method, _ := strings.Cut(name, "/")
	return &routeTrace{name: name, attrs: []attribute.KeyValue{
		attribute.String("rpc.service", service),
		attribute.String("rpc.method", method),
	}}
}

// start starts a server span named name for r, with the attributes of rt
// (nil: the path names no procedure), system (""; not an RPC), the client's
// address and the CORS verdict.
func (tr *tracer) start(r *http.Request, name, system string, rt *route, reason Reason, extra ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx := r.Context()
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = tr.prop.Extract(ctx, propagation.HeaderCarrier(r.Header))
	}
	attrs := make([]attribute.KeyValue, 0, 10)
	if system != "" {
		attrs = append(attrs, attribute.String("rpc.system", system))
	}
	if rt != nil {
		attrs = append(attrs, rt.trace.attrs...)
	} else {
		attrs = append(attrs, attribute.String("url.path", r.URL.Path))
	}
	attrs = append(attrs, rpctrace.PeerAttributes(r.RemoteAddr)...)
	if origin := r.Header[hOrigin]; len(origin) > 0 {
		attrs = append(attrs, AttrCORSOrigin.String(origin[0]), AttrCORSAllowed.Bool(reason == ReasonOK))
		if reason != ReasonOK {
			attrs = append(attrs, AttrCORSReason.String(reason.String()))
		}
	}
	attrs = append(attrs, extra...)
	return tr.t.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
}

// spanName is the name of a span of rt, or of a request to a path that
// names no procedure: its method.
func spanName(rt *route, r *http.Request) string {
	if rt != nil {
		return rt.trace.name
	}
	return r.Method
}

// traceRefusal records an actual request refused with st.
func (tr *tracer) traceRefusal(r *http.Request, class wire.Class, rt *route, reason Reason, st *wire.Status) {
	system := rpctrace.System(class.Protocol)
	_, span := tr.start(r, spanName(rt, r), system, rt, reason)
	rpctrace.End(span, system, st.Code, st.Message)
}

// tracePreflight records a refused preflight.
func (tr *tracer) tracePreflight(r *http.Request, rt *route, reason Reason) {
	_, span := tr.start(r, spanName(rt, r), "", rt, reason, AttrCORSPreflight.Bool(true))
	span.End()
}

// serveTraced runs next for r within a span of rt, cw writing the
// response; the span ends with the status the response carries, or
// UNKNOWN when next panics.
func (h *handler) serveTraced(cw *corsWriter, r *http.Request, rt *route, reason Reason) {
	class := wire.Classify(r)
	system := rpctrace.System(class.Protocol)
	ctx, span := h.p.tracer.start(r, rt.trace.name, system, rt, reason)
	tw := &traceWriter{ResponseWriter: cw.ResponseWriter}
	tw.rec.Reset(class)
	cw.ResponseWriter = tw
	done := false
	defer func() {
		if !done {
			rpctrace.End(span, system, connect.CodeUnknown, "the handler panicked")
		}
	}()
	h.next.ServeHTTP(cw, r.WithContext(ctx))
	done = true
	st := tw.rec.Status(tw.Header())
	rpctrace.End(span, system, st.Code, st.Message)
}

// traceWriter shows a [wire.Recorder] what the handler writes, below the
// [corsWriter]. It keeps Flush and Unwrap, so [http.ResponseController]
// works through it.
type traceWriter struct {
	http.ResponseWriter
	rec wire.Recorder
}

// WriteHeader records the status, then writes it.
func (tw *traceWriter) WriteHeader(code int) {
	tw.rec.WriteHeader(code)
	tw.ResponseWriter.WriteHeader(code)
}

// Write writes body bytes and records those written.
func (tw *traceWriter) Write(b []byte) (int, error) {
	n, err := tw.ResponseWriter.Write(b)
	tw.rec.Write(b[:n])
	return n, err
}

// Flush sends buffered data to the client; a no-op when the underlying
// writer cannot flush.
func (tw *traceWriter) Flush() {
	_ = tw.FlushError()
}

// FlushError is Flush that reports the error, as [http.ResponseController]
// prefers.
func (tw *traceWriter) FlushError() error {
	return http.NewResponseController(tw.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer, for [http.ResponseController].
func (tw *traceWriter) Unwrap() http.ResponseWriter {
	return tw.ResponseWriter
}
