package gateway_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/greetd"
)

// ExampleNew puts a gateway in front of a grpc-go server with reflection,
// serves it on HTTP/1.1 and h2c, and calls it with gRPC-Web as a browser
// would.
func ExampleNew() {
	// The backend: plain grpc-go, with server reflection.
	backendLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	backend := greetd.NewServer(nil)
	go func() { _ = backend.Serve(backendLis) }()
	defer backend.Stop()

	// The gateway: descriptors by reflection, CORS for one origin.
	policy, err := interceptor.New(interceptor.WithAllowedOrigins("https://app.example.com"))
	if err != nil {
		log.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Backend: backendLis.Addr().String(), Policy: policy})
	if err != nil {
		log.Fatal(err)
	}
	defer g.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Ready(ctx); err != nil {
		log.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: g, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	defer srv.Close()

	client := greetv1connect.NewGreetServiceClient(http.DefaultClient, "http://"+lis.Addr().String(), connect.WithGRPCWeb())
	req := connect.NewRequest(&greetv1.GreetRequest{Name: "Ada"})
	req.Header().Set("Origin", "https://app.example.com")
	res, err := client.Greet(ctx, req)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Msg.GetGreeting())
	fmt.Println("Access-Control-Allow-Origin:", res.Header().Get("Access-Control-Allow-Origin"))
	fmt.Println("x-greet-trailer:", res.Trailer().Get("X-Greet-Trailer"))
	// Output:
	// Hello, Ada!
	// Access-Control-Allow-Origin: https://app.example.com
	// x-greet-trailer: greeted
}
