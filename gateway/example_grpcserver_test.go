package gateway_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/greetd"
)

// ExampleGateway_GRPCServer serves gRPC clients on a listener of their own,
// with grpc-go's server transport, next to the http.Server of ServeHTTP
// (gRPC-Web and Connect; not shown), and calls it with a grpc-go client.
func ExampleGateway_GRPCServer() {
	backendLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	backend := greetd.NewServer(nil)
	go func() { _ = backend.Serve(backendLis) }()
	defer backend.Stop()

	g, err := gateway.New(gateway.Config{Backend: backendLis.Addr().String()})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Ready(ctx); err != nil {
		log.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	s := g.GRPCServer()
	go func() { _ = s.Serve(lis) }()
	defer s.GracefulStop()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	var trailer metadata.MD
	res, err := greetv1.NewGreetServiceClient(conn).Greet(ctx, &greetv1.GreetRequest{Name: "Ada"}, grpc.Trailer(&trailer))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.GetGreeting())
	fmt.Println("x-greet-trailer:", trailer.Get("x-greet-trailer"))
	// Output:
	// Hello, Ada!
	// x-greet-trailer: [greeted]
}
