// Package testutil holds the setup that tests across the repository share:
// greetd (the example grpc-go backend) on a loopback port, a handler served
// over HTTP/1.1 and h2c, a descriptor set of a linked file, and a buffer a
// logger may write to concurrently. It is imported only by tests (in this
// module and in the nested test and benchmark modules); nothing here is
// meant for production code.
package testutil

import (
	"bytes"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/corsgate/corsgate/internal/greetd"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// StartGreetd serves greetd (grpc-go with reflection and grpc.health.v1)
// with g on a loopback port until the test ends, and returns its address.
// A nil g serves a plain [greetsvc.Greeter].
func StartGreetd(tb testing.TB, g *greetsvc.Greeter, opts ...grpc.ServerOption) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return ServeGreetd(tb, lis, g, opts...)
}

// ServeGreetd is [StartGreetd] on a listener the test chose (to restart a
// backend on the same port, say).
func ServeGreetd(tb testing.TB, lis net.Listener, g *greetsvc.Greeter, opts ...grpc.ServerOption) string {
	tb.Helper()
	if g == nil {
		g = &greetsvc.Greeter{}
	}
	s := greetd.NewServer(g, opts...)
	go func() { _ = s.Serve(lis) }()
	tb.Cleanup(s.Stop)
	return lis.Addr().String()
}

// ServeHandler serves h over HTTP/1.1 and h2c on a loopback port until the
// test ends, and returns its base URL.
func ServeHandler(tb testing.TB, h http.Handler) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &p, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(lis) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + lis.Addr().String()
}

// DescriptorSet returns fd and everything it imports as a
// FileDescriptorSet, dependencies first, as buf and protoc write one.
func DescriptorSet(fd protoreflect.FileDescriptor) *descriptorpb.FileDescriptorSet {
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(protoreflect.FileDescriptor)
	add = func(f protoreflect.FileDescriptor) {
		if seen[f.Path()] {
			return
		}
		seen[f.Path()] = true
		for i := range f.Imports().Len() {
			add(f.Imports().Get(i).FileDescriptor)
		}
		set.File = append(set.File, protodesc.ToFileDescriptorProto(f))
	}
	add(fd)
	return set
}

// SyncBuffer is a bytes.Buffer that a logger may write to from several
// goroutines while the test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
