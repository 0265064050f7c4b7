package gateway_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"

	"github.com/corsgate/corsgate/gateway"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/greetsvc"
	"github.com/corsgate/corsgate/internal/testutil"
)

const testOrigin = "https://app.example.com"

// recorder keeps the calls a greetsvc.Greeter saw.
type recorder struct {
	mu    sync.Mutex
	calls []greetsvc.Call
}

func (r *recorder) record(c greetsvc.Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, c)
}

// startBackend serves greetd (grpc-go, reflection, health) on a loopback
// port and returns its address.
func startBackend(tb testing.TB, rec *recorder, opts ...grpc.ServerOption) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	return serveBackendOn(tb, lis, rec, opts...)
}

func serveBackendOn(tb testing.TB, lis net.Listener, rec *recorder, opts ...grpc.ServerOption) string {
	tb.Helper()
	g := &greetsvc.Greeter{}
	if rec != nil {
		g.Record = rec.record
	}
	return testutil.ServeGreetd(tb, lis, g, opts...)
}

type gatewayOption func(*gateway.Config)

// startGateway runs a gateway in front of backend on a loopback port
// (HTTP/1.1 and h2c) and returns it with its base URL. It waits for the
// descriptors unless noWait.
func startGateway(tb testing.TB, backend string, opts ...gatewayOption) (*gateway.Gateway, string) {
	tb.Helper()
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin))
	if err != nil {
		tb.Fatal(err)
	}
	cfg := gateway.Config{
		Backend: backend,
		Policy:  policy,
		Logger:  slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	g, err := gateway.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = g.Close() })
	url := serveHandler(tb, g)
	return g, url
}

// serveHandler serves h with HTTP/1.1 and h2c on a loopback port.
func serveHandler(tb testing.TB, h http.Handler) string {
	tb.Helper()
	return testutil.ServeHandler(tb, h)
}

func waitReady(tb testing.TB, g *gateway.Gateway) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Ready(ctx); err != nil {
		tb.Fatal(err)
	}
}

// httpClient returns a client over HTTP/1.1 or h2c that adds Origin to every
// request, as a browser page on testOrigin would.
func httpClient(tb testing.TB, h2 bool) *http.Client {
	tb.Helper()
	var p http.Protocols
	if h2 {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: &p, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: originTransport{tr}}
}

type originTransport struct{ next http.RoundTripper }

func (o originTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if r.Header.Get("Origin") == "" {
		r.Header.Set("Origin", testOrigin)
	}
	return o.next.RoundTrip(r)
}

// clientKind is one client configuration of the protocol matrix.
type clientKind struct {
	name  string
	h2    bool
	opts  []connect.ClientOption
	proto string // "connect", "grpcweb", "grpc"
}

func clientKinds() []clientKind {
	var out []clientKind
	for _, h2 := range []bool{false, true} {
		hv := "h1"
		if h2 {
			hv = "h2c"
		}
		for _, codec := range []string{"proto", "json"} {
			var codecOpts []connect.ClientOption
			if codec == "json" {
				codecOpts = append(codecOpts, connect.WithProtoJSON())
			}
			out = append(out,
				clientKind{name: "connect/" + codec + "/" + hv, h2: h2, proto: "connect", opts: codecOpts},
				clientKind{name: "grpcweb/" + codec + "/" + hv, h2: h2, proto: "grpcweb", opts: append([]connect.ClientOption{connect.WithGRPCWeb()}, codecOpts...)},
			)
			if h2 && codec == "proto" {
				out = append(out, clientKind{name: "grpc/proto/h2c", h2: true, proto: "grpc", opts: []connect.ClientOption{connect.WithGRPC()}})
			}
		}
	}
	return out
}

func newGreetClient(tb testing.TB, baseURL string, k clientKind, extra ...connect.ClientOption) greetv1connect.GreetServiceClient {
	tb.Helper()
	return greetv1connect.NewGreetServiceClient(httpClient(tb, k.h2), baseURL, append(append([]connect.ClientOption{}, k.opts...), extra...)...)
}

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(tb testing.TB) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

func readAll(tb testing.TB, r io.Reader) []byte {
	tb.Helper()
	b, err := io.ReadAll(r)
	if err != nil && !errors.Is(err, io.EOF) {
		tb.Fatal(err)
	}
	return b
}
