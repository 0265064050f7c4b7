package gateway_test

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/greetd"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// hardStartBackend is startBackend that also returns the server, for
// tests that stop it.
func hardStartBackend(tb testing.TB, opts ...grpc.ServerOption) (string, *grpc.Server) {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := greetd.NewServer(&greetsvc.Greeter{}, opts...)
	go func() { _ = s.Serve(lis) }()
	tb.Cleanup(s.Stop)
	return lis.Addr().String(), s
}

// hardProxy forwards loopback connections to a target and can cut them all
// at once with a reset, as a backend that is killed (no GOAWAY, no FIN).
type hardProxy struct {
	lis    net.Listener
	target string
	mu     sync.Mutex
	conns  []*net.TCPConn
}

func hardStartProxy(tb testing.TB, target string) *hardProxy {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &hardProxy{lis: lis, target: target}
	go p.accept()
	tb.Cleanup(func() { p.kill(); _ = lis.Close() })
	return p
}

func (p *hardProxy) addr() string { return p.lis.Addr().String() }

func (p *hardProxy) accept() {
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c.(*net.TCPConn), b.(*net.TCPConn))
		p.mu.Unlock()
		go func() { _, _ = io.Copy(b, c); _ = b.Close() }()
		go func() { _, _ = io.Copy(c, b); _ = c.Close() }()
	}
}

// kill resets every connection through the proxy.
func (p *hardProxy) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.SetLinger(0)
		_ = c.Close()
	}
	p.conns = nil
}

// hardPreflightThenCall does what a browser does for a gRPC-Web call: a
// preflight, then (if granted) the call. It returns the preflight status
// and the call's response.
func hardPreflightThenCall(tb testing.TB, gwURL string) (int, hardResponse) {
	tb.Helper()
	pre, err := http.NewRequest(http.MethodOptions, gwURL+hardGreetPrefix+"Greet", nil)
	if err != nil {
		tb.Fatal(err)
	}
	pre.Header.Set("Origin", testOrigin)
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "content-type,x-grpc-web,x-user-agent")
	res, err := httpClient(tb, false).Do(pre)
	if err != nil {
		tb.Fatal(err)
	}
	_ = res.Body.Close()
	call := hardPost(tb, gwURL, hardGreetPrefix+"Greet", "application/grpc-web-text",
		[]byte(hardEncodeText(encodeFrame(0, mustMarshal(tb, &greetv1.GreetRequest{Name: "Up"})))), http.Header{"X-Grpc-Web": {"1"}})
	return res.StatusCode, call
}

// TestBackendNotUpAtStart starts the gateway before its backend,
// with descriptors from a file, from the config's services, and from
// reflection: the gateway starts, /healthz says not ready, a browser's
// preflight and call get UNAVAILABLE with CORS headers (so the page can
// read the error); once the backend is up, calls succeed without a restart.
func TestBackendNotUpAtStart(t *testing.T) {
	t.Parallel()
	services := []interceptor.Service{{Name: "greet.v1.GreetService", Procedures: []interceptor.Procedure{{Name: "Greet", Methods: []string{"POST"}}}}}
	tests := []struct {
		name string
		opts func(tb testing.TB) []gatewayOption
	}{
		{name: "descriptor file", opts: func(tb testing.TB) []gatewayOption { return []gatewayOption{hardFilesOption(tb)} }},
		{name: "config services, reflection", opts: func(testing.TB) []gatewayOption {
			return []gatewayOption{func(c *gateway.Config) { c.Services = services }}
		}},
		{name: "reflection", opts: func(testing.TB) []gatewayOption { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr := freeAddr(t)
			g, gwURL := startGateway(t, addr, append(tt.opts(t), func(c *gateway.Config) { c.ReflectionInterval = 50 * time.Millisecond })...)
			res, err := http.Get(gwURL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			_ = res.Body.Close()
			if res.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("/healthz = %d with the backend down, want 503", res.StatusCode)
			}
			t.Run("browser call while down", func(t *testing.T) {
				status, call := hardPreflightThenCall(t, gwURL)
				if status != http.StatusNoContent {
					t.Fatalf("preflight = %d with the backend down; the browser then reports a CORS error, not UNAVAILABLE", status)
				}
				hardCheckGRPCWebError(t, call, true, "14")
			})

			lis, err := net.Listen("tcp", addr)
			if err != nil {
				t.Skipf("the port was taken meanwhile: %v", err)
			}
			serveBackendOn(t, lis, nil)
			waitReady(t, g)
			deadline := time.Now().Add(10 * time.Second)
			for {
				status, call := hardPreflightThenCall(t, gwURL)
				if status == http.StatusNoContent && call.status == http.StatusOK {
					if n, tr := hardGRPCWebStatus(t, call.body, true); n == 1 && tr["grpc-status"] == "0" {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("still failing 10s after the backend came up: preflight %d, call %d %q", status, call.status, call.body)
				}
				time.Sleep(50 * time.Millisecond)
			}
			res, err = http.Get(gwURL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			_ = res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("/healthz = %d with the backend up", res.StatusCode)
			}
		})
	}
}

// hardStreamKinds are the client configurations of the stream fault tests: the
// browser protocols over HTTP/1.1 and h2c, and gRPC.
func hardStreamKinds() []clientKind {
	var out []clientKind
	for _, k := range clientKinds() {
		if !strings.Contains(k.name, "/json/") {
			out = append(out, k)
		}
	}
	return out
}

// TestBackendKilledMidStream opens a server stream, lets a few
// messages through, then kills the backend: stopped by grpc-go (GOAWAY and
// stream resets) or its connections reset under it (a crash). The client's
// stream must end promptly with UNAVAILABLE, not hang and not end cleanly.
func TestBackendKilledMidStream(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"stop", "reset"} {
		for _, k := range hardStreamKinds() {
			t.Run(how+"/"+k.name, func(t *testing.T) {
				t.Parallel()
				addr, srv := hardStartBackend(t)
				backend := addr
				var proxy *hardProxy
				if how == "reset" {
					proxy = hardStartProxy(t, addr)
					backend = proxy.addr()
				}
				_, gwURL := startGateway(t, backend, hardFilesOption(t))
				client := newGreetClient(t, gwURL, k)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				defer cancel()
				stream, err := client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "K", Count: 10000, IntervalMs: 20}))
				if err != nil {
					t.Fatal(err)
				}
				defer stream.Close()
				for range 3 {
					if !stream.Receive() {
						t.Fatalf("stream ended before the kill: %v", stream.Err())
					}
				}
				killed := time.Now()
				if how == "stop" {
					srv.Stop()
				} else {
					proxy.kill()
				}
				n := 0
				for stream.Receive() {
					n++
				}
				took := time.Since(killed)
				if took > 5*time.Second {
					t.Errorf("the stream ended %v after the kill; want promptly", took)
				}
				if n > 10 {
					t.Errorf("%d messages after the kill", n)
				}
				if got := connect.CodeOf(stream.Err()); got != connect.CodeUnavailable {
					t.Errorf("stream ended with %v (%v), want unavailable", got, stream.Err())
				}
			})
		}
	}
}

// hardCancelWatch records, for calls whose request carries the name "watch",
// when the backend's context ended. Unary calls named "watch" wait for
// their context (up to 30 s) before answering.
type hardCancelWatch struct {
	started chan struct{}
	done    chan time.Time
}

func newHardCancelWatch() *hardCancelWatch {
	return &hardCancelWatch{started: make(chan struct{}, 16), done: make(chan time.Time, 16)}
}

func (w *hardCancelWatch) options() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
			if r, ok := req.(*greetv1.GreetRequest); ok && r.GetName() == "watch" {
				w.started <- struct{}{}
				select {
				case <-ctx.Done():
					w.done <- time.Now()
					return nil, ctx.Err()
				case <-time.After(30 * time.Second):
				}
			}
			return next(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
			go func() {
				select {
				case <-ss.Context().Done():
					w.done <- time.Now()
				case <-time.After(30 * time.Second):
				}
			}()
			w.started <- struct{}{}
			return next(srv, ss)
		}),
	}
}

// wait returns how long after gone the backend saw its context end.
func (w *hardCancelWatch) wait(tb testing.TB, gone time.Time) time.Duration {
	tb.Helper()
	select {
	case at := <-w.done:
		return at.Sub(gone)
	case <-time.After(5 * time.Second):
		tb.Fatal("the backend's call was still running 5s after the client went away")
		return 0
	}
}

// TestClientGoesAway drops the client's TCP connection, without a
// cancel or RST_STREAM, in the middle of a server stream and of a slow unary
// call, over HTTP/1.1 and h2c: the backend must see its context end within
// one second.
func TestClientGoesAway(t *testing.T) {
	t.Parallel()
	for _, call := range []string{"stream", "unary"} {
		for _, h2 := range []bool{false, true} {
			name := call + map[bool]string{false: "/h1", true: "/h2c"}[h2]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				w := newHardCancelWatch()
				backend := startBackend(t, nil, w.options()...)
				_, gwURL := startGateway(t, backend, hardFilesOption(t))

				var (
					mu   sync.Mutex
					conn net.Conn
				)
				var p http.Protocols
				if h2 {
					p.SetUnencryptedHTTP2(true)
				} else {
					p.SetHTTP1(true)
				}
				tr := &http.Transport{Protocols: &p, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
					mu.Lock()
					conn = c
					mu.Unlock()
					return c, err
				}}
				t.Cleanup(tr.CloseIdleConnections)
				path, body := hardGreetPrefix+"GreetStream", encodeFrame(0, mustMarshal(t, &greetv1.GreetStreamRequest{Name: "G", Count: 10000, IntervalMs: 20}))
				if call == "unary" {
					path, body = hardGreetPrefix+"Greet", encodeFrame(0, mustMarshal(t, &greetv1.GreetRequest{Name: "watch"}))
				}
				req, err := http.NewRequest(http.MethodPost, gwURL+path, strings.NewReader(string(body)))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/grpc-web+proto")
				req.Header.Set("Origin", testOrigin)
				errc := make(chan error, 1)
				go func() {
					res, err := (&http.Client{Transport: tr}).Do(req)
					if err == nil {
						_, err = io.Copy(io.Discard, res.Body)
						_ = res.Body.Close()
					}
					errc <- err
				}()
				select {
				case <-w.started:
				case <-time.After(10 * time.Second):
					t.Fatal("the call never reached the backend")
				}
				time.Sleep(100 * time.Millisecond) // let the stream flow
				mu.Lock()
				gone := time.Now()
				_ = conn.Close()
				mu.Unlock()
				if d := w.wait(t, gone); d > time.Second {
					t.Errorf("the backend saw its context end %v after the client went away; want within 1s", d)
				}
				<-errc
			})
		}
	}
}

// hardEncodeText is the gRPC-Web text form of a binary body.
func hardEncodeText(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
