package gateway

import (
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/rpctrace"
	"github.com/corsgate/corsgate/internal/wire"
)

// tracerName is the instrumentation scope of the gateway's spans.
const tracerName = "github.com/corsgate/corsgate/gateway"

// Attribute keys of the gateway's spans beyond the RPC semantic conventions.
const (
	// AttrProtocol is the protocol the client spoke: grpc_web,
	// grpc_web_text, connect or grpc (the protocol label of [Metrics]).
	AttrProtocol = attribute.Key("corsgate.protocol")
	// AttrRoute is the name of the route that served the call: "routes[i]"
	// of the config, or "backends.NAME" for a service no route claims.
	AttrRoute = attribute.Key("corsgate.route")
	// AttrBackend is the [Backend.Name] the call went to.
	AttrBackend = attribute.Key("corsgate.backend")
	// AttrCORSOrigin is the request's Origin, absent without one; the
	// upgrade request's for a WebSocket stream.
	AttrCORSOrigin = interceptor.AttrCORSOrigin
	// AttrCORSAllowed tells whether the CORS policy gave the request's
	// Origin the headers that let its browser read the response (for a
	// WebSocket stream: whether the upgrade guard let it open); absent
	// without an Origin. Requests the policy refuses before the call
	// (strict mode, browser-barred procedures, preflights, refused
	// upgrades) get no span.
	AttrCORSAllowed = interceptor.AttrCORSAllowed
	// AttrWebSocket is true on the span of a call carried by a WebSocket
	// stream (improbable-eng/grpc-web's transport); its protocol is
	// grpc_web.
	AttrWebSocket = attribute.Key("corsgate.websocket")
)

// Tracing configures the gateway's OpenTelemetry spans: one server span per
// call, named by the procedure ("greet.v1.GreetService/Greet"), with the
// RPC semantic-convention attributes as connectrpc.com/otelconnect sets them
// (rpc.system "grpc", "grpc_web" or "connect_rpc"; rpc.service; rpc.method;
// rpc.grpc.status_code, rpc.grpc_web.status_code or, on errors,
// rpc.connect_rpc.error_code), and [AttrProtocol], [AttrRoute],
// [AttrBackend], [AttrCORSOrigin] and [AttrCORSAllowed]. The span's parent
// is the span already in the request's context (an otelhttp middleware in
// front, or an [interceptor.WithTracing] policy), else the trace context
// extracted from the client's request (W3C traceparent, tracestate and
// baggage by default); the span is injected into the backend call, so the
// browser's trace continues through the gateway into the service. A
// call carried by a WebSocket stream gets the same span, with
// [AttrWebSocket]; its trace context comes from the stream's header
// message.
type Tracing struct {
	// TracerProvider makes the spans. Nil means otel.GetTracerProvider()
	// at the time of [New].
	TracerProvider trace.TracerProvider
	// Propagator reads the trace context from client requests and writes
	// it into backend requests. Nil means W3C Trace Context and W3C
	// Baggage.
	Propagator propagation.TextMapPropagator
}

// tracer is the gateway's tracing, precomputed; a nil *tracer traces
// nothing.
type tracer struct {
	t    trace.Tracer
	prop propagation.TextMapPropagator
}

// newTracer returns the tracer of cfg, nil when cfg is nil: then the
// gateway makes no span, and the client's trace headers reach the backend
// as any other metadata.
func newTracer(cfg *Tracing) *tracer {
	if cfg == nil {
		return nil
	}
	tp, prop := cfg.TracerProvider, cfg.Propagator
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
	name  string // the span name: the procedure without its leading '/'
	attrs []attribute.KeyValue
}

func newRouteTrace(path string, r *rule) *routeTrace {
	name := strings.TrimPrefix(path, "/")
	service, method, _ := strings.Cut(name, "/")
	return &routeTrace{name: name, attrs: []attribute.KeyValue{
		attribute.String("rpc.service", service),
		attribute.String("rpc.method", method),
		AttrRoute.String(r.name),
		AttrBackend.String(r.backend.name),
	}}
}

// startSpan starts the call's server span, a child of the span already in
// the request's context (an otelhttp middleware in front, say), else of the
// client's trace context, and makes c.ctx carry it. The CORS policy ran already: an
// allowed Origin has its Access-Control-Allow-Origin set.
func (c *call) startSpan() {
	tr := c.g.tracer
	rt := c.route.trace
	ctx := c.ctx
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = tr.prop.Extract(ctx, propagation.HeaderCarrier(c.r.Header))
	}
	protocol := c.proto.name()
	attrs := make([]attribute.KeyValue, 0, len(rt.attrs)+5)
	attrs = append(attrs, attribute.String("rpc.system", rpctrace.System(c.class.Protocol)))
	attrs = append(attrs, rt.attrs...)
	attrs = append(attrs, AttrProtocol.String(protocol))
	switch {
	case c.ws != nil:
		// The upgrade guard decided; the stream's writer sets no CORS header.
		attrs = append(attrs, AttrWebSocket.Bool(true))
		if v := c.ws.verdict; v.Origin != "" {
			attrs = append(attrs, AttrCORSOrigin.String(v.Origin), AttrCORSAllowed.Bool(v.Allowed))
		}
	default:
		if origin := c.r.Header["Origin"]; len(origin) > 0 {
			_, allowed := c.w.Header()["Access-Control-Allow-Origin"]
			attrs = append(attrs, AttrCORSOrigin.String(origin[0]), AttrCORSAllowed.Bool(allowed))
		}
	}
	c.ctx, c.span = tr.t.Start(ctx, rt.name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	if c.rec != nil {
		c.rec.trace = c.span.SpanContext().TraceID()
	}
}

// injectTrace writes the call's span into the backend request's headers,
// in place of the client's.
func (c *call) injectTrace(h map[string][]string) {
	c.g.tracer.prop.Inject(c.ctx, propagation.HeaderCarrier(h))
}

// endSpan records the call's final status and ends its span (see
// [rpctrace.End]: the span status is Error only for the codes that say the
// server failed).
func (c *call) endSpan(st *rpcStatus) {
	span := c.span
	if span == nil {
		return
	}
	c.span = nil
	finishSpan(span, rpctrace.System(c.class.Protocol), st)
}

// startSpan starts the span of a call through [Gateway.GRPCServer], as
// [call.startSpan] does, from the client's metadata in h, the backend
// request's headers; the span is then injected into h in place of the
// client's trace context.
func (c *grpcCall) startSpan(h http.Header) {
	tr := c.g.tracer
	rt := c.rt.trace
	ctx := tr.prop.Extract(c.ctx, propagation.HeaderCarrier(h))
	attrs := make([]attribute.KeyValue, 0, len(rt.attrs)+2)
	attrs = append(attrs, attribute.String("rpc.system", rpctrace.System(wire.ProtocolGRPC)))
	attrs = append(attrs, rt.attrs...)
	attrs = append(attrs, AttrProtocol.String(grpcProtocol))
	c.ctx, c.span = tr.t.Start(ctx, rt.name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	tr.prop.Inject(c.ctx, propagation.HeaderCarrier(h))
}

// finishSpan records a call's final status on its span and ends it (see
// [rpctrace.End]: the span status is Error only for the codes that say the
// server failed).
func finishSpan(span trace.Span, system string, st *rpcStatus) {
	code, msg := connect.Code(0), ""
	if st != nil && st != okStatus {
		code, msg = st.Code, st.Message
	}
	rpctrace.End(span, system, code, msg)
}
