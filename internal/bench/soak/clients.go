package main

import (
	"net/http"
	"time"

	"connectrpc.com/connect"

	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

// Protocol names, as the report's rows show them. "-h2c" is HTTP/2 without
// TLS; the others use HTTP/1.1, as a browser without TLS would, except gRPC,
// which needs HTTP/2.
const (
	protoGRPCWeb    = "grpc-web"
	protoConnect    = "connect"
	protoConnectGET = "connect-get"
	protoGRPC       = "grpc"
	protoGRPCWebH2C = "grpc-web-h2c"
	protoConnectH2C = "connect-h2c"
)

// clients holds one HTTP client per HTTP version and a connect-go client per
// protocol, shared by every caller.
type clients struct {
	base  string // http://host:port of the gateway
	h1    *http.Client
	h2c   *http.Client
	greet map[string]greetv1connect.GreetServiceClient
}

func newClients(addr string, conns int) *clients {
	c := &clients{
		base:  "http://" + addr,
		h1:    newHTTPClient(false, conns),
		h2c:   newHTTPClient(true, conns),
		greet: map[string]greetv1connect.GreetServiceClient{},
	}
	for name, p := range map[string]struct {
		h2c  bool
		opts []connect.ClientOption
	}{
		protoGRPCWeb:    {opts: []connect.ClientOption{connect.WithGRPCWeb()}},
		protoConnect:    {},
		protoConnectGET: {opts: []connect.ClientOption{connect.WithHTTPGet()}},
		protoGRPC:       {h2c: true, opts: []connect.ClientOption{connect.WithGRPC()}},
		protoGRPCWebH2C: {h2c: true, opts: []connect.ClientOption{connect.WithGRPCWeb()}},
		protoConnectH2C: {h2c: true},
	} {
		hc := c.h1
		if p.h2c {
			hc = c.h2c
		}
		c.greet[name] = greetv1connect.NewGreetServiceClient(hc, c.base, p.opts...)
	}
	return c
}

// newHTTPClient returns a client keeping up to conns idle connections, over
// HTTP/1.1 or h2c (HTTP/2 with prior knowledge, no TLS).
func newHTTPClient(h2c bool, conns int) *http.Client {
	tr := &http.Transport{
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
	}
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	return &http.Client{Transport: tr}
}

// closeIdle drops every idle connection to the gateway, so that the
// gateway's per-connection goroutines can end before they are counted.
func (c *clients) closeIdle() {
	c.h1.CloseIdleConnections()
	c.h2c.CloseIdleConnections()
	http.DefaultClient.CloseIdleConnections()
}
