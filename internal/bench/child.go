package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/internal/greetd"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// The bench re-executes itself with childEnv set to one of these roles.
const (
	childEnv        = "CORSGATE_BENCH_CHILD"
	childBackendEnv = "CORSGATE_BENCH_BACKEND" // the backend address, for roleRevProxy, roleHop and roleGRPCProxy

	roleBackend   = "backend"   // greetd's grpc-go server
	roleRevProxy  = "revproxy"  // httputil.ReverseProxy over h2c to the backend
	roleDirect    = "direct"    // connect-go handler serving the service itself, plain and TLS
	roleFloor     = "floor"     // canned gRPC-Web answers, plain and TLS (floor.go)
	roleHop       = "hop"       // calls the backend as the gateway does, on command (floor.go)
	roleGRPCProxy = "grpcproxy" // the pass-through floor: a gRPC proxy on grpc-go alone (grpcproxy.go)
)

// runChild serves role on 127.0.0.1 until SIGTERM, SIGINT or EOF on stdin
// (the bench holds the other end), after printing a [childAddrs] line on out.
func runChild(role string, out io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		stop()
	}()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	slog.SetDefault(logger) // greetd logs every call at debug level through the default logger

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	debug, err := serveDebug()
	if err != nil {
		return err
	}
	addrs := childAddrs{Addr: lis.Addr().String(), Debug: debug}
	var h http.Handler
	var tlsLis net.Listener // roles that also serve TLS
	var tlsConf *tls.Config
	switch role {
	case roleBackend:
		if err := printAddrs(out, addrs); err != nil {
			return err
		}
		return greetd.Serve(ctx, greetd.NewServer(nil), lis, time.Second, logger)
	case roleGRPCProxy:
		if err := printAddrs(out, addrs); err != nil {
			return err
		}
		return serveGRPCProxy(ctx, os.Getenv(childBackendEnv), lis)
	case roleDirect, roleFloor:
		if role == roleDirect {
			mux := http.NewServeMux()
			mux.Handle(greetv1connect.NewGreetServiceHandler(greetsvc.NewConnect(nil)))
			h = mux
		} else if h, err = newFloorHandler(); err != nil {
			return err
		}
		if tlsConf, err = childTLSConfig(); err != nil {
			return err
		}
		if tlsLis, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return fmt.Errorf("listen for TLS: %w", err)
		}
		addrs.TLS = tlsLis.Addr().String()
	case roleRevProxy:
		backend := os.Getenv(childBackendEnv)
		if backend == "" {
			return fmt.Errorf("%s not set", childBackendEnv)
		}
		h = newReverseProxy(backend)
	case roleHop:
		if h, err = newHopHandler(os.Getenv(childBackendEnv)); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	if err := printAddrs(out, addrs); err != nil {
		return err
	}
	return serveHTTP(ctx, h, lis, tlsLis, tlsConf)
}

func printAddrs(out io.Writer, a childAddrs) error {
	line, err := json.Marshal(a)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s\n", line)
	return err
}

// serveHTTP serves h on lis with HTTP/1.1 and h2c (HTTP/2 without TLS), and
// on tlsLis, when not nil, with TLS (tlsConf) and HTTP/1.1 or HTTP/2 by
// ALPN, with no timeouts, as a streaming proxy must, until ctx ends.
func serveHTTP(ctx context.Context, h http.Handler, lis, tlsLis net.Listener, tlsConf *tls.Config) error {
	var plain, secure http.Protocols
	plain.SetHTTP1(true)
	plain.SetUnencryptedHTTP2(true)
	secure.SetHTTP1(true)
	secure.SetHTTP2(true)
	quiet := log.New(io.Discard, "", 0) // clients cancelled by the bench are no news
	servers := []*http.Server{{Handler: h, Protocols: &plain, ErrorLog: quiet}}
	served := make(chan error, 2)
	go func() { served <- servers[0].Serve(lis) }()
	if tlsLis != nil {
		srv := &http.Server{Handler: h, Protocols: &secure, TLSConfig: tlsConf, ErrorLog: quiet}
		servers = append(servers, srv)
		go func() { served <- srv.ServeTLS(tlsLis, "", "") }()
	}
	var err error
	select {
	case err = <-served:
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, srv := range servers {
		if srv.Shutdown(shut) != nil {
			_ = srv.Close()
		}
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newReverseProxy passes gRPC through to an h2c backend: the least any proxy
// does. TE is set in Rewrite because the proxy drops hop-by-hop headers
// before Rewrite runs, and grpc-go refuses requests without "TE: trailers".
func newReverseProxy(backend string) http.Handler {
	target := &url.URL{Scheme: "http", Host: backend}
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Set("Te", "trailers")
		},
		Transport: &http.Transport{
			Protocols:          &protocols,
			DisableCompression: true,
			MaxIdleConns:       100,
			IdleConnTimeout:    90 * time.Second,
		},
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
}

// serveDebug serves expvar's /debug/vars (runtime.MemStats included, and
// heapAllocs: [allocCount] from runtime/metrics) on its own loopback port, so
// that the bench can read the heap in use and the allocations.
func serveDebug() (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen for debug: %w", err)
	}
	mux := http.NewServeMux()
	expvar.Publish("heapAllocs", expvar.Func(readHeapAllocs))
	mux.Handle("/debug/vars", expvar.Handler())
	go func() { _ = http.Serve(lis, mux) }()
	return lis.Addr().String(), nil
}
