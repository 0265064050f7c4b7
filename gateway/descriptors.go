package gateway

import (
	"context"
	"errors"
	"fmt"
	"os"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// LoadDescriptorFile reads a buf image (`buf build -o image.binpb`) or a
// binary FileDescriptorSet (`protoc --descriptor_set_out
// --include_imports`) and resolves it. Every imported file must be in the
// set. Options, custom ones included, keep their bytes, so the CORS rules
// in corsgate's options are found even when their Go types are not linked.
func LoadDescriptorFile(path string) (*protoregistry.Files, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: descriptors: %w", err)
	}
	var set descriptorpb.FileDescriptorSet
	// A buf image is a FileDescriptorSet with extra fields per file; they are
	// kept as unknown fields and ignored.
	if err := proto.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("gateway: descriptors %s: not a buf image or FileDescriptorSet: %w", path, err)
	}
	if len(set.GetFile()) == 0 {
		return nil, fmt.Errorf("gateway: descriptors %s: no files in the set", path)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("gateway: descriptors %s: %w (build it with imports: buf build -o FILE, or protoc --include_imports)", path, err)
	}
	return files, nil
}

// reflectFiles asks the backend's server reflection for every service and
// the files they need.
func (b *backend) reflectFiles(ctx context.Context) (*protoregistry.Files, error) {
	client := grpcreflect.NewClient(b.http, b.baseURL, connect.WithGRPC())
	stream := client.NewStream(ctx)
	defer func() { _, _ = stream.Close() }()
	names, err := stream.ListServices()
	if err != nil {
		return nil, fmt.Errorf("gateway: reflection on %s: %w", b.authority, err)
	}
	byName := map[string]*descriptorpb.FileDescriptorProto{}
	for _, name := range names {
		fds, err := stream.FileContainingSymbol(name)
		if err != nil {
			return nil, fmt.Errorf("gateway: reflection on %s: service %s: %w", b.authority, name, err)
		}
		for _, fd := range fds {
			byName[fd.GetName()] = fd
		}
	}
	// Servers send each file once per stream; fetch any import still missing.
	for {
		var missing []string
		for _, fd := range byName {
			for _, dep := range fd.GetDependency() {
				if _, ok := byName[dep]; !ok {
					missing = append(missing, dep)
				}
			}
		}
		if len(missing) == 0 {
			break
		}
		for _, dep := range missing {
			if _, ok := byName[dep]; ok {
				continue
			}
			fds, err := stream.FileByFilename(dep)
			if err != nil {
				return nil, fmt.Errorf("gateway: reflection on %s: file %s: %w", b.authority, dep, err)
			}
			for _, fd := range fds {
				byName[fd.GetName()] = fd
			}
			if _, ok := byName[dep]; !ok {
				return nil, fmt.Errorf("gateway: reflection on %s: file %s not sent", b.authority, dep)
			}
		}
	}
	set := &descriptorpb.FileDescriptorSet{File: make([]*descriptorpb.FileDescriptorProto, 0, len(byName))}
	for _, fd := range byName {
		set.File = append(set.File, fd)
	}
	files, err := protodesc.NewFiles(set)
	if err != nil {
		return nil, fmt.Errorf("gateway: reflection on %s: %w", b.authority, err)
	}
	return files, nil
}

// errNoDescriptors is what calls get before the first descriptors arrive.
var errNoDescriptors = errors.New("no descriptors from the backend yet")

// noDescriptors is errNoDescriptors naming the backend.
func (b *backend) noDescriptors() error {
	if b.name == DefaultBackendName {
		return errNoDescriptors
	}
	return fmt.Errorf("no descriptors from backend %s yet", b.name)
}
