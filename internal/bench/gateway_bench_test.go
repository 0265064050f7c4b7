package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"github.com/improbable-eng/grpc-web/go/grpcweb"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/testutil"
)

// The gateway benchmarks run client, gateway and grpc-go backend in one
// process, so ns/op covers all three; they compare designs, not absolute
// speeds (the bench's main program compares processes, grpcwebproxy among
// them).
//
// "improbable" and "vanguard" are the starting designs of the issue:
// grpcweb.WrapHandler (gRPC-Web) and vanguard's transcoder (Connect) around an
// httputil.ReverseProxy over h2c, hardened as REFERENCE.md says.

func hardenedReverseProxy(tb testing.TB, backend string) *httputil.ReverseProxy {
	tb.Helper()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p, DisableCompression: true, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	tb.Cleanup(tr.CloseIdleConnections)
	target := &url.URL{Scheme: "http", Host: backend}
	return &httputil.ReverseProxy{
		Transport:     tr,
		FlushInterval: -1,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set("Te", "trailers")
		},
		ModifyResponse: func(res *http.Response) error {
			if res.ContentLength == 0 {
				res.Header.Del("Content-Length")
			}
			return nil
		},
	}
}

func improbableProxy(tb testing.TB, backend string) string {
	tb.Helper()
	wrapped := grpcweb.WrapHandler(hardenedReverseProxy(tb, backend),
		grpcweb.WithOriginFunc(func(string) bool { return true }),
		grpcweb.WithCorsForRegisteredEndpointsOnly(false))
	return testutil.ServeHandler(tb, wrapped)
}

func vanguardProxy(tb testing.TB, backend string) string {
	tb.Helper()
	rp := hardenedReverseProxy(tb, backend)
	svc := vanguard.NewService(greetv1connect.GreetServiceName, rp,
		vanguard.WithTargetProtocols(vanguard.ProtocolGRPC),
		vanguard.WithTargetCodecs(vanguard.CodecProto))
	tc, err := vanguard.NewTranscoder([]*vanguard.Service{svc})
	if err != nil {
		tb.Fatal(err)
	}
	return testutil.ServeHandler(tb, tc)
}

func benchClient(tb testing.TB, url string, h2 bool, opts ...connect.ClientOption) greetv1connect.GreetServiceClient {
	tb.Helper()
	var p http.Protocols
	if h2 {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: &p, MaxIdleConnsPerHost: 256, DialContext: (&net.Dialer{}).DialContext}
	tb.Cleanup(tr.CloseIdleConnections)
	return greetv1connect.NewGreetServiceClient(&http.Client{Transport: tr}, url, opts...)
}

// startGateway runs a gateway allowing appOrigin in front of backend, serves
// it over HTTP/1.1 and h2c, waits for its descriptors and returns its URL.
func startGateway(tb testing.TB, backend string, tracing ...*gateway.Tracing) string {
	tb.Helper()
	cfg := gateway.Config{
		Backend: backend,
		Policy:  newPolicy(tb, interceptor.WithAllowedOrigins(appOrigin)),
		Logger:  slog.New(slog.DiscardHandler),
	}
	if len(tracing) > 0 {
		cfg.Tracing = tracing[0]
	}
	g, err := gateway.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = g.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Ready(ctx); err != nil {
		tb.Fatal(err)
	}
	return testutil.ServeHandler(tb, g)
}

func BenchmarkUnary(b *testing.B) {
	backend := testutil.StartGreetd(b, nil)
	gw := startGateway(b, backend)
	traced := startGateway(b, backend, benchTracing(b))
	peer := improbableProxy(b, backend)
	vg := vanguardProxy(b, backend)
	name := strings.Repeat("n", 1024)
	cases := []struct {
		name string
		url  string
		h2   bool
		opts []connect.ClientOption
		// traceparent sends a browser's trace context with every call.
		traceparent bool
	}{
		{name: "corsgate/grpcweb/h1", url: gw, opts: []connect.ClientOption{connect.WithGRPCWeb()}},
		{name: "improbable/grpcweb/h1", url: peer, opts: []connect.ClientOption{connect.WithGRPCWeb()}},
		{name: "corsgate/connect/h1", url: gw},
		{name: "corsgate/connect/h1/traceparent", url: gw, traceparent: true},
		{name: "corsgate+traced/connect/h1", url: traced, traceparent: true},
		{name: "vanguard/connect/h1", url: vg},
		{name: "corsgate/grpcweb/h2c", url: gw, h2: true, opts: []connect.ClientOption{connect.WithGRPCWeb()}},
		{name: "corsgate/grpc/h2c", url: gw, h2: true, opts: []connect.ClientOption{connect.WithGRPC()}},
		{name: "native/grpc/h2c", url: "http://" + backend, h2: true, opts: []connect.ClientOption{connect.WithGRPC()}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			client := benchClient(b, bc.url, bc.h2, bc.opts...)
			msg := &greetv1.GreetRequest{Name: name}
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := connect.NewRequest(msg)
					if bc.traceparent {
						req.Header()["Traceparent"] = benchTraceparent
					}
					if _, err := client.Greet(context.Background(), req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkServerStream(b *testing.B) {
	backend := testutil.StartGreetd(b, nil)
	gw := startGateway(b, backend)
	peer := improbableProxy(b, backend)
	cases := []struct {
		name string
		url  string
		h2   bool
		opts []connect.ClientOption
	}{
		{name: "corsgate/grpcweb/h1", url: gw, opts: []connect.ClientOption{connect.WithGRPCWeb()}},
		{name: "improbable/grpcweb/h1", url: peer, opts: []connect.ClientOption{connect.WithGRPCWeb()}},
		{name: "corsgate/connect/h1", url: gw},
		{name: "native/grpc/h2c", url: "http://" + backend, h2: true, opts: []connect.ClientOption{connect.WithGRPC()}},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			client := benchClient(b, bc.url, bc.h2, bc.opts...)
			b.ReportAllocs()
			b.ResetTimer()
			// One stream of b.N messages: ns/op is per message.
			n := max(b.N, 1)
			stream, err := client.GreetStream(context.Background(), connect.NewRequest(&greetv1.GreetStreamRequest{Name: "s", Count: int32(min(n, 100000))}))
			if err != nil {
				b.Fatal(err)
			}
			got := 0
			for stream.Receive() {
				got++
			}
			if err := stream.Err(); err != nil {
				b.Fatal(err)
			}
			_ = stream.Close()
		})
	}
}
