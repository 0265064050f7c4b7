package main

import (
	"net"
	"slices"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/greetd"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// TestGRPCProxy checks that the pass-through floor passes a call through
// whole, as a proxy must for its cost to mean anything: the answer, the
// header and trailer metadata, an error's status with its details, and a
// server stream's messages.
func TestGRPCProxy(t *testing.T) {
	t.Parallel()
	listen := func() net.Listener {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return lis
	}
	backendLis, proxyLis := listen(), listen()
	backend := greetd.NewServer(nil)
	go func() { _ = backend.Serve(backendLis) }()
	t.Cleanup(backend.Stop)
	served := make(chan error, 1)
	go func() { served <- serveGRPCProxy(t.Context(), backendLis.Addr().String(), proxyLis) }()
	t.Cleanup(func() {
		if err := <-served; err != nil {
			t.Errorf("proxy: %v", err)
		}
	})
	conn, err := grpc.NewClient(proxyLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	client := greetv1.NewGreetServiceClient(conn)

	var header, trailer metadata.MD
	res, err := client.Greet(t.Context(), &greetv1.GreetRequest{Name: "Ada"}, grpc.Header(&header), grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	if res.GetGreeting() != "Hello, Ada!" {
		t.Errorf("greeting %q", res.GetGreeting())
	}
	if got := header.Get("x-greet-version"); !slices.Equal(got, []string{greetsvc.Version}) {
		t.Errorf("x-greet-version = %q", got)
	}
	if got := trailer.Get("x-greet-trailer"); !slices.Equal(got, []string{greetsvc.TrailerValue}) {
		t.Errorf("x-greet-trailer = %q", got)
	}

	_, err = client.Greet(t.Context(), &greetv1.GreetRequest{})
	if st := status.Convert(err); st.Code() != codes.InvalidArgument || len(st.Details()) != 1 {
		t.Errorf("empty name: %v with %d details, want InvalidArgument with one", st.Code(), len(st.Details()))
	}

	// The server stream, read as the bench's stream cells read it.
	receive, closeReceiver, err := grpcReceiver(proxyLis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeReceiver)
	if n, err := receive(t.Context(), 5); err != nil {
		t.Errorf("server stream: %d messages, %v; want 5", n, err)
	}
}
