package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

// protocol is one way a client reaches a target: a wire protocol over
// HTTP/1.1 or h2c.
type protocol struct {
	name  string // flag value and map key
	label string // for the report
	h2c   bool   // HTTP/2 without TLS (prior knowledge) instead of HTTP/1.1
	opts  []connect.ClientOption
}

// Protocol names. The unary and streaming cases use the first three, the way
// browsers without TLS would (gRPC-Web and Connect over HTTP/1.1) and the way
// backends talk (gRPC over h2c). The memory case needs thousands of streams
// on few connections, so it prefers the h2c variants.
const (
	protoGRPCWeb    = "grpcweb"
	protoConnect    = "connect"
	protoGRPC       = "grpc"
	protoGRPCWebH2C = "grpcweb-h2c"
	protoConnectH2C = "connect-h2c"
)

var unaryProtocols = []string{protoGRPCWeb, protoConnect, protoGRPC}

var protocols = map[string]protocol{
	protoGRPCWeb:    {name: protoGRPCWeb, label: "gRPC-Web, HTTP/1.1", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
	protoConnect:    {name: protoConnect, label: "Connect, HTTP/1.1"},
	protoGRPC:       {name: protoGRPC, label: "gRPC, h2c", h2c: true, opts: []connect.ClientOption{connect.WithGRPC()}},
	protoGRPCWebH2C: {name: protoGRPCWebH2C, label: "gRPC-Web, h2c", h2c: true, opts: []connect.ClientOption{connect.WithGRPCWeb()}},
	protoConnectH2C: {name: protoConnectH2C, label: "Connect, h2c", h2c: true},
}

// benchOrigin is sent as Origin on every call, as a browser would: a
// CORS-aware gateway does its per-request work only for cross-origin calls.
const benchOrigin = "https://app.example.com"

// messageSize is the length of the name sent to Greet: the answer,
// "Hello, <name>!", is about as long.
const messageSize = 1024

var benchName = strings.Repeat("x", messageSize)

// wantGreeting is the length of Greet's answer to benchName.
var wantGreeting = len("Hello, " + benchName + "!")

// newHTTPClient returns a client for p that keeps up to conns idle
// connections to one host. Compression is off on both sides.
func newHTTPClient(p protocol, conns int) *http.Client {
	tr := &http.Transport{
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	if p.h2c {
		var protocols http.Protocols
		protocols.SetUnencryptedHTTP2(true)
		tr.Protocols = &protocols
	}
	return &http.Client{Transport: tr}
}

// newGreetClient returns a connect-go client of the greet service at addr
// speaking p. It sends Origin on every call and accepts no compression, so
// that every target moves the same bytes (connect-go handlers would
// otherwise gzip their answers and grpc-go backends would not).
func newGreetClient(hc *http.Client, addr string, p protocol) greetv1connect.GreetServiceClient {
	opts := append([]connect.ClientOption{
		connect.WithAcceptCompression("gzip", nil, nil),
		connect.WithInterceptors(originInterceptor{}),
	}, p.opts...)
	return greetv1connect.NewGreetServiceClient(hc, "http://"+addr, opts...)
}

// originInterceptor sets Origin on every request.
type originInterceptor struct{}

func (originInterceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Origin", benchOrigin)
		return next(ctx, req)
	}
}

func (originInterceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Origin", benchOrigin)
		return conn
	}
}

func (originInterceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// greetOnce makes one Greet call with the 1 KiB name and checks the answer.
func greetOnce(ctx context.Context, c greetv1connect.GreetServiceClient) error {
	res, err := c.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: benchName}))
	if err != nil {
		return err
	}
	if got := len(res.Msg.GetGreeting()); got != wantGreeting {
		return fmt.Errorf("greeting of %d bytes, want %d", got, wantGreeting)
	}
	return nil
}
