package interceptor

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	corsgatev1 "github.com/corsgate/corsgate/gen/corsgate/v1"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

func greetService(tb testing.TB) Service {
	tb.Helper()
	s, err := ServiceOf(greetv1.File_greet_v1_greet_proto.Services().ByName("GreetService"))
	if err != nil {
		tb.Fatalf("ServiceOf(GreetService) error = %v", err)
	}
	return s
}

func TestServiceOfGreet(t *testing.T) {
	t.Parallel()
	got := greetService(t)
	want := Service{Name: "greet.v1.GreetService", Procedures: []Procedure{
		{Name: "Greet", Methods: []string{"GET", "POST"}, RequestHeaders: []string{"authorization", "x-request-id"},
			ResponseHeaders: []string{"x-greet-version"}, ResponseTrailers: []string{"x-greet-trailer"}},
		{Name: "SetGreeting", Methods: []string{"POST"}},
		{Name: "GreetStream", Methods: []string{"POST"}},
		{Name: "GreetMany", Methods: []string{"POST"}},
		{Name: "Chat", Methods: []string{"POST"}},
		{Name: "ResetGreetings", Methods: []string{"POST"}, BrowserBarred: true},
	}}
	assertService(t, got, want)
}

func assertService(tb testing.TB, got, want Service) {
	tb.Helper()
	if got.Name != want.Name || len(got.Procedures) != len(want.Procedures) {
		tb.Fatalf("service = %+v, want %+v", got, want)
	}
	for i, g := range got.Procedures {
		w := want.Procedures[i]
		if g.Name != w.Name || !slices.Equal(g.Methods, w.Methods) || !slices.Equal(g.RequestHeaders, w.RequestHeaders) ||
			!slices.Equal(g.ResponseHeaders, w.ResponseHeaders) || !slices.Equal(g.ResponseTrailers, w.ResponseTrailers) ||
			g.BrowserBarred != w.BrowserBarred {
			tb.Errorf("procedure %d = %+v, want %+v", i, g, w)
		}
	}
}

// optionsMode says how corsgate's options reach the descriptor.
type optionsMode int

const (
	optionsUnknown optionsMode = iota // raw bytes in the unknown fields
	optionsDynamic                    // decoded as dynamicpb messages of a separate copy of cors.proto
	optionsLinked                     // decoded with the linked Go types
)

// dynService builds dyn.v1.DynService from a FileDescriptorProto whose
// corsgate options arrive as mode says.
func dynService(tb testing.TB, mode optionsMode) protoreflect.ServiceDescriptor {
	tb.Helper()
	svcRules := &corsgatev1.Rules{RequestHeaders: []string{"X-Tenant"}, ResponseHeaders: []string{"x-served-by"}}
	getRules := &corsgatev1.Rules{RequestHeaders: []string{"authorization", "x-tenant"}, ResponseTrailers: []string{"x-cost"}}
	barRules := &corsgatev1.Rules{BrowserBarred: true}
	svcOpts := &descriptorpb.ServiceOptions{}
	setRules(tb, svcOpts, 50871, svcRules, mode)
	getOpts := &descriptorpb.MethodOptions{IdempotencyLevel: descriptorpb.MethodOptions_NO_SIDE_EFFECTS.Enum()}
	setRules(tb, getOpts, 50871, getRules, mode)
	streamOpts := &descriptorpb.MethodOptions{IdempotencyLevel: descriptorpb.MethodOptions_NO_SIDE_EFFECTS.Enum()}
	barOpts := &descriptorpb.MethodOptions{}
	setRules(tb, barOpts, 50871, barRules, mode)
	fdp := &descriptorpb.FileDescriptorProto{
		Name:        proto.String("dyn/v1/dyn.proto"),
		Package:     proto.String("dyn.v1"),
		Syntax:      proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Empty")}},
		Service: []*descriptorpb.ServiceDescriptorProto{{
			Name:    proto.String("DynService"),
			Options: svcOpts,
			Method: []*descriptorpb.MethodDescriptorProto{
				{Name: proto.String("Get"), InputType: proto.String(".dyn.v1.Empty"), OutputType: proto.String(".dyn.v1.Empty"), Options: getOpts},
				{Name: proto.String("Put"), InputType: proto.String(".dyn.v1.Empty"), OutputType: proto.String(".dyn.v1.Empty")},
				{Name: proto.String("Watch"), InputType: proto.String(".dyn.v1.Empty"), OutputType: proto.String(".dyn.v1.Empty"),
					ServerStreaming: proto.Bool(true), Options: streamOpts},
				{Name: proto.String("Admin"), InputType: proto.String(".dyn.v1.Empty"), OutputType: proto.String(".dyn.v1.Empty"), Options: barOpts},
			},
		}},
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		tb.Fatalf("protodesc.NewFile() error = %v", err)
	}
	return fd.Services().Get(0)
}

// setRules puts rules into opts as extension number num, in the form mode
// says.
func setRules(tb testing.TB, opts proto.Message, num protowire.Number, rules *corsgatev1.Rules, mode optionsMode) {
	tb.Helper()
	body, err := proto.Marshal(rules)
	if err != nil {
		tb.Fatal(err)
	}
	raw := protowire.AppendTag(nil, num, protowire.BytesType)
	raw = protowire.AppendBytes(raw, body)
	var resolver interface {
		protoregistry.ExtensionTypeResolver
		protoregistry.MessageTypeResolver
	}
	switch mode {
	case optionsUnknown:
		opts.ProtoReflect().SetUnknown(raw)
		return
	case optionsLinked:
		resolver = protoregistry.GlobalTypes
	case optionsDynamic:
		// A separate copy of cors.proto, as a reflection client would build.
		files := new(protoregistry.Files)
		for _, fd := range []protoreflect.FileDescriptor{descriptorpb.File_google_protobuf_descriptor_proto, corsgatev1.File_corsgate_v1_cors_proto} {
			copyFd, err := protodesc.NewFile(protodesc.ToFileDescriptorProto(fd), files)
			if err != nil {
				tb.Fatal(err)
			}
			if err := files.RegisterFile(copyFd); err != nil {
				tb.Fatal(err)
			}
		}
		resolver = dynamicpb.NewTypes(files)
	}
	existing, err := proto.Marshal(opts)
	if err != nil {
		tb.Fatal(err)
	}
	proto.Reset(opts)
	if err := (proto.UnmarshalOptions{Resolver: resolver}).Unmarshal(append(existing, raw...), opts); err != nil {
		tb.Fatal(err)
	}
	if len(opts.ProtoReflect().GetUnknown()) != 0 {
		tb.Fatalf("mode %d: extension stayed unknown", mode)
	}
}

func TestServiceOfOptionForms(t *testing.T) {
	t.Parallel()
	want := Service{Name: "dyn.v1.DynService", Procedures: []Procedure{
		{Name: "Get", Methods: []string{"GET", "POST"}, RequestHeaders: []string{"x-tenant", "authorization"},
			ResponseHeaders: []string{"x-served-by"}, ResponseTrailers: []string{"x-cost"}},
		{Name: "Put", Methods: []string{"POST"}, RequestHeaders: []string{"x-tenant"}, ResponseHeaders: []string{"x-served-by"}},
		{Name: "Watch", Methods: []string{"POST"}, RequestHeaders: []string{"x-tenant"}, ResponseHeaders: []string{"x-served-by"}},
		{Name: "Admin", Methods: []string{"POST"}, RequestHeaders: []string{"x-tenant"}, ResponseHeaders: []string{"x-served-by"}, BrowserBarred: true},
	}}
	tests := []struct {
		name string
		mode optionsMode
	}{
		{name: "unknown fields", mode: optionsUnknown},
		{name: "dynamic messages", mode: optionsDynamic},
		{name: "linked types", mode: optionsLinked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sd := dynService(t, tt.mode)
			got, err := ServiceOf(sd)
			if err != nil {
				t.Fatalf("ServiceOf() error = %v", err)
			}
			assertService(t, got, want)
		})
	}
}

func TestServiceOfInvalidHeader(t *testing.T) {
	t.Parallel()
	opts := &descriptorpb.MethodOptions{}
	setRules(t, opts, 50871, &corsgatev1.Rules{RequestHeaders: []string{"bad header"}}, optionsUnknown)
	fdp := &descriptorpb.FileDescriptorProto{
		Name: proto.String("bad/v1/bad.proto"), Package: proto.String("bad.v1"), Syntax: proto.String("proto3"),
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Empty")}},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("BadService"), Method: []*descriptorpb.MethodDescriptorProto{
			{Name: proto.String("Do"), InputType: proto.String(".bad.v1.Empty"), OutputType: proto.String(".bad.v1.Empty"), Options: opts},
		}}},
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ServiceOf(fd.Services().Get(0))
	if err == nil || !strings.Contains(err.Error(), `"bad header"`) || !strings.Contains(err.Error(), "/bad.v1.BadService/Do") {
		t.Errorf("ServiceOf() error = %v, want one naming %q and the procedure", err, "bad header")
	}
}

func TestServicesOf(t *testing.T) {
	t.Parallel()
	files := new(protoregistry.Files)
	for _, fd := range []protoreflect.FileDescriptor{dynService(t, optionsUnknown).ParentFile(), greetv1.File_greet_v1_greet_proto} {
		if err := files.RegisterFile(fd); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ServicesOf(files)
	if err != nil {
		t.Fatalf("ServicesOf() error = %v", err)
	}
	var names []string
	for _, s := range got {
		names = append(names, s.Name)
	}
	if want := []string{"dyn.v1.DynService", "greet.v1.GreetService"}; !slices.Equal(names, want) {
		t.Errorf("ServicesOf() names = %q, want %q", names, want)
	}
}

func TestNewTable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		services []Service
		wantErr  string
	}{
		{name: "greet", services: []Service{greetService(t)}},
		{name: "empty", services: nil},
		{name: "bad service name", services: []Service{{Name: "greet v1"}}, wantErr: `"greet v1"`},
		{name: "empty service name", services: []Service{{Name: ""}}, wantErr: `service name ""`},
		{name: "duplicate service", services: []Service{{Name: "a.S"}, {Name: "a.S"}}, wantErr: "twice"},
		{name: "bad procedure name", services: []Service{{Name: "a.S", Procedures: []Procedure{{Name: "do/it"}}}}, wantErr: `"do/it"`},
		{name: "duplicate procedure", services: []Service{{Name: "a.S", Procedures: []Procedure{{Name: "Do"}, {Name: "Do"}}}}, wantErr: "twice"},
		{name: "bad method", services: []Service{{Name: "a.S", Procedures: []Procedure{{Name: "Do", Methods: []string{"PUT"}}}}}, wantErr: `"PUT"`},
		{name: "bad request header", services: []Service{{Name: "a.S", Procedures: []Procedure{{Name: "Do", RequestHeaders: []string{"a b"}}}}}, wantErr: `"a b"`},
		{name: "star request header", services: []Service{{Name: "a.S", Procedures: []Procedure{{Name: "Do", RequestHeaders: []string{"*"}}}}}, wantErr: `"*"`},
		{name: "empty trailer", services: []Service{{Name: "a.S", Procedures: []Procedure{{Name: "Do", ResponseTrailers: []string{""}}}}}, wantErr: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewTable(tt.services...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("NewTable() error = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("NewTable() error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestTableServicesNormalized(t *testing.T) {
	t.Parallel()
	tb, err := NewTable(Service{Name: "a.v1.S", Procedures: []Procedure{
		{Name: "Get", Methods: []string{"get"}, RequestHeaders: []string{"X-A", "x-a"}, ResponseTrailers: []string{"X-T"}},
		{Name: "Put"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := tb.Services()
	assertService(t, got[0], Service{Name: "a.v1.S", Procedures: []Procedure{
		{Name: "Get", Methods: []string{"GET", "POST"}, RequestHeaders: []string{"x-a"}, ResponseTrailers: []string{"x-t"}},
		{Name: "Put", Methods: []string{"POST"}},
	}})
	got[0].Procedures[0].Methods[0] = "PUT" // a copy: the table must not change
	if again := tb.Services(); again[0].Procedures[0].Methods[0] != "GET" {
		t.Errorf("Services() shares memory with the table")
	}
}

func TestMustNewTablePanics(t *testing.T) {
	t.Parallel()
	defer func() {
		if r := recover(); r == nil {
			t.Errorf("MustNewTable() did not panic")
		}
	}()
	MustNewTable(Service{Name: ""})
}
