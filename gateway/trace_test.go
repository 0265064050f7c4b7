package gateway_test

import (
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// browserTraceparent is what OpenTelemetry web sends: trace
// 0af7651916cd43dd8448eb211c80319c, the page's span b7ad6b7169203331,
// sampled.
const (
	browserTraceID     = "0af7651916cd43dd8448eb211c80319c"
	browserSpanID      = "b7ad6b7169203331"
	browserTraceparent = "00-" + browserTraceID + "-" + browserSpanID + "-01"
)

// postGreet sends a Connect unary JSON call of Greet from testOrigin with
// the browser's trace headers.
func postGreet(tb testing.TB, base string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, base+"/greet.v1.GreetService/Greet", strings.NewReader(`{"name":"trace"}`))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Traceparent", browserTraceparent)
	req.Header.Set("Tracestate", "vendor=page")
	resp, err := httpClient(tb, false).Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("Greet: HTTP %d %s", resp.StatusCode, body)
	}
}

func TestTracingSpanContinuesBrowserTrace(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	backend := startBackend(t, rec)
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	g, base := startGateway(t, backend, func(c *gateway.Config) {
		c.Tracing = &gateway.Tracing{TracerProvider: tp}
	})
	waitReady(t, g)
	postGreet(t, base)

	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1: %v", len(spans), spans)
	}
	s := spans[0]
	if s.Name != "greet.v1.GreetService/Greet" || s.SpanKind != trace.SpanKindServer {
		t.Errorf("span %q kind %v, want greet.v1.GreetService/Greet, server", s.Name, s.SpanKind)
	}
	if got := s.SpanContext.TraceID().String(); got != browserTraceID {
		t.Errorf("trace id %s, want the browser's %s", got, browserTraceID)
	}
	if got := s.Parent.SpanID().String(); got != browserSpanID || !s.Parent.IsRemote() {
		t.Errorf("parent span %s (remote %v), want the browser's %s", got, s.Parent.IsRemote(), browserSpanID)
	}
	if got := s.SpanContext.TraceState().String(); got != "vendor=page" {
		t.Errorf("tracestate %q, want vendor=page", got)
	}
	want := map[attribute.Key]attribute.Value{
		"rpc.system":            attribute.StringValue("connect_rpc"),
		"rpc.service":           attribute.StringValue("greet.v1.GreetService"),
		"rpc.method":            attribute.StringValue("Greet"),
		gateway.AttrProtocol:    attribute.StringValue("connect"),
		gateway.AttrBackend:     attribute.StringValue(gateway.DefaultBackendName),
		gateway.AttrRoute:       attribute.StringValue("backends." + gateway.DefaultBackendName),
		gateway.AttrCORSOrigin:  attribute.StringValue(testOrigin),
		gateway.AttrCORSAllowed: attribute.BoolValue(true),
	}
	got := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes {
		got[kv.Key] = kv.Value
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("attribute %s = %v, want %v", k, got[k].String(), v.String())
		}
	}
	if _, ok := got["rpc.connect_rpc.error_code"]; ok {
		t.Error("rpc.connect_rpc.error_code set on a successful call")
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.calls) != 1 {
		t.Fatalf("backend saw %d calls, want 1", len(rec.calls))
	}
	wantTP := "00-" + browserTraceID + "-" + s.SpanContext.SpanID().String() + "-01"
	if got := rec.calls[0].Header.Get("Traceparent"); got != wantTP {
		t.Errorf("backend's traceparent %q, want the gateway span's %q", got, wantTP)
	}
}

func TestTracingOffPassesTraceHeaders(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	backend := startBackend(t, rec)
	g, base := startGateway(t, backend)
	waitReady(t, g)
	postGreet(t, base)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.calls) != 1 {
		t.Fatalf("backend saw %d calls, want 1", len(rec.calls))
	}
	if got := rec.calls[0].Header.Get("Traceparent"); got != browserTraceparent {
		t.Errorf("backend's traceparent %q, want the browser's %q, untouched", got, browserTraceparent)
	}
}

// spansOf waits for the spans of trace id (the gateway ends a span after
// the call's last byte, which the client may read first).
func spansOf(tb testing.TB, exp *tracetest.InMemoryExporter, id string, n int) []tracetest.SpanStub {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var found []tracetest.SpanStub
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID().String() == id {
				found = append(found, s)
			}
		}
		if len(found) >= n || time.Now().After(deadline) {
			if len(found) != n {
				tb.Fatalf("%d spans in trace %s, want %d: %v", len(found), id, n, found)
			}
			return found
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestTracingWebSocket: a call carried by a WebSocket stream gets the span
// of a gRPC-Web call, marked as a WebSocket one, with the upgrade's CORS
// verdict and the status of its trailer frame; the trace context of the
// header message continues into the backend call.
func TestTracingWebSocket(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	_, url := startWSGateway(t, startBackend(t, rec), gateway.WebSocketConfig{}, func(c *gateway.Config) {
		c.Tracing = &gateway.Tracing{TracerProvider: tp}
	})
	tests := []struct {
		name      string
		traceID   string
		procedure string
		msg       proto.Message
		code      int64
	}{
		{name: "unary ok", traceID: "0af7651916cd43dd8448eb211c800001", procedure: "Greet",
			msg: &greetv1.GreetRequest{Name: "ws"}, code: 0},
		{name: "unary error", traceID: "0af7651916cd43dd8448eb211c800002", procedure: "Greet",
			msg: &greetv1.GreetRequest{}, code: int64(connect.CodeInvalidArgument)},
		{name: "server stream ok", traceID: "0af7651916cd43dd8448eb211c800003", procedure: "GreetStream",
			msg: &greetv1.GreetStreamRequest{Name: "ws", Count: 2}, code: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := wsCall(t, url, greetPath+tt.procedure, map[string]string{
				"traceparent": "00-" + tt.traceID + "-" + browserSpanID + "-01",
				"tracestate":  "vendor=page",
			}, tt.msg)
			if got := r.status(); got != strconv.FormatInt(tt.code, 10) {
				t.Fatalf("grpc-status %q %q, want %d", got, r.message(), tt.code)
			}
			s := spansOf(t, exp, tt.traceID, 1)[0]
			if want := "greet.v1.GreetService/" + tt.procedure; s.Name != want || s.SpanKind != trace.SpanKindServer {
				t.Errorf("span %q kind %v, want %q, server", s.Name, s.SpanKind, want)
			}
			if got := s.Parent.SpanID().String(); got != browserSpanID || !s.Parent.IsRemote() {
				t.Errorf("parent span %s (remote %v), want the browser's %s", got, s.Parent.IsRemote(), browserSpanID)
			}
			want := map[attribute.Key]attribute.Value{
				"rpc.system":               attribute.StringValue("grpc_web"),
				"rpc.service":              attribute.StringValue("greet.v1.GreetService"),
				"rpc.method":               attribute.StringValue(tt.procedure),
				"rpc.grpc_web.status_code": attribute.Int64Value(tt.code),
				gateway.AttrProtocol:       attribute.StringValue("grpc_web"),
				gateway.AttrWebSocket:      attribute.BoolValue(true),
				gateway.AttrCORSOrigin:     attribute.StringValue(testOrigin),
				gateway.AttrCORSAllowed:    attribute.BoolValue(true),
			}
			got := map[attribute.Key]attribute.Value{}
			for _, kv := range s.Attributes {
				got[kv.Key] = kv.Value
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("attribute %s = %q, want %q", k, got[k].String(), v.String())
				}
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			var backendTP []string
			for _, c := range rec.calls {
				if strings.Contains(c.Header.Get("Traceparent"), tt.traceID) {
					backendTP = append(backendTP, c.Header.Get("Traceparent"))
				}
			}
			wantTP := "00-" + tt.traceID + "-" + s.SpanContext.SpanID().String() + "-01"
			if len(backendTP) != 1 || backendTP[0] != wantTP {
				t.Errorf("backend's traceparent %q, want the gateway span's %q", backendTP, wantTP)
			}
		})
	}
}

// TestTracingSpanInContext: a span already in the request's context (an
// otelhttp middleware in front of the gateway, say) is the parent of the
// gateway's, not the browser's traceparent.
func TestTracingSpanInContext(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	g, err := gateway.New(gateway.Config{Backend: startBackend(t, nil), Tracing: &gateway.Tracing{TracerProvider: tp}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	waitReady(t, g)
	var outer atomic.Pointer[trace.SpanContext]
	base := serveHandler(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tp.Tracer("outer").Start(r.Context(), "outer")
		defer span.End()
		sc := span.SpanContext()
		outer.Store(&sc)
		g.ServeHTTP(w, r.WithContext(ctx))
	}))
	postGreet(t, base)
	spans := spansOf(t, exp, outer.Load().TraceID().String(), 2)
	for _, s := range spans {
		if s.Name == "greet.v1.GreetService/Greet" && s.Parent.SpanID() != outer.Load().SpanID() {
			t.Errorf("the gateway's span has parent %s, want the context's span %s", s.Parent.SpanID(), outer.Load().SpanID())
		}
	}
}
