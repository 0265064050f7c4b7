package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

// transport is how a client's bytes reach a target.
type transport int

const (
	h1    transport = iota // HTTP/1.1, plain TCP
	h2c                    // HTTP/2 without TLS (prior knowledge)
	h1TLS                  // HTTP/1.1 over TLS (ALPN http/1.1)
	h2TLS                  // HTTP/2 over TLS (ALPN h2)
)

func (tr transport) tls() bool { return tr == h1TLS || tr == h2TLS }

// alpn is what a TLS connection of tr must negotiate.
func (tr transport) alpn() string {
	if tr == h2TLS {
		return "h2"
	}
	return "http/1.1"
}

// describe says what tr is, for the report's legend.
func (tr transport) describe() string {
	return [...]string{
		h1:    "HTTP/1.1 over plain TCP",
		h2c:   "HTTP/2 over plain TCP (h2c, prior knowledge)",
		h1TLS: "HTTP/1.1 over TLS 1.3 (ALPN http/1.1)",
		h2TLS: "HTTP/2 over TLS 1.3 (ALPN h2)",
	}[tr]
}

// protocol is one way a client reaches a target: a wire protocol over a
// transport. Its name, "wire/transport", is what the flags take and the
// report shows.
type protocol struct {
	name      string
	wire      string // for the legend: gRPC-Web, Connect, gRPC
	transport transport
	opts      []connect.ClientOption
}

// Protocol names. The unary and streaming cases use the default list: the
// way browsers call without TLS (gRPC-Web and Connect over HTTP/1.1) and
// with it (HTTP/1.1 or HTTP/2 over TLS), and the way backends talk (gRPC
// over h2c or TLS). The memory case needs thousands of streams on few
// connections, so it prefers the h2c variants.
const (
	protoGRPCWebH1    = "grpc-web/h1"
	protoConnectH1    = "connect/h1"
	protoGRPCH2C      = "grpc/h2c"
	protoGRPCWebH2C   = "grpc-web/h2c"
	protoConnectH2C   = "connect/h2c"
	protoGRPCWebH1TLS = "grpc-web/h1-tls"
	protoConnectH1TLS = "connect/h1-tls"
	protoGRPCWebH2TLS = "grpc-web/h2-tls"
	protoConnectH2TLS = "connect/h2-tls"
	protoGRPCH2TLS    = "grpc/h2-tls"
)

// unaryProtocols is the default -protocols list, in the report's order.
var unaryProtocols = []string{
	protoGRPCWebH1, protoConnectH1, protoGRPCH2C,
	protoGRPCWebH1TLS, protoConnectH1TLS, protoGRPCWebH2TLS, protoConnectH2TLS, protoGRPCH2TLS,
}

// allProtocols is every protocol, in the report's order.
var allProtocols = append(append([]string(nil), unaryProtocols...), protoGRPCWebH2C, protoConnectH2C)

var protocols = func() map[string]protocol {
	wires := map[string][]connect.ClientOption{
		"grpc-web": {connect.WithGRPCWeb()},
		"connect":  nil,
		"grpc":     {connect.WithGRPC()},
	}
	wireLabel := map[string]string{"grpc-web": "gRPC-Web", "connect": "Connect", "grpc": "gRPC"}
	transports := map[string]transport{"h1": h1, "h2c": h2c, "h1-tls": h1TLS, "h2-tls": h2TLS}
	m := map[string]protocol{}
	for _, name := range allProtocols {
		wire, tr, _ := strings.Cut(name, "/")
		m[name] = protocol{name: name, wire: wireLabel[wire], transport: transports[tr], opts: wires[wire]}
	}
	return m
}()

// benchOrigin is sent as Origin on every call, as a browser would: a
// CORS-aware gateway does its per-request work only for cross-origin calls.
const benchOrigin = "https://app.example.com"

// messageSize is the length of the name sent to Greet: the answer,
// "Hello, <name>!", is about as long.
const messageSize = 1024

var benchName = strings.Repeat("x", messageSize)

// wantGreeting is the length of Greet's answer to benchName.
var wantGreeting = len("Hello, " + benchName + "!")

// newTransport returns an HTTP transport for p that keeps up to conns idle
// connections to one host and trusts roots over TLS. Compression is off on
// both sides. Over TLS it offers only the ALPN protocol p's transport names.
func newTransport(p protocol, conns int, roots *x509.CertPool) *http.Transport {
	tr := &http.Transport{
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	var protos http.Protocols
	switch p.transport {
	case h1, h1TLS:
		protos.SetHTTP1(true)
	case h2c:
		protos.SetUnencryptedHTTP2(true)
	case h2TLS:
		protos.SetHTTP2(true)
	}
	tr.Protocols = &protos
	if p.transport.tls() {
		// net/http sets ALPN only when it speaks HTTP/2; a browser
		// talking HTTP/1.1 over TLS offers http/1.1 by ALPN.
		tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12, NextProtos: []string{p.transport.alpn()}}
	}
	return tr
}

// newHTTPClient is [newTransport] in a client that checks the HTTP version
// of every answer ([checkedProto]).
func newHTTPClient(p protocol, conns int, roots *x509.CertPool) *http.Client {
	return &http.Client{Transport: checkedProto{next: newTransport(p, conns, roots), p: p}}
}

// newGreetClient returns a connect-go client of the greet service at addr
// speaking p. It sends Origin on every call and accepts no compression, so
// that every target moves the same bytes (connect-go handlers would
// otherwise gzip their answers and grpc-go backends would not).
func newGreetClient(hc connect.HTTPClient, addr string, p protocol) greetv1connect.GreetServiceClient {
	opts := append([]connect.ClientOption{
		connect.WithAcceptCompression("gzip", nil, nil),
		connect.WithInterceptors(originInterceptor{}),
	}, p.opts...)
	scheme := "http://"
	if p.transport.tls() {
		scheme = "https://"
	}
	return greetv1connect.NewGreetServiceClient(hc, scheme+addr, opts...)
}

// checkedProto wraps a transport and checks that every response came over
// the HTTP version p's transport names: a target that quietly fell back to
// HTTP/1.1 would otherwise be measured under an HTTP/2 label.
type checkedProto struct {
	next http.RoundTripper
	p    protocol
}

// CloseIdleConnections closes the wrapped transport's idle connections
// (http.Client.CloseIdleConnections calls it).
func (c checkedProto) CloseIdleConnections() {
	if ci, ok := c.next.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

func (c checkedProto) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := c.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	want := 1
	if c.p.transport == h2c || c.p.transport == h2TLS {
		want = 2
	}
	switch {
	case res.ProtoMajor != want:
		err = fmt.Errorf("%s: the answer came over %s", c.p.name, res.Proto)
	case c.p.transport.tls() && res.TLS == nil:
		err = fmt.Errorf("%s: the answer came without TLS", c.p.name)
	case c.p.transport.tls() && res.TLS.NegotiatedProtocol != c.p.transport.alpn():
		err = fmt.Errorf("%s: TLS negotiated ALPN %q, want %q", c.p.name, res.TLS.NegotiatedProtocol, c.p.transport.alpn())
	}
	if err != nil {
		_ = res.Body.Close()
		return nil, err
	}
	return res, nil
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
