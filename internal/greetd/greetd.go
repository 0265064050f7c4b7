// Package greetd builds greetd, the example gRPC backend of corsgate's gateway:
// greet.v1.GreetService on plain grpc-go, with server reflection (v1 and
// v1alpha) and grpc.health.v1. The example/greetd command serves it; gateway
// tests, benchmarks and browser tests start the same server in-process.
package greetd

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// DefaultListen is the address greetd listens on when none is given.
const DefaultListen = "127.0.0.1:9090"

// DefaultGrace is how long [Serve] lets in-flight calls finish after its
// context ends before it cuts them.
const DefaultGrace = 10 * time.Second

// NewServer returns a grpc-go server carrying greet.v1.GreetService over g
// (a fresh [greetsvc.Greeter] when nil), server reflection and grpc.health.v1
// (the overall service "" and greet.v1.GreetService report SERVING). Every
// call is logged at debug level through slog.Default(). opts are passed to
// grpc.NewServer after greetd's own logging interceptors. The server is not
// started: hand it to [Serve] or call its Serve method.
func NewServer(g *greetsvc.Greeter, opts ...grpc.ServerOption) *grpc.Server {
	all := append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unaryLogger),
		grpc.ChainStreamInterceptor(streamLogger),
	}, opts...)
	s := grpc.NewServer(all...)
	greetv1.RegisterGreetServiceServer(s, greetsvc.NewGRPC(g))
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(greetv1.GreetService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(s, hs)
	reflection.Register(s)
	return s
}

// Serve serves s on lis until ctx ends, then stops gracefully: the listener
// closes and in-flight calls get grace to finish (<= 0 means [DefaultGrace])
// before the remaining ones are cut. logger (nil means slog.Default()) gets
// the start and stop lines. Serve returns nil after a shutdown caused by ctx,
// or the error that stopped serving.
func Serve(ctx context.Context, s *grpc.Server, lis net.Listener, grace time.Duration, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.Default()
	}
	if grace <= 0 {
		grace = DefaultGrace
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	logger.Info("greetd serving", "addr", lis.Addr().String())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	logger.Info("greetd shutting down", "grace", grace)
	stopped := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(stopped)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		logger.Warn("greetd grace expired; cutting remaining calls")
		s.Stop()
		<-stopped
	}
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	logger.Info("greetd stopped")
	return nil
}

func unaryLogger(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
	start := time.Now()
	res, err := next(ctx, req)
	logCall(ctx, info.FullMethod, err, start)
	return res, err
}

func streamLogger(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
	start := time.Now()
	err := next(srv, ss)
	logCall(ss.Context(), info.FullMethod, err, start)
	return err
}

func logCall(ctx context.Context, procedure string, err error, start time.Time) {
	slog.Default().LogAttrs(ctx, slog.LevelDebug, "call", slog.String("procedure", procedure),
		slog.String("code", status.Code(err).String()), slog.Duration("took", time.Since(start)))
}
