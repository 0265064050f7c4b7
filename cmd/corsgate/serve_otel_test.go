package main

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/internal/cliflags"
	"github.com/corsgate/corsgate/internal/greetd"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// otlpReceiver is an in-process OTLP trace receiver: the collector's trace
// service over grpc-go, and its HTTP form (POST /v1/traces, protobuf).
type otlpReceiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
}

func (r *otlpReceiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.GetKey() == "service.name" {
				r.services = append(r.services, kv.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (r *otlpReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	var msg collectortrace.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(body, &msg)
	}
	if err != nil || req.URL.Path != "/v1/traces" {
		http.Error(w, "bad export", http.StatusBadRequest)
		return
	}
	resp, _ := r.Export(req.Context(), &msg)
	out, _ := proto.Marshal(resp)
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// waitSpan waits for the span named name.
func (r *otlpReceiver) waitSpan(t *testing.T, name string) (*tracepb.Span, string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for i, s := range r.spans {
			if s.GetName() == name {
				r.mu.Unlock()
				return s, r.services[min(i, len(r.services)-1)]
			}
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the receiver got no span %q", name)
	return nil, ""
}

// startOTLPReceiver serves a receiver on loopback, over grpc or HTTP, and
// returns it with its endpoint URL.
func startOTLPReceiver(t *testing.T, protocol string) (*otlpReceiver, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &otlpReceiver{}
	if protocol == "grpc" {
		s := grpc.NewServer()
		collectortrace.RegisterTraceServiceServer(s, r)
		go func() { _ = s.Serve(lis) }()
		t.Cleanup(s.Stop)
	} else {
		srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(func() { _ = srv.Close() })
	}
	return r, "http://" + lis.Addr().String()
}

// TestServeTracing runs corsgate serve with tracing configured by the
// OpenTelemetry environment variables, exporting to an in-process OTLP
// receiver: the gateway's span is a child of the browser's traceparent, and
// the backend gets a traceparent of the same trace, whose parent is the
// gateway's span.
func TestServeTracing(t *testing.T) {
	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		spanID  = "00f067aa0ba902b7"
	)
	for _, protocol := range []string{"grpc", "http/protobuf"} {
		t.Run(protocol, func(t *testing.T) {
			recv, endpoint := startOTLPReceiver(t, protocol)
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			t.Setenv("OTEL_SERVICE_NAME", "corsgate-test")
			t.Setenv("OTEL_TRACES_SAMPLER", "parentbased_always_on")
			t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "20")

			var mu sync.Mutex
			var calls []greetsvc.Call
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			backend := greetd.NewServer(&greetsvc.Greeter{Record: func(c greetsvc.Call) {
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, c)
			}})
			go func() { _ = backend.Serve(lis) }()
			t.Cleanup(backend.Stop)
			rs := startServe(t, "--backend", lis.Addr().String(), "--allow-origin", serveOrigin)

			// The preflight of an instrumented page.
			res := preflight(t, rs.url+"/greet.v1.GreetService/Greet", http.MethodPost, "content-type, traceparent, tracestate")
			_ = res.Body.Close()
			if res.StatusCode != http.StatusNoContent {
				t.Fatalf("preflight with traceparent: HTTP %d, want 204", res.StatusCode)
			}
			req, err := http.NewRequest(http.MethodPost, rs.url+"/greet.v1.GreetService/Greet", strings.NewReader(`{"name":"otel"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Traceparent", "00-"+traceID+"-"+spanID+"-01")
			res, err = serveClient(t, false).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Fatalf("Greet: HTTP %d", res.StatusCode)
			}

			span, service := recv.waitSpan(t, "greet.v1.GreetService/Greet")
			if got := hex.EncodeToString(span.GetTraceId()); got != traceID {
				t.Errorf("span's trace id %s, want the browser's %s", got, traceID)
			}
			if got := hex.EncodeToString(span.GetParentSpanId()); got != spanID {
				t.Errorf("span's parent %s, want the browser's span %s", got, spanID)
			}
			if span.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
				t.Errorf("span kind %v, want server", span.GetKind())
			}
			if service != "corsgate-test" {
				t.Errorf("service.name %q, want OTEL_SERVICE_NAME's corsgate-test", service)
			}
			attrs := map[string]string{}
			for _, kv := range span.GetAttributes() {
				attrs[kv.GetKey()] = kv.GetValue().GetStringValue()
			}
			if attrs["rpc.system"] != "connect_rpc" || attrs["rpc.service"] != "greet.v1.GreetService" || attrs["rpc.method"] != "Greet" {
				t.Errorf("rpc attributes %v", attrs)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(calls) != 1 {
				t.Fatalf("backend saw %d calls, want 1", len(calls))
			}
			want := "00-" + traceID + "-" + hex.EncodeToString(span.GetSpanId()) + "-01"
			if got := calls[0].Header.Get("Traceparent"); got != want {
				t.Errorf("backend's traceparent %q, want %q (the gateway's span, same trace)", got, want)
			}
		})
	}
}

// TestServeTracingEnvErrors checks that values the gateway cannot use are
// refused, naming the variable.
func TestServeTracingEnvErrors(t *testing.T) {
	for _, tt := range []struct{ key, value, want string }{
		{key: "OTEL_TRACES_EXPORTER", value: "zipkin", want: "OTEL_TRACES_EXPORTER"},
		{key: "OTEL_EXPORTER_OTLP_PROTOCOL", value: "http/json", want: "OTEL_EXPORTER_OTLP_PROTOCOL"},
		{key: "OTEL_PROPAGATORS", value: "b3", want: `OTEL_PROPAGATORS "b3": corsgate propagates tracecontext, baggage or none`},
		{key: "OTEL_PROPAGATORS", value: "tracecontext,jaeger", want: `not "jaeger"`},
	} {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
			t.Setenv(tt.key, tt.value)
			var stderr strings.Builder
			if code := run(context.Background(), []string{"serve", "--backend", "127.0.0.1:1"}, io.Discard, &stderr); code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr %q does not name %s", stderr.String(), tt.want)
			}
		})
	}
}

// TestPropagatorsFromEnv reads OTEL_PROPAGATORS into the propagator that
// serves the listed headers, and only those.
func TestPropagatorsFromEnv(t *testing.T) {
	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tt := range []struct {
		value   string
		fields  []string
		extract bool // the traceparent is read
	}{
		{value: "", fields: []string{"traceparent", "tracestate", "baggage"}, extract: true},
		{value: " tracecontext , baggage ", fields: []string{"traceparent", "tracestate", "baggage"}, extract: true},
		{value: "tracecontext", fields: []string{"traceparent", "tracestate"}, extract: true},
		{value: "baggage", fields: []string{"baggage"}, extract: false},
		{value: "none", fields: nil, extract: false},
		{value: "tracecontext,none", fields: nil, extract: false},
	} {
		t.Run(tt.value, func(t *testing.T) {
			t.Setenv("OTEL_PROPAGATORS", tt.value)
			prop, err := propagatorsFromEnv()
			if err != nil {
				t.Fatal(err)
			}
			// A composite propagator lists its fields in no fixed order.
			if got := prop.Fields(); !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(tt.fields))) {
				t.Errorf("fields %q, want %q", got, tt.fields)
			}
			h := http.Header{"Traceparent": {traceparent}}
			sc := trace.SpanContextFromContext(prop.Extract(context.Background(), propagation.HeaderCarrier(h)))
			if sc.IsValid() != tt.extract {
				t.Errorf("traceparent read: %v, want %v", sc.IsValid(), tt.extract)
			}
		})
	}
	t.Setenv("OTEL_PROPAGATORS", "xray")
	var uerr *cliflags.UsageError
	if _, err := propagatorsFromEnv(); !errors.As(err, &uerr) {
		t.Errorf("xray: error %v, want a usage error", err)
	}
}
