package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"
)

// The conformance suite's .proto files, relative to the --protos folder.
var conformanceProtos = []string{
	"connectrpc/conformance/v1/config.proto",
	"connectrpc/conformance/v1/client_compat.proto",
	"connectrpc/conformance/v1/server_compat.proto",
	"connectrpc/conformance/v1/service.proto",
	"connectrpc/conformance/v1/suite.proto",
}

// Enum numbers of connectrpc.conformance.v1.Protocol and HTTPVersion.
const (
	protocolGRPC = 2
	httpVersion2 = 2
)

// maxFrame bounds a length-prefixed message read from a pipe.
const maxFrame = 16 << 20

// schema holds the compiled conformance descriptors: the gateway routes with
// them, and the ServerCompat messages are read and written through them
// (their Go types are internal to the conformance module).
type schema struct {
	files    *protoregistry.Files
	request  protoreflect.MessageDescriptor
	response protoreflect.MessageDescriptor
}

// compileSchema compiles the suite's .proto files found under dir.
func compileSchema(ctx context.Context, dir string) (*schema, error) {
	if _, err := os.Stat(filepath.Join(dir, conformanceProtos[0])); err != nil {
		return nil, fmt.Errorf("--protos %s: %w", dir, err)
	}
	c := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{ImportPaths: []string{dir}}),
	}
	compiled, err := c.Compile(ctx, conformanceProtos...)
	if err != nil {
		return nil, fmt.Errorf("compiling the conformance protos: %w", err)
	}
	files := &protoregistry.Files{}
	var add func(fd protoreflect.FileDescriptor) error
	add = func(fd protoreflect.FileDescriptor) error {
		if _, err := files.FindFileByPath(fd.Path()); err == nil {
			return nil
		}
		for i := range fd.Imports().Len() {
			if err := add(fd.Imports().Get(i).FileDescriptor); err != nil {
				return err
			}
		}
		return files.RegisterFile(fd)
	}
	for _, fd := range compiled {
		if err := add(fd); err != nil {
			return nil, fmt.Errorf("registering %s: %w", fd.Path(), err)
		}
	}
	s := &schema{files: files}
	for name, dst := range map[protoreflect.FullName]*protoreflect.MessageDescriptor{
		"connectrpc.conformance.v1.ServerCompatRequest":  &s.request,
		"connectrpc.conformance.v1.ServerCompatResponse": &s.response,
	} {
		d, err := files.FindDescriptorByName(name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		md, ok := d.(protoreflect.MessageDescriptor)
		if !ok {
			return nil, fmt.Errorf("%s is not a message", name)
		}
		*dst = md
	}
	return s, nil
}

// serverRequest is what gatewayserver uses of a ServerCompatRequest.
type serverRequest struct {
	protocol     protoreflect.EnumNumber
	httpVersion  protoreflect.EnumNumber
	useTLS       bool
	receiveLimit uint32
}

func (s *schema) readRequest(r io.Reader) (serverRequest, error) {
	msg := dynamicpb.NewMessage(s.request)
	if err := readFrame(r, msg); err != nil {
		return serverRequest{}, err
	}
	get := func(name protoreflect.Name) protoreflect.Value {
		return msg.Get(s.request.Fields().ByName(name))
	}
	return serverRequest{
		protocol:     get("protocol").Enum(),
		httpVersion:  get("http_version").Enum(),
		useTLS:       get("use_tls").Bool(),
		receiveLimit: uint32(get("message_receive_limit").Uint()),
	}, nil
}

func (s *schema) writeRequest(w io.Writer, protocol, httpVersion protoreflect.EnumNumber) error {
	msg := dynamicpb.NewMessage(s.request)
	msg.Set(s.request.Fields().ByName("protocol"), protoreflect.ValueOfEnum(protocol))
	msg.Set(s.request.Fields().ByName("http_version"), protoreflect.ValueOfEnum(httpVersion))
	return writeFrame(w, msg)
}

func (s *schema) readResponse(r io.Reader) (host string, port uint32, err error) {
	msg := dynamicpb.NewMessage(s.response)
	if err := readFrame(r, msg); err != nil {
		return "", 0, err
	}
	host = msg.Get(s.response.Fields().ByName("host")).String()
	port = uint32(msg.Get(s.response.Fields().ByName("port")).Uint())
	if host == "" || port == 0 {
		return "", 0, fmt.Errorf("ServerCompatResponse without host or port: %v", msg)
	}
	return host, port, nil
}

func (s *schema) writeResponse(w io.Writer, host string, port uint32) error {
	msg := dynamicpb.NewMessage(s.response)
	msg.Set(s.response.Fields().ByName("host"), protoreflect.ValueOfString(host))
	msg.Set(s.response.Fields().ByName("port"), protoreflect.ValueOfUint32(port))
	return writeFrame(w, msg)
}

// readFrame reads a message prefixed with its length as a big-endian uint32.
func readFrame(r io.Reader, msg proto.Message) error {
	var prefix [4]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(prefix[:])
	if n > maxFrame {
		return fmt.Errorf("message of %d bytes is larger than %d", n, maxFrame)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return err
	}
	return proto.Unmarshal(buf, msg)
}

// writeFrame writes msg prefixed with its length as a big-endian uint32.
func writeFrame(w io.Writer, msg proto.Message) error {
	b, err := proto.Marshal(msg)
	if err != nil {
		return err
	}
	out := binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(b)), uint32(len(b)))
	_, err = w.Write(append(out, b...))
	return err
}
