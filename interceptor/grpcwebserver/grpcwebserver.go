// Package grpcwebserver serves a grpc-go server to browsers through
// improbable-eng's grpcweb wrapper, with corsgate's policy in front of it
// instead of the wrapper's own CORS handling (which echoes every origin with
// credentials and answers only preflights that ask for x-grpc-web).
package grpcwebserver

import (
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/improbable-eng/grpc-web/go/grpcweb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/wire"
)

// Handler returns an [http.Handler] serving s: gRPC-Web requests (binary and
// text) through [grpcweb.WrapServer], native gRPC requests (HTTP/2) directly,
// and improbable's WebSocket transport (subprotocol grpc-websockets: client
// and bidi streams from browsers) through the wrapper's own WebSocket
// support. WebSockets are not covered by CORS, so every upgrade passes the
// policy's [interceptor.UpgradeGuard] first, with the same origin matcher
// and procedure rules as CORS: a foreign, missing or "null" Origin, an
// unknown or browser-barred procedure is answered 403 before upgrading. The
// upgrade's cookies reach s only when p allows credentials. The wrapper
// pings open streams every [WebSocketPingInterval].
// The policy p, with rules derived from the services registered on s (found
// in [protoregistry.GlobalFiles]), answers every preflight and sets the CORS
// headers of every response; the wrapper's CORS is kept inert. Register
// every service on s before calling Handler. It fails when a registered
// service is not in GlobalFiles (import its generated Go package).
func Handler(p *interceptor.Policy, s *grpc.Server) (http.Handler, error) {
	if p == nil || s == nil {
		return nil, fmt.Errorf("grpcwebserver: Handler needs a policy and a server, got %v and %v", p, s)
	}
	info := s.GetServiceInfo()
	names := make([]string, 0, len(info))
	for name := range info {
		names = append(names, name)
	}
	slices.Sort(names)
	services := make([]interceptor.Service, 0, len(names))
	for _, name := range names {
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
		if err != nil {
			return nil, fmt.Errorf("grpcwebserver: service %q is registered on the grpc.Server but not in "+
				"protoregistry.GlobalFiles; import its generated Go package: %w", name, err)
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			return nil, fmt.Errorf("grpcwebserver: %q is a %T, not a service", name, d)
		}
		svc, err := interceptor.ServiceOf(sd)
		if err != nil {
			return nil, fmt.Errorf("grpcwebserver: %w", err)
		}
		services = append(services, svc)
	}
	table, err := interceptor.NewTable(services...)
	if err != nil {
		return nil, fmt.Errorf("grpcwebserver: %w", err)
	}
	guard := p.Upgrades(table)
	var upgradeHeaders []string // the wrapper copies these from the upgrade
	if p.Credentials() {
		upgradeHeaders = []string{"Cookie"}
	}
	var policed http.Handler
	wrapped := grpcweb.WrapServer(s,
		// The wrapper's CORS never decides anything: preflights are answered
		// by the policy before they reach it, and the policy drops any CORS
		// header the wrapper sets on actual responses.
		grpcweb.WithOriginFunc(func(string) bool { return true }),
		grpcweb.WithCorsForRegisteredEndpointsOnly(false),
		grpcweb.WithWebsockets(true),
		grpcweb.WithWebsocketOriginFunc(func(r *http.Request) bool { return guard.Check(r, false).Allowed }),
		grpcweb.WithWebsocketPingInterval(WebSocketPingInterval),
		grpcweb.WithAllowedRequestHeaders(upgradeHeaders),
	)
	upgrades := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wrapped.IsGrpcWebSocketRequest(r) {
			// Past the policy's middleware, whose writer cannot be
			// hijacked: the origin func above is the check.
			wrapped.ServeHTTP(w, r)
			return
		}
		policed.ServeHTTP(w, r)
	})
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wrapped.IsGrpcWebRequest(r) {
			// Straight to the translation, past the wrapper's CORS layer.
			wrapped.HandleGrpcWebRequest(w, r)
			return
		}
		if r.ProtoMajor == 2 && wire.Classify(r).Protocol == wire.ProtocolGRPC {
			s.ServeHTTP(w, r)
			return
		}
		http.Error(w, "grpcwebserver: not a gRPC-Web or gRPC request", http.StatusUnsupportedMediaType)
	})
	policed = p.Handler(table, inner)
	return upgrades, nil
}

// WebSocketPingInterval is how often [Handler] pings open WebSocket streams.
const WebSocketPingInterval = 30 * time.Second
