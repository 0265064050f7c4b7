// Package grpcwebserver serves a grpc-go server to browsers through
// improbable-eng's grpcweb wrapper, with corsgate's policy in front of it
// instead of the wrapper's own CORS handling (which echoes every origin with
// credentials and answers only preflights that ask for x-grpc-web).
package grpcwebserver

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/improbable-eng/grpc-web/go/grpcweb"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/corsgate/corsgate/interceptor"
)

// Handler returns an [http.Handler] serving s: gRPC-Web requests (binary and
// text) through [grpcweb.WrapServer], native gRPC requests (HTTP/2) directly.
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
	wrapped := grpcweb.WrapServer(s,
		// The wrapper's CORS never decides anything: preflights are answered
		// by the policy before they reach it, and the policy drops any CORS
		// header the wrapper sets on actual responses.
		grpcweb.WithOriginFunc(func(string) bool { return true }),
		grpcweb.WithCorsForRegisteredEndpointsOnly(false),
		grpcweb.WithWebsockets(false),
	)
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wrapped.IsGrpcWebRequest(r) {
			// Straight to the translation, past the wrapper's CORS layer.
			wrapped.HandleGrpcWebRequest(w, r)
			return
		}
		if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
			s.ServeHTTP(w, r)
			return
		}
		http.Error(w, "grpcwebserver: not a gRPC-Web or gRPC request", http.StatusUnsupportedMediaType)
	})
	return p.Handler(table, inner), nil
}
