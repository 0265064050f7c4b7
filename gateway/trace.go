package gateway

import (
	"net/http"
	"strings"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
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
	// AttrCORSOrigin is the request's Origin, absent without one.
	AttrCORSOrigin = attribute.Key("corsgate.cors.origin")
	// AttrCORSAllowed tells whether the CORS policy gave the request's
	// Origin the headers that let its browser read the response; absent
	// without an Origin. Requests the policy refuses before the call
	// (strict mode, browser-barred procedures, preflights) get no span.
	AttrCORSAllowed = attribute.Key("corsgate.cors.allowed")
)

// Tracing configures the gateway's OpenTelemetry spans: one server span per
// call, named by the procedure ("greet.v1.GreetService/Greet"), with the
// RPC semantic-convention attributes as connectrpc.com/otelconnect sets them
// (rpc.system "grpc", "grpc_web" or "connect_rpc"; rpc.service; rpc.method;
// rpc.grpc.status_code, rpc.grpc_web.status_code or, on errors,
// rpc.connect_rpc.error_code), and [AttrProtocol], [AttrRoute],
// [AttrBackend], [AttrCORSOrigin] and [AttrCORSAllowed]. The span's parent
// is extracted from the client's request (W3C traceparent, tracestate and
// baggage by default) and the span is injected into the backend call, so
// the browser's trace continues through the gateway into the service.
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
		prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
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

// rpcSystem is the rpc.system of a protocol label, as otelconnect names it.
func rpcSystem(protocol string) string {
	switch protocol {
	case "grpc_web", "grpc_web_text":
		return "grpc_web"
	case "connect":
		return "connect_rpc"
	}
	return "grpc"
}

// startSpan starts the call's server span, a child of the client's trace
// context, and makes c.ctx carry it. The CORS policy ran already: an
// allowed Origin has its Access-Control-Allow-Origin set.
func (c *call) startSpan() {
	tr := c.g.tracer
	rt := c.route.trace
	ctx := tr.prop.Extract(c.ctx, propagation.HeaderCarrier(c.r.Header))
	protocol := c.proto.name()
	attrs := make([]attribute.KeyValue, 0, len(rt.attrs)+4)
	attrs = append(attrs, attribute.String("rpc.system", rpcSystem(protocol)))
	attrs = append(attrs, rt.attrs...)
	attrs = append(attrs, AttrProtocol.String(protocol))
	if origin := c.r.Header["Origin"]; len(origin) > 0 {
		_, allowed := c.w.Header()["Access-Control-Allow-Origin"]
		attrs = append(attrs, AttrCORSOrigin.String(origin[0]), AttrCORSAllowed.Bool(allowed))
	}
	c.ctx, c.span = tr.t.Start(ctx, rt.name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
}

// injectTrace writes the call's span into the backend request's headers,
// in place of the client's.
func (c *call) injectTrace(h map[string][]string) {
	c.g.tracer.prop.Inject(c.ctx, propagation.HeaderCarrier(h))
}

// endSpan records the call's final status and ends its span. The span
// status is Error for the codes that say the server failed (as the gRPC
// semantic conventions have it for servers); a client's mistake is not an
// error of the gateway's.
func (c *call) endSpan(st *rpcStatus) {
	span := c.span
	if span == nil {
		return
	}
	c.span = nil
	finishSpan(span, c.proto.name(), st)
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
	attrs = append(attrs, attribute.String("rpc.system", rpcSystem(grpcProtocol)))
	attrs = append(attrs, rt.attrs...)
	attrs = append(attrs, AttrProtocol.String(grpcProtocol))
	c.ctx, c.span = tr.t.Start(ctx, rt.name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
	tr.prop.Inject(c.ctx, propagation.HeaderCarrier(h))
}

// finishSpan records a call's final status on its span and ends it.
func finishSpan(span trace.Span, protocol string, st *rpcStatus) {
	code := connect.Code(0)
	if st != nil && st != okStatus {
		code = st.Code
	}
	switch system := rpcSystem(protocol); system {
	case "connect_rpc":
		if code != 0 {
			span.SetAttributes(attribute.String("rpc.connect_rpc.error_code", code.String()))
		}
	default:
		span.SetAttributes(attribute.Int64("rpc."+system+".status_code", int64(code)))
	}
	switch code {
	case connect.CodeUnknown, connect.CodeDeadlineExceeded, connect.CodeUnimplemented, connect.CodeInternal,
		connect.CodeUnavailable, connect.CodeDataLoss:
		span.SetStatus(codes.Error, st.Message)
	}
	span.End()
}
