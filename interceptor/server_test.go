package interceptor

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"connectrpc.com/connect"

	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// greetServer is a real connect-go GreetService on 127.0.0.1 behind a
// policy, speaking HTTP/1.1 and unencrypted HTTP/2.
type greetServer struct {
	URL   string
	mu    sync.Mutex
	calls []greetsvc.Call
}

func (s *greetServer) Calls() []greetsvc.Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]greetsvc.Call(nil), s.calls...)
}

// startGreet serves the greet service wrapped by p. inner, when not nil,
// wraps the connect handler inside the policy (to play an app that sets
// its own CORS headers).
func startGreet(tb testing.TB, p *Policy, inner func(http.Handler) http.Handler) *greetServer {
	tb.Helper()
	gs := &greetServer{}
	g := &greetsvc.Greeter{Record: func(c greetsvc.Call) {
		gs.mu.Lock()
		defer gs.mu.Unlock()
		gs.calls = append(gs.calls, c)
	}}
	path, h := greetv1connect.NewGreetServiceHandler(greetsvc.NewConnect(g))
	if inner != nil {
		h = inner(h)
	}
	mux := http.NewServeMux()
	mux.Handle(p.Wrap(path, h))
	srv := httptest.NewUnstartedServer(mux)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	tb.Cleanup(srv.Close)
	gs.URL = srv.URL
	return gs
}

// capture is a RoundTripper that sets Origin (when not empty) and keeps the
// raw response headers of the last response.
type capture struct {
	base   http.RoundTripper
	origin string
	mu     sync.Mutex
	header http.Header
	status int
}

func (c *capture) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if c.origin != "" {
		r.Header.Set("Origin", c.origin)
	}
	res, err := c.base.RoundTrip(r)
	if err == nil {
		c.mu.Lock()
		c.header, c.status = res.Header.Clone(), res.StatusCode
		c.mu.Unlock()
	}
	return res, err
}

func (c *capture) last() (http.Header, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.header, c.status
}

// protocol is one way a connect-go client can call.
type protocol struct {
	name  string
	opts  []connect.ClientOption
	http2 bool
}

var protocols = []protocol{
	{name: "connect", opts: nil},
	{name: "connect-get", opts: []connect.ClientOption{connect.WithHTTPGet()}},
	{name: "grpc-web", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
	{name: "grpc", opts: []connect.ClientOption{connect.WithGRPC()}, http2: true},
}

func newClient(tb testing.TB, url, origin string, pr protocol) (greetv1connect.GreetServiceClient, *capture) {
	tb.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	if pr.http2 {
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	tb.Cleanup(tr.CloseIdleConnections)
	c := &capture{base: tr, origin: origin}
	return greetv1connect.NewGreetServiceClient(&http.Client{Transport: c}, url, pr.opts...), c
}
