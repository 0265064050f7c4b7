// Command greetd is the example "existing gRPC service" of corsgate's gateway
// walkthrough: greet.v1.GreetService on plain grpc-go, with server reflection
// and grpc.health.v1. It stops gracefully on SIGINT or SIGTERM.
//
//	go run ./example/greetd --listen 127.0.0.1:9090
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/corsgate/corsgate/internal/greetd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr, nil)
	var usage usageError
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		os.Exit(2)
	case errors.As(err, &usage):
		fmt.Fprintln(os.Stderr, "greetd:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "greetd:", err)
		os.Exit(1)
	}
}

// usageError is a bad flag: greetd exits 2 for it, 1 for other failures.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// run parses args, serves until ctx ends and logs to logw. ready, when not
// nil, is told the address once the listener is open.
func run(ctx context.Context, args []string, logw io.Writer, ready func(net.Addr)) error {
	fs := flag.NewFlagSet("greetd", flag.ContinueOnError)
	fs.SetOutput(logw)
	listen := fs.String("listen", greetd.DefaultListen, "address to serve gRPC on (h2c)")
	level := fs.String("log-level", "info", "log level: debug, info, warn or error")
	grace := fs.Duration("shutdown-grace", greetd.DefaultGrace, "time in-flight calls get to finish on SIGINT/SIGTERM")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return usageError{fmt.Errorf("--log-level %q: want debug, info, warn or error", *level)}
	}
	lis, err := (&net.ListenConfig{}).Listen(ctx, "tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", *listen, err)
	}
	logger := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: lvl}))
	slog.SetDefault(logger) // greetd.NewServer logs calls through the default logger
	if ready != nil {
		ready(lis.Addr())
	}
	return greetd.Serve(ctx, greetd.NewServer(nil), lis, *grace, logger)
}
