package gateway_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/interceptor"
)

// connCounter counts the connections a grpc-go server accepted and still
// has open.
type connCounter struct {
	mu           sync.Mutex
	opened, open int
}

func (c *connCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (c *connCounter) HandleRPC(context.Context, stats.RPCStats)                       {}
func (c *connCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context {
	return ctx
}

func (c *connCounter) HandleConn(_ context.Context, s stats.ConnStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch s.(type) {
	case *stats.ConnBegin:
		c.opened++
		c.open++
	case *stats.ConnEnd:
		c.open--
	}
}

func (c *connCounter) counts() (opened, open int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened, c.open
}

// TestClientsSharedAcrossGateways: a second gateway built with the same
// Clients (a reload) reuses the connection of a backend configured alike,
// and a backend the new config drops is closed once the gateway that used
// it is closed.
func TestClientsSharedAcrossGateways(t *testing.T) {
	t.Parallel()
	keptConns, droppedConns := &connCounter{}, &connCounter{}
	kept := startBackend(t, nil, grpc.StatsHandler(keptConns))
	dropped := startBackend(t, nil, grpc.StatsHandler(droppedConns))
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin))
	if err != nil {
		t.Fatal(err)
	}
	clients := gateway.NewClients()
	build := func(backends ...gateway.Backend) *gateway.Gateway {
		t.Helper()
		g, err := gateway.New(gateway.Config{
			Backends: backends,
			Routes:   []gateway.Route{{Services: []string{"greet.v1.*"}, Backend: backends[0].Name}},
			Policy:   policy,
			Logger:   slog.New(slog.DiscardHandler),
			Clients:  clients,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = g.Close() })
		waitReady(t, g)
		return g
	}
	greet := func(g *gateway.Gateway) {
		t.Helper()
		url := serveHandler(t, g)
		c := newGreetClient(t, url, clientKinds()[1]) // gRPC-Web over HTTP/1.1
		if _, err := c.Greet(t.Context(), connect.NewRequest(&greetv1.GreetRequest{Name: "reload"})); err != nil {
			t.Fatal(err)
		}
	}
	keptB := gateway.Backend{Name: "kept", Addresses: []string{kept}, Files: greetFiles(t)}
	droppedB := gateway.Backend{Name: "dropped", Addresses: []string{dropped}, Files: greetFiles(t)}

	first := build(keptB, droppedB)
	greet(first)
	if clients.Len() != 2 {
		t.Fatalf("clients hold %d backends, want 2", clients.Len())
	}
	second := build(keptB)
	greet(second)
	if opened, _ := keptConns.counts(); opened != 1 {
		t.Errorf("the kept backend saw %d connections, want its one connection reused", opened)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if clients.Len() != 1 {
		t.Errorf("clients hold %d backends after the old gateway closed, want the kept one", clients.Len())
	}
	greet(second) // the kept connection outlives the old gateway
	if opened, open := keptConns.counts(); opened != 1 || open != 1 {
		t.Errorf("kept backend: %d opened, %d open; want 1 and 1", opened, open)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, open := droppedConns.counts(); open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the dropped backend's connection was never closed")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
