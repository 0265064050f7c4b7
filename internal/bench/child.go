package main

import (
	"context"
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
	childBackendEnv = "CORSGATE_BENCH_BACKEND" // the backend address, for roleRevProxy

	roleBackend  = "backend"  // greetd's grpc-go server
	roleRevProxy = "revproxy" // httputil.ReverseProxy over h2c to the backend
	roleDirect   = "direct"   // connect-go handler serving the service itself
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
	addrs, err := json.Marshal(childAddrs{Addr: lis.Addr().String(), Debug: debug})
	if err != nil {
		return err
	}
	var h http.Handler
	switch role {
	case roleBackend:
		if _, err := fmt.Fprintf(out, "%s\n", addrs); err != nil {
			return err
		}
		return greetd.Serve(ctx, greetd.NewServer(nil), lis, time.Second, logger)
	case roleDirect:
		mux := http.NewServeMux()
		mux.Handle(greetv1connect.NewGreetServiceHandler(greetsvc.NewConnect(nil)))
		h = mux
	case roleRevProxy:
		backend := os.Getenv(childBackendEnv)
		if backend == "" {
			return fmt.Errorf("%s not set", childBackendEnv)
		}
		h = newReverseProxy(backend)
	default:
		return fmt.Errorf("unknown role %q", role)
	}
	if _, err := fmt.Fprintf(out, "%s\n", addrs); err != nil {
		return err
	}
	return serveHTTP(ctx, lis, h)
}

// serveHTTP serves h with HTTP/1.1 and h2c (HTTP/2 without TLS) and no
// timeouts, as a streaming proxy must, until ctx ends.
func serveHTTP(ctx context.Context, lis net.Listener, h http.Handler) error {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Handler:   h,
		Protocols: &protocols,
		ErrorLog:  log.New(io.Discard, "", 0), // clients cancelled by the bench are no news
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
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

// serveDebug serves expvar's /debug/vars (runtime.MemStats included) on its
// own loopback port, so that the bench can read the heap in use.
func serveDebug() (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listen for debug: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/debug/vars", expvar.Handler())
	go func() { _ = http.Serve(lis, mux) }()
	return lis.Addr().String(), nil
}
