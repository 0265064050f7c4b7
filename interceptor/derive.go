package interceptor

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	corsgatev1 "github.com/corsgate/corsgate/gen/corsgate/v1"
)

// optionTypes resolves exactly corsgate's own extensions. Options are
// re-decoded with it, so they are read alike whether they were parsed with
// the Go types linked, arrived as unknown fields (descriptors from server
// reflection or a buf image), or were decoded as dynamic messages.
var optionTypes = func() *protoregistry.Types {
	var types protoregistry.Types
	for _, xt := range []protoreflect.ExtensionType{corsgatev1.E_Service, corsgatev1.E_Method} {
		if err := types.RegisterExtension(xt); err != nil {
			panic(err) // unreachable: two distinct extensions
		}
	}
	return &types
}()

// ServiceOf derives the browser-facing rules of a service from its
// descriptor: per method, POST (and GET for unary methods with
// idempotency_level NO_SIDE_EFFECTS), the headers declared by the
// (corsgate.v1.service) and (corsgate.v1.method) options (service rules
// merged with method rules), and browser_barred from either. It fails when
// the options cannot be decoded or declare an invalid header name.
func ServiceOf(sd protoreflect.ServiceDescriptor) (Service, error) {
	svcOpts := &descriptorpb.ServiceOptions{}
	if err := redecode(sd.Options(), svcOpts); err != nil {
		return Service{}, fmt.Errorf("interceptor: options of service %q: %w", sd.FullName(), err)
	}
	svcRules := rulesOf(svcOpts, corsgatev1.E_Service)
	out := Service{Name: string(sd.FullName())}
	methods := sd.Methods()
	for i := 0; i < methods.Len(); i++ {
		md := methods.Get(i)
		mOpts := &descriptorpb.MethodOptions{}
		if err := redecode(md.Options(), mOpts); err != nil {
			return Service{}, fmt.Errorf("interceptor: options of method %q: %w", md.FullName(), err)
		}
		rules := rulesOf(mOpts, corsgatev1.E_Method)
		p := Procedure{
			Name:             string(md.Name()),
			Methods:          []string{"POST"},
			RequestHeaders:   mergeNames(svcRules.GetRequestHeaders(), rules.GetRequestHeaders()),
			ResponseHeaders:  mergeNames(svcRules.GetResponseHeaders(), rules.GetResponseHeaders()),
			ResponseTrailers: mergeNames(svcRules.GetResponseTrailers(), rules.GetResponseTrailers()),
			BrowserBarred:    svcRules.GetBrowserBarred() || rules.GetBrowserBarred(),
		}
		if !md.IsStreamingClient() && !md.IsStreamingServer() &&
			mOpts.GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS {
			p.Methods = []string{"GET", "POST"}
		}
		out.Procedures = append(out.Procedures, p)
	}
	// Validate now, so errors name the service as it was derived.
	if _, err := NewTable(out); err != nil {
		return Service{}, err
	}
	return out, nil
}

// ServicesOf derives every service in files, sorted by name.
func ServicesOf(files *protoregistry.Files) ([]Service, error) {
	var (
		out []Service
		err error
	)
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		svcs := fd.Services()
		for i := 0; i < svcs.Len(); i++ {
			var s Service
			s, err = ServiceOf(svcs.Get(i))
			if err != nil {
				return false
			}
			out = append(out, s)
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Service) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// redecode copies the options message src (of any Go type: the generated
// descriptorpb type, a dynamic message, or nil) into dst through its wire
// form, resolving corsgate's extensions.
func redecode(src proto.Message, dst proto.Message) error {
	if src == nil || !src.ProtoReflect().IsValid() {
		return nil
	}
	b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(src)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	if err := (proto.UnmarshalOptions{Resolver: optionTypes, AllowPartial: true}).Unmarshal(b, dst); err != nil {
		return fmt.Errorf("decode corsgate options: %w", err)
	}
	return nil
}

// rulesOf returns the corsgate rules in opts, or nil.
func rulesOf(opts proto.Message, xt protoreflect.ExtensionType) *corsgatev1.Rules {
	if !proto.HasExtension(opts, xt) {
		return nil
	}
	r, _ := proto.GetExtension(opts, xt).(*corsgatev1.Rules)
	return r
}

// mergeNames joins two name lists, dropping case-insensitive duplicates.
func mergeNames(a, b []string) []string {
	out := appendUnique(nil, strings.ToLower, a...)
	return appendUnique(out, strings.ToLower, b...)
}
