package greetd_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/greetd"
)

func ExampleNewServer() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- greetd.Serve(ctx, greetd.NewServer(nil), lis, 0, slog.New(slog.DiscardHandler)) }()
	defer func() { stop(); <-done }()

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	res, err := greetv1.NewGreetServiceClient(conn).Greet(ctx, &greetv1.GreetRequest{Name: "Ada"})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.GetGreeting())
	// Output: Hello, Ada!
}
