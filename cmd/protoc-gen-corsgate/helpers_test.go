package main

import (
	"context"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/pluginpb"
)

// compileProtos compiles files (paths relative to importPaths) with
// protocompile and returns them and everything they import as descriptor
// protos, dependencies first, as protoc lists them in a request. Files named
// in edition2024 are rewritten to edition 2024 after compiling: protocompile
// v0.14 stops at 2023, and the plugin only reads what both editions share.
func compileProtos(tb testing.TB, importPaths []string, files []string, edition2024 ...string) []*descriptorpb.FileDescriptorProto {
	tb.Helper()
	compiler := protocompile.Compiler{
		Resolver:       protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: importPaths}),
		SourceInfoMode: protocompile.SourceInfoStandard,
	}
	compiled, err := compiler.Compile(context.Background(), files...)
	if err != nil {
		tb.Fatalf("compile %v: %v", files, err)
	}
	var (
		out  []*descriptorpb.FileDescriptorProto
		seen = make(map[string]bool)
		add  func(fd protoreflect.FileDescriptor)
	)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		for i := range fd.Imports().Len() {
			add(fd.Imports().Get(i).FileDescriptor)
		}
		fdp := protodesc.ToFileDescriptorProto(fd)
		for _, name := range edition2024 {
			if name == fd.Path() {
				fdp.Edition = descriptorpb.Edition_EDITION_2024.Enum()
			}
		}
		out = append(out, fdp)
	}
	for _, f := range compiled {
		add(f)
	}
	return out
}

// newRequest builds the request protoc would send, and decodes it as the
// plugin would receive it: with corsgate's option types linked (the options
// arrive parsed as extensions) or not (they arrive as unknown fields).
func newRequest(tb testing.TB, protos []*descriptorpb.FileDescriptorProto, generate []string, parameter string, linked bool) *pluginpb.CodeGeneratorRequest {
	tb.Helper()
	req := &pluginpb.CodeGeneratorRequest{
		FileToGenerate: generate,
		ProtoFile:      protos,
		Parameter:      proto.String(parameter),
	}
	b, err := proto.Marshal(req)
	if err != nil {
		tb.Fatal(err)
	}
	var resolver interface {
		protoregistry.ExtensionTypeResolver
		protoregistry.MessageTypeResolver
	} = protoregistry.GlobalTypes
	if !linked {
		resolver = new(protoregistry.Types) // knows no extension at all
	}
	decoded := &pluginpb.CodeGeneratorRequest{}
	if err := (proto.UnmarshalOptions{Resolver: resolver}).Unmarshal(b, decoded); err != nil {
		tb.Fatal(err)
	}
	return decoded
}

// responseFiles returns the generated files of a response by name, failing
// the test on a response error.
func responseFiles(tb testing.TB, resp *pluginpb.CodeGeneratorResponse) map[string]string {
	tb.Helper()
	if resp.Error != nil {
		tb.Fatalf("plugin error: %s", resp.GetError())
	}
	files := make(map[string]string)
	for _, f := range resp.GetFile() {
		if _, dup := files[f.GetName()]; dup {
			tb.Fatalf("file %s generated twice", f.GetName())
		}
		files[f.GetName()] = f.GetContent()
	}
	return files
}
