package e2e

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/corsgate/corsgate/gateway"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/greetd"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// startGateway starts greetd's grpc-go server and returns the gateway in front of it.
func startGateway(t *testing.T, greeter *greetsvc.Greeter, policy *interceptor.Policy) http.Handler {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := greetd.NewServer(greeter)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	g, err := gateway.New(gateway.Config{
		Backend:    lis.Addr().String(),
		Policy:     policy,
		WebSockets: &gateway.WebSocketConfig{}, // as corsgate serve --websockets
		// Warnings only: every env would log its descriptors otherwise.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := g.Ready(ctx); err != nil {
		t.Fatalf("gateway not ready: %v", err)
	}
	return g
}
