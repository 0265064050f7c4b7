package gateway_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/greetsvc"
	"github.com/corsgate/corsgate/internal/testutil"
)

// serveGRPC serves g.GRPCServer(opts...) on a loopback port until the test
// ends and returns a grpc-go client connection to it.
func serveGRPC(tb testing.TB, g *gateway.Gateway, opts ...grpc.ServerOption) *grpc.ClientConn {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := g.GRPCServer(opts...)
	go func() { _ = s.Serve(lis) }()
	tb.Cleanup(s.Stop)
	return dialGRPC(tb, lis.Addr().String())
}

func dialGRPC(tb testing.TB, addr string) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

// grpcGateway is a gateway in front of a fresh greetd whose calls rec
// records, with its gRPC listener's client connection.
func grpcGateway(tb testing.TB, rec *recorder, opts ...gatewayOption) (*gateway.Gateway, greetv1.GreetServiceClient) {
	tb.Helper()
	g, _ := startGateway(tb, startBackend(tb, rec), opts...)
	waitReady(tb, g)
	return g, greetv1.NewGreetServiceClient(serveGRPC(tb, g))
}

func callCtx(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// TestGRPCServerUnary calls Greet through the gRPC listener: the answer,
// its header and trailer metadata come back, and the client's metadata,
// binary values included, reaches the backend as the client sent it.
func TestGRPCServerUnary(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	_, client := grpcGateway(t, rec)
	raw := string([]byte{0, 1, 0xfe, 0xff, '='})
	ctx := metadata.AppendToOutgoingContext(callCtx(t), "x-request-id", "r-1", "x-blob-bin", raw, "x-twice", "a", "x-twice", "b")
	var header, trailer metadata.MD
	res, err := client.Greet(ctx, &greetv1.GreetRequest{Name: "grpc"}, grpc.Header(&header), grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	if res.GetGreeting() != "Hello, grpc!" {
		t.Errorf("greeting %q", res.GetGreeting())
	}
	if got := header.Get(greetsvc.HeaderVersion); len(got) != 1 || got[0] != greetsvc.Version {
		t.Errorf("header %s = %q, want %q; header %v", greetsvc.HeaderVersion, got, greetsvc.Version, header)
	}
	if got := trailer.Get(greetsvc.TrailerName); len(got) != 1 || got[0] != greetsvc.TrailerValue {
		t.Errorf("trailer %s = %q, want %q; trailer %v", greetsvc.TrailerName, got, greetsvc.TrailerValue, trailer)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.calls) != 1 {
		t.Fatalf("backend saw %d calls, want 1", len(rec.calls))
	}
	h := rec.calls[0].Header
	if got := h.Get("X-Request-Id"); got != "r-1" {
		t.Errorf("backend's x-request-id %q, want r-1", got)
	}
	if got := h.Get("X-Blob-Bin"); got != raw {
		t.Errorf("backend's x-blob-bin %q, want the client's bytes %q", got, raw)
	}
	if got := h.Values("X-Twice"); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("backend's x-twice %q, want [a b]", got)
	}
	if got := h.Get("User-Agent"); !strings.Contains(got, "grpc-go/") {
		t.Errorf("backend's user-agent %q, want the client's", got)
	}
}

// TestGRPCServerErrorDetails checks that a backend error's code, message
// and details (grpc-status-details-bin) reach the client.
func TestGRPCServerErrorDetails(t *testing.T) {
	t.Parallel()
	_, client := grpcGateway(t, nil)
	_, err := client.Greet(callCtx(t), &greetv1.GreetRequest{})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || st.Message() != "name is required" {
		t.Fatalf("error %v, want INVALID_ARGUMENT: name is required", err)
	}
	details := st.Details()
	if len(details) != 1 {
		t.Fatalf("details %v, want one GreetErrorDetail", details)
	}
	d, ok := details[0].(*greetv1.GreetErrorDetail)
	if !ok || d.GetField() != "name" {
		t.Errorf("detail %#v, want a GreetErrorDetail for field name", details[0])
	}
}

// TestGRPCServerStreams runs the three streaming kinds through the gRPC
// listener, bidi in lockstep: each answer arrives before the next message
// is sent.
func TestGRPCServerStreams(t *testing.T) {
	t.Parallel()
	_, client := grpcGateway(t, nil)
	t.Run("server", func(t *testing.T) {
		t.Parallel()
		stream, err := client.GreetStream(callCtx(t), &greetv1.GreetStreamRequest{Name: "s", Count: 50})
		if err != nil {
			t.Fatal(err)
		}
		for i := int32(1); ; i++ {
			msg, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				if i != 51 {
					t.Errorf("stream ended after %d messages, want 50", i-1)
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if msg.GetIndex() != i || msg.GetGreeting() != "Hello, s!" {
				t.Fatalf("message %d: %v", i, msg)
			}
		}
	})
	t.Run("client", func(t *testing.T) {
		t.Parallel()
		stream, err := client.GreetMany(callCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"a", "b", strings.Repeat("c", 100<<10)} {
			if err := stream.Send(&greetv1.GreetManyRequest{Name: name}); err != nil {
				t.Fatal(err)
			}
		}
		res, err := stream.CloseAndRecv()
		if err != nil {
			t.Fatal(err)
		}
		if res.GetCount() != 3 || !strings.HasPrefix(res.GetGreeting(), "Hello, a and b and ccc") {
			t.Errorf("answer %d %.40q", res.GetCount(), res.GetGreeting())
		}
	})
	t.Run("bidi", func(t *testing.T) {
		t.Parallel()
		stream, err := client.Chat(callCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{"one", "two", "three"} {
			if err := stream.Send(&greetv1.ChatRequest{Text: text}); err != nil {
				t.Fatal(err)
			}
			res, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if res.GetText() != "you said: "+text {
				t.Errorf("answer %q to %q", res.GetText(), text)
			}
		}
		if err := stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("after CloseSend: %v, want io.EOF", err)
		}
	})
}

// TestGRPCServerGzip sends gzip messages and asks for gzip answers: the
// gateway decompresses, checks and forwards them.
func TestGRPCServerGzip(t *testing.T) {
	t.Parallel()
	_, client := grpcGateway(t, nil, func(c *gateway.Config) { c.MaxMessageSize = 4096 })
	ctx := callCtx(t)
	res, err := client.Greet(ctx, &greetv1.GreetRequest{Name: strings.Repeat("g", 3000)}, grpc.UseCompressor(gzip.Name))
	if err != nil || res.GetGreeting() != "Hello, "+strings.Repeat("g", 3000)+"!" {
		t.Fatalf("Greet gzip: %v", err)
	}
	// 8000 bytes that compress to little: the limit is the decompressed size.
	_, err = client.Greet(ctx, &greetv1.GreetRequest{Name: strings.Repeat("g", 8000)}, grpc.UseCompressor(gzip.Name))
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("8000 bytes gzip over a limit of 4096: %v, want RESOURCE_EXHAUSTED", err)
	}
}

// TestGRPCServerUnknownProcedure checks that procedures outside the
// descriptors are refused with UNIMPLEMENTED, as the HTTP listener refuses
// them, and counted as unknown.
func TestGRPCServerUnknownProcedure(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	metrics, err := gateway.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := startGateway(t, startBackend(t, nil), func(c *gateway.Config) { c.Metrics = metrics })
	waitReady(t, g)
	conn := serveGRPC(t, g)
	for _, method := range []string{"/greet.v1.GreetService/Nope", "/nope.v1.Nope/Greet"} {
		err := conn.Invoke(callCtx(t), method, &greetv1.GreetRequest{Name: "x"}, &greetv1.GreetResponse{})
		if status.Code(err) != codes.Unimplemented || !strings.Contains(status.Convert(err).Message(), method) {
			t.Errorf("%s: %v, want UNIMPLEMENTED naming it", method, err)
		}
	}
	if _, err := greetv1.NewGreetServiceClient(conn).Greet(callCtx(t), &greetv1.GreetRequest{Name: "m"}); err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, reg, "corsgate_requests_total", map[string]string{"procedure": "unknown", "protocol": "grpc", "code": "unimplemented", "backend": gateway.NoBackend}); got != 2 {
		t.Errorf("unknown procedures counted %v times, want 2", got)
	}
	ok := map[string]string{"procedure": "/greet.v1.GreetService/Greet", "protocol": "grpc", "code": "ok", "backend": gateway.DefaultBackendName}
	if got := metricValue(t, reg, "corsgate_requests_total", ok); got != 1 {
		t.Errorf("Greet counted %v times, want 1", got)
	}
	if got := metricValue(t, reg, "corsgate_request_duration_seconds", ok); got != 1 {
		t.Errorf("Greet latency observed %v times, want 1", got)
	}
}

// TestGRPCServerRouted sends each service to its backend with a routed
// config, and refuses reflection, which is not routed with two backends.
func TestGRPCServerRouted(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	g, _ := startRouted(t, routedConfig(t, startBackend(t, rec), testutil.StartTestService(t)))
	waitReady(t, g)
	conn := serveGRPC(t, g)
	ctx := callCtx(t)
	res, err := testgrpc.NewTestServiceClient(conn).UnaryCall(ctx, &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("echo")}})
	if err != nil || string(res.GetPayload().GetBody()) != "echo" {
		t.Fatalf("UnaryCall on the testing backend: %v, %v", res, err)
	}
	if _, err := greetv1.NewGreetServiceClient(conn).Greet(ctx, &greetv1.GreetRequest{Name: "r"}); err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	calls := len(rec.calls)
	rec.mu.Unlock()
	if calls != 1 {
		t.Errorf("the greet backend saw %d calls, want 1 (Greet only)", calls)
	}
	err = conn.Invoke(ctx, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", &greetv1.GreetRequest{}, &greetv1.GreetResponse{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("reflection with two backends: %v, want UNIMPLEMENTED", err)
	}
}

// TestGRPCServerHealth checks that grpc.health.v1.Health on the gRPC
// listener is the gateway's, as on the HTTP listener: the whole server and
// a routed service are SERVING, an unknown service is NOT_FOUND.
func TestGRPCServerHealth(t *testing.T) {
	t.Parallel()
	g, _ := startGateway(t, startBackend(t, nil))
	waitReady(t, g)
	hc := healthpb.NewHealthClient(serveGRPC(t, g))
	for _, service := range []string{"", "greet.v1.GreetService"} {
		res, err := hc.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: service})
		if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("Check(%q): %v, %v; want SERVING", service, res, err)
		}
	}
	if _, err := hc.Check(callCtx(t), &healthpb.HealthCheckRequest{Service: "nope.v1.Nope"}); status.Code(err) != codes.NotFound {
		t.Errorf("Check of an unknown service: %v, want NOT_FOUND", err)
	}
}

// TestGRPCServerTracing checks the span of a call through the gRPC
// listener: a child of the client's trace context, with the protocol
// grpc, injected into the backend call.
func TestGRPCServerTracing(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	_, client := grpcGateway(t, rec, func(c *gateway.Config) { c.Tracing = &gateway.Tracing{TracerProvider: tp} })
	ctx := metadata.AppendToOutgoingContext(callCtx(t), "traceparent", browserTraceparent)
	if _, err := client.Greet(ctx, &greetv1.GreetRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("Greet with no name: %v", err)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.Name != "greet.v1.GreetService/Greet" || s.Parent.SpanID().String() != browserSpanID || s.SpanContext.TraceID().String() != browserTraceID {
		t.Errorf("span %q, parent %s in trace %s; want the client's", s.Name, s.Parent.SpanID(), s.SpanContext.TraceID())
	}
	want := map[attribute.Key]attribute.Value{
		"rpc.system":                attribute.StringValue("grpc"),
		"rpc.grpc.status_code":      attribute.Int64Value(int64(codes.InvalidArgument)),
		gateway.AttrProtocol:        attribute.StringValue("grpc"),
		gateway.AttrBackend:         attribute.StringValue(gateway.DefaultBackendName),
		attribute.Key("rpc.method"): attribute.StringValue("Greet"),
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
	rec.mu.Lock()
	defer rec.mu.Unlock()
	wantTP := "00-" + browserTraceID + "-" + s.SpanContext.SpanID().String() + "-01"
	if len(rec.calls) != 1 || rec.calls[0].Header.Get("Traceparent") != wantTP {
		t.Errorf("backend calls %v, want one with traceparent %s", rec.calls, wantTP)
	}
}

// TestGRPCServerReflection lists the backend's services through the gRPC
// listener with grpc-go's reflection client, as grpcurl does: server
// reflection of the one backend is routed, a bidi stream.
func TestGRPCServerReflection(t *testing.T) {
	t.Parallel()
	g, _ := startGateway(t, startBackend(t, nil))
	waitReady(t, g)
	stream, err := reflectionpb.NewServerReflectionClient(serveGRPC(t, g)).ServerReflectionInfo(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	res, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range res.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !slices.Contains(names, "greet.v1.GreetService") {
		t.Errorf("services %q, want greet.v1.GreetService among them", names)
	}
	_ = stream.CloseSend()
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("after CloseSend: %v, want io.EOF", err)
	}
}
