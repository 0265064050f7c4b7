package main

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/testutil"
)

// BenchmarkUnaryGRPCListen compares gRPC through the gateway's net/http
// listener, through its grpc-go listener (Gateway.GRPCServer, corsgate
// serve --grpc-listen), and to the backend directly, with the connect-go
// gRPC client of the bench's main program.
func BenchmarkUnaryGRPCListen(b *testing.B) {
	backend := testutil.StartGreetd(b, nil)
	g, err := gateway.New(gateway.Config{Backend: backend, Policy: newPolicy(b, interceptor.WithAllowedOrigins(appOrigin)), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Ready(ctx); err != nil {
		b.Fatal(err)
	}
	gw := testutil.ServeHandler(b, g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := g.GRPCServer()
	go func() { _ = gs.Serve(lis) }()
	b.Cleanup(gs.Stop)
	name := strings.Repeat("n", 1024)
	for _, bc := range []struct {
		name string
		url  string
	}{
		{name: "corsgate/listen", url: gw},
		{name: "corsgate/grpc-listen", url: "http://" + lis.Addr().String()},
		{name: "native", url: "http://" + backend},
	} {
		b.Run(bc.name, func(b *testing.B) {
			client := benchClient(b, bc.url, true, connect.WithGRPC())
			msg := &greetv1.GreetRequest{Name: name}
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := client.Greet(context.Background(), connect.NewRequest(msg)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
