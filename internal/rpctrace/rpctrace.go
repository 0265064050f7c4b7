// Package rpctrace is what the gateway's and the interceptor's
// OpenTelemetry server spans share, so that both modes describe a call the
// same way, as connectrpc.com/otelconnect does: the rpc.system of a
// protocol, the status code attribute and span status at the end, and the
// default propagator.
package rpctrace

import (
	"net"
	"strconv"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/corsgate/corsgate/internal/wire"
)

// The rpc.system values, as otelconnect names them.
const (
	SystemGRPC    = "grpc"
	SystemGRPCWeb = "grpc_web"
	SystemConnect = "connect_rpc"
)

// System returns the rpc.system of a request's protocol: gRPC-Web binary
// and text are "grpc_web", every Connect form (and a request of no known
// protocol, which connect-go answers as Connect unary) is "connect_rpc".
func System(p wire.Protocol) string {
	switch p {
	case wire.ProtocolGRPC:
		return SystemGRPC
	case wire.ProtocolGRPCWeb, wire.ProtocolGRPCWebText:
		return SystemGRPCWeb
	}
	return SystemConnect
}

// DefaultPropagator is the propagator of both modes when none is
// configured: W3C Trace Context and W3C Baggage, the headers
// OpenTelemetry web instrumentation sends.
func DefaultPropagator() propagation.TextMapPropagator {
	return propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
}

// PeerAttributes returns net.peer.name and net.peer.port of a client
// address ("host:port", as http.Request.RemoteAddr holds it), as otelconnect
// sets them from connect.Peer.Addr; only net.peer.name when addr has no
// port, nothing when it is empty.
func PeerAttributes(addr string) []attribute.KeyValue {
	if addr == "" {
		return nil
	}
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if n, err := strconv.Atoi(port); err == nil {
			return []attribute.KeyValue{attribute.String("net.peer.name", host), attribute.Int("net.peer.port", n)}
		}
	}
	return []attribute.KeyValue{attribute.String("net.peer.name", addr)}
}

// End records a call's final status on span and ends it: for gRPC and
// gRPC-Web rpc.<system>.status_code, the numeric code (0 for OK); for
// Connect rpc.connect_rpc.error_code, the code's name, on errors only. The
// span status is Error, with msg, for the codes that say the server failed
// (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE,
// DATA_LOSS), as the gRPC semantic conventions have it for servers; a
// client's mistake is not an error of the server's.
func End(span trace.Span, system string, code connect.Code, msg string) {
	switch system {
	case SystemConnect:
		if code != 0 {
			span.SetAttributes(attribute.String("rpc.connect_rpc.error_code", code.String()))
		}
	case SystemGRPCWeb:
		span.SetAttributes(attribute.Int64("rpc.grpc_web.status_code", int64(code)))
	default:
		span.SetAttributes(attribute.Int64("rpc.grpc.status_code", int64(code)))
	}
	switch code {
	case connect.CodeUnknown, connect.CodeDeadlineExceeded, connect.CodeUnimplemented, connect.CodeInternal,
		connect.CodeUnavailable, connect.CodeDataLoss:
		span.SetStatus(codes.Error, msg)
	}
	span.End()
}
