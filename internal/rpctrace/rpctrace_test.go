package rpctrace

import (
	"testing"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/corsgate/corsgate/internal/wire"
)

func TestSystem(t *testing.T) {
	t.Parallel()
	want := map[wire.Protocol]string{
		wire.ProtocolGRPC: "grpc", wire.ProtocolGRPCWeb: "grpc_web", wire.ProtocolGRPCWebText: "grpc_web",
		wire.ProtocolConnect: "connect_rpc", wire.ProtocolConnectGet: "connect_rpc",
		wire.ProtocolConnectStream: "connect_rpc", wire.ProtocolUnknown: "connect_rpc",
	}
	for p, s := range want {
		if got := System(p); got != s {
			t.Errorf("System(%v) = %q, want %q", p, got, s)
		}
	}
}

func TestPeerAttributes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		want []attribute.KeyValue
	}{
		{addr: "127.0.0.1:5000", want: []attribute.KeyValue{attribute.String("net.peer.name", "127.0.0.1"), attribute.Int("net.peer.port", 5000)}},
		{addr: "[::1]:443", want: []attribute.KeyValue{attribute.String("net.peer.name", "::1"), attribute.Int("net.peer.port", 443)}},
		{addr: "pipe", want: []attribute.KeyValue{attribute.String("net.peer.name", "pipe")}},
		{addr: ""},
	}
	for _, tt := range tests {
		got := PeerAttributes(tt.addr)
		if len(got) != len(tt.want) {
			t.Errorf("PeerAttributes(%q) = %v, want %v", tt.addr, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("PeerAttributes(%q)[%d] = %v, want %v", tt.addr, i, got[i], tt.want[i])
			}
		}
	}
}

// TestEnd: the status attribute of each system, and Error only for the
// codes that say the server failed.
func TestEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		system string
		code   connect.Code
		key    attribute.Key
		value  attribute.Value // zero: the key is absent
		status codes.Code
	}{
		{system: SystemGRPC, code: 0, key: "rpc.grpc.status_code", value: attribute.Int64Value(0), status: codes.Unset},
		{system: SystemGRPCWeb, code: connect.CodeNotFound, key: "rpc.grpc_web.status_code", value: attribute.Int64Value(5), status: codes.Unset},
		{system: SystemGRPC, code: connect.CodeInternal, key: "rpc.grpc.status_code", value: attribute.Int64Value(13), status: codes.Error},
		{system: SystemConnect, code: 0, key: "rpc.connect_rpc.error_code", status: codes.Unset},
		{system: SystemConnect, code: connect.CodeUnavailable, key: "rpc.connect_rpc.error_code", value: attribute.StringValue("unavailable"), status: codes.Error},
		{system: SystemConnect, code: connect.CodePermissionDenied, key: "rpc.connect_rpc.error_code", value: attribute.StringValue("permission_denied"), status: codes.Unset},
	}
	for _, tt := range tests {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		_, span := tp.Tracer("test").Start(t.Context(), "call")
		End(span, tt.system, tt.code, "why")
		spans := exp.GetSpans()
		if len(spans) != 1 {
			t.Fatalf("%s %v: %d spans ended, want 1", tt.system, tt.code, len(spans))
		}
		var got attribute.Value
		for _, kv := range spans[0].Attributes {
			if kv.Key == tt.key {
				got = kv.Value
			}
		}
		if got != tt.value {
			t.Errorf("%s %v: %s = %v, want %v", tt.system, tt.code, tt.key, got, tt.value)
		}
		if spans[0].Status.Code != tt.status {
			t.Errorf("%s %v: span status %v, want %v", tt.system, tt.code, spans[0].Status.Code, tt.status)
		}
	}
}
