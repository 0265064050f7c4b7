package interceptor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

const (
	pathGreetStream = "/greet.v1.GreetService/GreetStream"
	browserSpanID   = "b7ad6b7169203331"
	evilOrigin      = "https://evil.example.net"
)

// tracedGreeter is the greet service recording the span its handlers see
// in their context; GreetStream for "fail" sends one message, then fails
// with DATA_LOSS, so the status comes in a trailer frame or end-of-stream
// message after data.
type tracedGreeter struct {
	greetsvc.Connect
	mu   sync.Mutex
	seen map[trace.TraceID]trace.SpanContext
}

func (s *tracedGreeter) see(ctx context.Context) {
	sc := trace.SpanContextFromContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen[sc.TraceID()] = sc
}

func (s *tracedGreeter) seenBy(id trace.TraceID) trace.SpanContext {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[id]
}

func (s *tracedGreeter) Greet(ctx context.Context, req *connect.Request[greetv1.GreetRequest]) (*connect.Response[greetv1.GreetResponse], error) {
	s.see(ctx)
	return s.Connect.Greet(ctx, req)
}

func (s *tracedGreeter) GreetStream(ctx context.Context, req *connect.Request[greetv1.GreetStreamRequest], stream *connect.ServerStream[greetv1.GreetStreamResponse]) error {
	s.see(ctx)
	if req.Msg.GetName() != "fail" {
		return s.Connect.GreetStream(ctx, req, stream)
	}
	if err := stream.Send(&greetv1.GreetStreamResponse{Greeting: "one", Index: 1}); err != nil {
		return err
	}
	return connect.NewError(connect.CodeDataLoss, errors.New("lost the rest"))
}

// tracedServer is the greet service behind a policy with WithTracing and
// the given options, on 127.0.0.1 over HTTP/1.1 and unencrypted HTTP/2.
type tracedServer struct {
	URL string
	svc *tracedGreeter
	exp *tracetest.InMemoryExporter
}

func startTraced(tb testing.TB, opts ...Option) *tracedServer {
	tb.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	tb.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	p := mustNew(tb, append([]Option{WithAllowedOrigins(appOrigin), WithTracing(tp)}, opts...)...)
	svc := &tracedGreeter{Connect: greetsvc.NewConnect(nil), seen: map[trace.TraceID]trace.SpanContext{}}
	mux := http.NewServeMux()
	mux.Handle(p.Wrap(greetv1connect.NewGreetServiceHandler(svc)))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	tb.Cleanup(srv.Close)
	return &tracedServer{URL: srv.URL, svc: svc, exp: exp}
}

// traceCounter makes a distinct trace id per call, so that parallel tests
// find their span in a shared exporter.
var traceCounter atomic.Uint64

func newTraceID(tb testing.TB) trace.TraceID {
	tb.Helper()
	id, err := trace.TraceIDFromHex(fmt.Sprintf("0af7651916cd43dd%016x", traceCounter.Add(1)))
	if err != nil {
		tb.Fatal(err)
	}
	return id
}

// browserHeaders is a RoundTripper that sends Origin and traceparent, as a
// page instrumented by OpenTelemetry web does.
type browserHeaders struct {
	base        http.RoundTripper
	origin      string
	traceparent string
}

func (b browserHeaders) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Origin", b.origin)
	r.Header.Set("Traceparent", b.traceparent)
	r.Header.Set("Tracestate", "vendor=page")
	return b.base.RoundTrip(r)
}

func tracedClient(tb testing.TB, url, origin string, id trace.TraceID, pr protocol) greetv1connect.GreetServiceClient {
	tb.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	if pr.http2 {
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	tb.Cleanup(tr.CloseIdleConnections)
	rt := browserHeaders{base: tr, origin: origin, traceparent: "00-" + id.String() + "-" + browserSpanID + "-01"}
	return greetv1connect.NewGreetServiceClient(&http.Client{Transport: rt}, url, pr.opts...)
}

// waitSpan waits for the one span of trace id: the policy ends it after the
// handler returns, which may be after the client has its answer.
func waitSpan(tb testing.TB, exp *tracetest.InMemoryExporter, id trace.TraceID) tracetest.SpanStub {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var found []tracetest.SpanStub
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID() == id {
				found = append(found, s)
			}
		}
		if len(found) > 1 {
			tb.Fatalf("%d spans in trace %s, want 1: %v", len(found), id, found)
		}
		if len(found) == 1 {
			return found[0]
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no span in trace %s", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func attrMap(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := make(map[attribute.Key]attribute.Value, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

// checkAttrs compares the attributes of s with want; an invalid (zero)
// value in want means the key must be absent.
func checkAttrs(tb testing.TB, s tracetest.SpanStub, want map[attribute.Key]attribute.Value) {
	tb.Helper()
	got := attrMap(s.Attributes)
	for k, v := range want {
		g, ok := got[k]
		switch {
		case v.Type() == attribute.EMPTY && ok:
			tb.Errorf("attribute %s = %s, want none", k, g.String())
		case v.Type() != attribute.EMPTY && g != v:
			tb.Errorf("attribute %s = %q, want %q", k, g.String(), v.String())
		}
	}
}

var none attribute.Value

// TestTracingSpans: each protocol's OK and error calls, unary and
// streaming, through a real connect-go handler: one server span continuing
// the browser's trace, named and attributed as otelconnect does, with the
// status the response carried, and seen by the handler in its context.
func TestTracingSpans(t *testing.T) {
	t.Parallel()
	srv := startTraced(t)
	systems := map[string]string{"connect": "connect_rpc", "connect-get": "connect_rpc", "grpc-web": "grpc_web", "grpc": "grpc"}
	tests := []struct {
		name       string
		procedure  string
		call       func(context.Context, greetv1connect.GreetServiceClient) error
		code       connect.Code
		spanStatus codes.Code
	}{
		{name: "unary ok", procedure: "Greet", code: 0, spanStatus: codes.Unset,
			call: func(ctx context.Context, c greetv1connect.GreetServiceClient) error {
				_, err := c.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "Ada"}))
				return err
			}},
		{name: "unary client error", procedure: "Greet", code: connect.CodeInvalidArgument, spanStatus: codes.Unset,
			call: func(ctx context.Context, c greetv1connect.GreetServiceClient) error {
				_, err := c.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{}))
				return err
			}},
		{name: "stream ok", procedure: "GreetStream", code: 0, spanStatus: codes.Unset,
			call: func(ctx context.Context, c greetv1connect.GreetServiceClient) error {
				return drain(c.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "Ada", Count: 2})))
			}},
		{name: "stream server error after a message", procedure: "GreetStream", code: connect.CodeDataLoss, spanStatus: codes.Error,
			call: func(ctx context.Context, c greetv1connect.GreetServiceClient) error {
				return drain(c.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "fail"})))
			}},
	}
	for _, pr := range protocols {
		for _, tt := range tests {
			if pr.name == "connect-get" && tt.procedure != "Greet" {
				continue // GET is for unary calls
			}
			t.Run(pr.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				id := newTraceID(t)
				err := tt.call(t.Context(), tracedClient(t, srv.URL, appOrigin, id, pr))
				if got := connect.CodeOf(err); err != nil && got != tt.code || err == nil && tt.code != 0 {
					t.Fatalf("call error %v, want code %v", err, tt.code)
				}
				s := waitSpan(t, srv.exp, id)
				if want := "greet.v1.GreetService/" + tt.procedure; s.Name != want || s.SpanKind != trace.SpanKindServer {
					t.Errorf("span %q kind %v, want %q, server", s.Name, s.SpanKind, want)
				}
				if got := s.Parent.SpanID().String(); got != browserSpanID || !s.Parent.IsRemote() {
					t.Errorf("parent span %s (remote %v), want the browser's %s", got, s.Parent.IsRemote(), browserSpanID)
				}
				if got := s.SpanContext.TraceState().String(); got != "vendor=page" {
					t.Errorf("tracestate %q, want vendor=page", got)
				}
				if seen := srv.svc.seenBy(id); seen.SpanID() != s.SpanContext.SpanID() {
					t.Errorf("the handler saw span %s in its context, want the policy's %s", seen.SpanID(), s.SpanContext.SpanID())
				}
				system := systems[pr.name]
				want := map[attribute.Key]attribute.Value{
					"rpc.system":      attribute.StringValue(system),
					"rpc.service":     attribute.StringValue("greet.v1.GreetService"),
					"rpc.method":      attribute.StringValue(tt.procedure),
					"net.peer.name":   attribute.StringValue("127.0.0.1"),
					AttrCORSOrigin:    attribute.StringValue(appOrigin),
					AttrCORSAllowed:   attribute.BoolValue(true),
					AttrCORSReason:    none,
					AttrCORSPreflight: none,
				}
				switch system {
				case "connect_rpc":
					want["rpc.connect_rpc.error_code"] = none
					if tt.code != 0 {
						want["rpc.connect_rpc.error_code"] = attribute.StringValue(tt.code.String())
					}
				default:
					want[attribute.Key("rpc."+system+".status_code")] = attribute.Int64Value(int64(tt.code))
				}
				checkAttrs(t, s, want)
				if _, ok := attrMap(s.Attributes)["net.peer.port"]; !ok {
					t.Error("no net.peer.port")
				}
				if s.Status.Code != tt.spanStatus {
					t.Errorf("span status %v %q, want %v", s.Status.Code, s.Status.Description, tt.spanStatus)
				}
				if tt.spanStatus == codes.Error && s.Status.Description != "lost the rest" {
					t.Errorf("span status description %q, want the error's message", s.Status.Description)
				}
			})
		}
	}
}

func drain(s *connect.ServerStreamForClient[greetv1.GreetStreamResponse], err error) error {
	if err != nil {
		return err
	}
	defer s.Close()
	for s.Receive() {
	}
	return s.Err()
}

// TestTracingGRPCWebText: the status of a text-mode call is read from the
// base64 body the handler writes (through the policy's text translation).
func TestTracingGRPCWebText(t *testing.T) {
	t.Parallel()
	srv := startTraced(t)
	tests := []struct {
		name      string
		procedure string
		msg       []byte
		code      int64
	}{
		{name: "stream ok, trailer frame", procedure: pathGreetStream,
			msg: encodeFrame(t, &greetv1.GreetStreamRequest{Name: "Ada", Count: 2}), code: 0},
		{name: "stream error after a message", procedure: pathGreetStream,
			msg: encodeFrame(t, &greetv1.GreetStreamRequest{Name: "fail"}), code: int64(connect.CodeDataLoss)},
		{name: "unary error, trailers-only", procedure: pathGreet,
			msg: encodeFrame(t, &greetv1.GreetRequest{}), code: int64(connect.CodeInvalidArgument)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := newTraceID(t)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+tt.procedure, strings.NewReader(b64(tt.msg)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/grpc-web-text")
			req.Header.Set("X-Grpc-Web", "1")
			req.Header.Set("Origin", appOrigin)
			req.Header.Set("Traceparent", "00-"+id.String()+"-"+browserSpanID+"-01")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			s := waitSpan(t, srv.exp, id)
			checkAttrs(t, s, map[attribute.Key]attribute.Value{
				"rpc.system":               attribute.StringValue("grpc_web"),
				"rpc.grpc_web.status_code": attribute.Int64Value(tt.code),
			})
		})
	}
}

// TestTracingRefusals: refused preflights and requests the policy refuses
// get a span with the verdict; granted preflights get none, and a request
// from an origin the policy does not allow still runs (not strict), with
// the verdict on its span.
func TestTracingRefusals(t *testing.T) {
	t.Parallel()
	preflight := func(path, origin string) *http.Request {
		r := httptest.NewRequest(http.MethodOptions, path, nil)
		r.Header.Set("Origin", origin)
		r.Header.Set(hACRM, http.MethodPost)
		r.Header.Set(hACRH, "content-type")
		return r
	}
	tests := []struct {
		name   string
		strict bool
		r      func(id trace.TraceID) *http.Request
		status int
		span   string // "": no span
		want   map[attribute.Key]attribute.Value
	}{
		{name: "preflight granted", r: func(trace.TraceID) *http.Request { return preflight(pathGreet, appOrigin) },
			status: http.StatusNoContent},
		{name: "preflight origin refused", r: func(trace.TraceID) *http.Request { return preflight(pathGreet, evilOrigin) },
			status: http.StatusForbidden, span: "greet.v1.GreetService/Greet",
			want: map[attribute.Key]attribute.Value{
				AttrCORSPreflight: attribute.BoolValue(true), AttrCORSAllowed: attribute.BoolValue(false),
				AttrCORSReason: attribute.StringValue("origin"), AttrCORSOrigin: attribute.StringValue(evilOrigin),
				"rpc.method": attribute.StringValue("Greet"), "rpc.system": none,
			}},
		{name: "preflight unknown procedure", r: func(trace.TraceID) *http.Request { return preflight("/a.B/C", appOrigin) },
			status: http.StatusForbidden, span: "OPTIONS",
			want: map[attribute.Key]attribute.Value{
				AttrCORSReason: attribute.StringValue("procedure"), "url.path": attribute.StringValue("/a.B/C"),
				"rpc.method": none,
			}},
		{name: "strict refusal", strict: true, r: func(id trace.TraceID) *http.Request { return greetRequest(id, evilOrigin) },
			status: http.StatusForbidden, span: "greet.v1.GreetService/Greet",
			want: map[attribute.Key]attribute.Value{
				AttrCORSAllowed: attribute.BoolValue(false), AttrCORSReason: attribute.StringValue("origin"),
				"rpc.system": attribute.StringValue("connect_rpc"), "rpc.connect_rpc.error_code": attribute.StringValue("permission_denied"),
				AttrCORSPreflight: none,
			}},
		{name: "origin not allowed, not strict", r: func(id trace.TraceID) *http.Request { return greetRequest(id, evilOrigin) },
			status: http.StatusOK, span: "greet.v1.GreetService/Greet",
			want: map[attribute.Key]attribute.Value{
				AttrCORSAllowed: attribute.BoolValue(false), AttrCORSReason: attribute.StringValue("origin"),
				"rpc.connect_rpc.error_code": none,
			}},
		{name: "same origin, no Origin", r: func(id trace.TraceID) *http.Request { return greetRequest(id, "") },
			status: http.StatusOK, span: "greet.v1.GreetService/Greet",
			want: map[attribute.Key]attribute.Value{AttrCORSAllowed: none, AttrCORSOrigin: none, AttrCORSReason: none}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			p := mustNew(t, WithAllowedOrigins(appOrigin), WithStrict(tt.strict), WithTracing(tp))
			svc := &tracedGreeter{Connect: greetsvc.NewConnect(nil), seen: map[trace.TraceID]trace.SpanContext{}}
			h, err := p.WrapService(greetv1.File_greet_v1_greet_proto.Services().Get(0), handlerOf(svc))
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.r(newTraceID(t)))
			if w.Code != tt.status {
				t.Fatalf("HTTP %d %s, want %d", w.Code, w.Body, tt.status)
			}
			spans := exp.GetSpans()
			if tt.span == "" {
				if len(spans) != 0 {
					t.Fatalf("%d spans, want none: %v", len(spans), spans)
				}
				return
			}
			if len(spans) != 1 {
				t.Fatalf("%d spans, want 1: %v", len(spans), spans)
			}
			if spans[0].Name != tt.span || spans[0].SpanKind != trace.SpanKindServer {
				t.Errorf("span %q kind %v, want %q, server", spans[0].Name, spans[0].SpanKind, tt.span)
			}
			checkAttrs(t, spans[0], tt.want)
		})
	}
}

func handlerOf(svc greetv1connect.GreetServiceHandler) http.Handler {
	_, h := greetv1connect.NewGreetServiceHandler(svc)
	return h
}

// greetRequest is a Connect unary JSON call of Greet with a traceparent of
// trace id, from origin ("": none).
func greetRequest(id trace.TraceID, origin string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, pathGreet, strings.NewReader(`{"name":"Ada"}`))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Traceparent", "00-"+id.String()+"-"+browserSpanID+"-01")
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	return r
}

// TestTracingParentInContext: a span already in the request's context (an
// otelhttp middleware in front, say) is the parent, not the traceparent.
func TestTracingParentInContext(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	p := mustNew(t, WithAllowedOrigins(appOrigin), WithTracing(tp))
	h := p.WrapTable(greetTable(t), handlerOf(greetsvc.NewConnect(nil)))
	outerCtx, outer := tp.Tracer("outer").Start(context.Background(), "outer")
	r := greetRequest(newTraceID(t), appOrigin).WithContext(outerCtx)
	h.ServeHTTP(httptest.NewRecorder(), r)
	outer.End()
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans, want 2", len(spans))
	}
	if got, want := spans[0].Parent.SpanID(), outer.SpanContext().SpanID(); got != want {
		t.Errorf("parent %s, want the context's span %s", got, want)
	}
}
