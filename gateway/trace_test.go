package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/corsgate/corsgate/gateway"
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
