package interceptor

import (
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Wrap is the drop-in form for connect-go handler constructors:
//
//	mux.Handle(policy.Wrap(greetv1connect.NewGreetServiceHandler(svc)))
//
// It finds the service named by path ("/greet.v1.GreetService/") in
// [protoregistry.GlobalFiles] (where the generated Go package registers it),
// derives its rules with [ServiceOf], and returns path unchanged with h
// wrapped by [Policy.Handler].
//
// Like [Policy.WrapService] and [Policy.WrapFiles], Wrap also serves
// gRPC-Web text mode (application/grpc-web-text[+proto], the default of the
// grpc-web JS client) on handlers that serve binary gRPC-Web only, as
// connect-go's do: the request body is decoded from base64 and the response
// encoded to base64 as they stream (application/grpc-web-text+proto), and
// invalid base64 fails the call with INVALID_ARGUMENT. Other requests pass
// as they are.
//
// Wrap panics, like [regexp.MustCompile], when path names no service in
// GlobalFiles or the service's options are invalid: that is a setup error,
// found at startup, never silently passed through. Use [Policy.WrapService]
// or [Policy.WrapFiles] to get an error instead.
func (p *Policy) Wrap(path string, h http.Handler) (string, http.Handler) {
	sd, err := serviceByPath(protoregistry.GlobalFiles, path)
	if err != nil {
		panic(err)
	}
	wrapped, err := p.WrapService(sd, h)
	if err != nil {
		panic(err)
	}
	return path, wrapped
}

// serviceByPath finds "/pkg.Service/" in files.
func serviceByPath(files *protoregistry.Files, path string) (protoreflect.ServiceDescriptor, error) {
	name := strings.Trim(path, "/")
	if name == "" || strings.Contains(name, "/") || !protoreflect.FullName(name).IsValid() {
		return nil, fmt.Errorf("interceptor: Wrap(%q): the path must be a service path such as %q, as connect-go's "+
			"New...ServiceHandler returns", path, "/greet.v1.GreetService/")
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		return nil, fmt.Errorf("interceptor: Wrap(%q): service %q is not in protoregistry.GlobalFiles; import its "+
			"generated Go package (the .pb.go file) or use WrapService with its descriptor: %w", path, name, err)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, fmt.Errorf("interceptor: Wrap(%q): %q is a %T, not a service", path, name, d)
	}
	return sd, nil
}

// WrapService wraps h with the policy for the one service sd, deriving its
// rules with [ServiceOf]. It serves gRPC-Web text mode on h as [Policy.Wrap]
// does.
func (p *Policy) WrapService(sd protoreflect.ServiceDescriptor, h http.Handler) (http.Handler, error) {
	if sd == nil {
		return nil, fmt.Errorf("interceptor: WrapService: nil service descriptor")
	}
	s, err := ServiceOf(sd)
	if err != nil {
		return nil, err
	}
	t, err := NewTable(s)
	if err != nil {
		return nil, err
	}
	return p.Handler(t, withGRPCWebText(h, p.maxMessageSize)), nil
}

// WrapFiles wraps h with the policy for every service in files (for example
// descriptors from server reflection or a buf image). It fails when files
// holds no service. It serves gRPC-Web text mode on h as [Policy.Wrap] does.
func (p *Policy) WrapFiles(files *protoregistry.Files, h http.Handler) (http.Handler, error) {
	if files == nil {
		return nil, fmt.Errorf("interceptor: WrapFiles: nil files")
	}
	services, err := ServicesOf(files)
	if err != nil {
		return nil, err
	}
	if len(services) == 0 {
		return nil, fmt.Errorf("interceptor: WrapFiles: the %d files hold no service; pass the files that define the services to serve", files.NumFiles())
	}
	t, err := NewTable(services...)
	if err != nil {
		return nil, err
	}
	return p.Handler(t, withGRPCWebText(h, p.maxMessageSize)), nil
}

// WrapTable wraps a connect-go handler h with the policy for the procedures
// of t, without reflection: it is what the code protoc-gen-corsgate generates
// calls. Like [Policy.Wrap] it also serves gRPC-Web text mode on h. Use
// [Policy.Handler] instead for handlers that serve gRPC-Web text themselves
// (a gateway, improbable's wrapper).
func (p *Policy) WrapTable(t *Table, h http.Handler) http.Handler {
	return p.Handler(t, withGRPCWebText(h, p.maxMessageSize))
}
