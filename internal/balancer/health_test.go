package balancer

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// healthBackend is greetd's service next to a grpc.health.v1 server the
// test sets.
type healthBackend struct {
	counted
	health *health.Server
}

func startHealthBackend(tb testing.TB) *healthBackend {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	b := &healthBackend{health: health.NewServer()}
	s := grpc.NewServer()
	greetv1.RegisterGreetServiceServer(s, greetsvc.NewGRPC(&greetsvc.Greeter{Record: func(greetsvc.Call) { b.calls.Add(1) }}))
	healthpb.RegisterHealthServer(s, b.health)
	go func() { _ = s.Serve(lis) }()
	tb.Cleanup(s.Stop)
	b.addr = lis.Addr().String()
	return b
}

// TestNotServing: a replica whose grpc.health.v1 says NOT_SERVING gets no
// new calls; SERVING brings it back.
func TestNotServing(t *testing.T) {
	t.Parallel()
	a, b := startHealthBackend(t), startHealthBackend(t)
	p := newPool(t, Config{Name: "greet", Addresses: []string{a.addr, b.addr}, HealthCheck: true, HealthInterval: 20 * time.Millisecond})
	ctx := context.Background()
	calls := func(n int) {
		t.Helper()
		for range n {
			if err := greet(ctx, p, greetRequest("x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	calls(20)
	if a.calls.Load() == 0 || b.calls.Load() == 0 {
		t.Fatalf("calls %d/%d: want both replicas used", a.calls.Load(), b.calls.Load())
	}

	a.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	eventually(t, 2*time.Second, "A not serving", func() bool { return status(p, a.addr).State == StateNotServing })
	before := a.calls.Load()
	calls(50)
	if got := a.calls.Load() - before; got != 0 {
		t.Errorf("the NOT_SERVING replica got %d calls", got)
	}

	a.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	eventually(t, 2*time.Second, "A ready again", func() bool { return status(p, a.addr).State == StateReady })
	before = a.calls.Load()
	calls(50)
	if got := a.calls.Load() - before; got < 20 {
		t.Errorf("the replica SERVING again got %d of 50 calls", got)
	}

	// Both NOT_SERVING: calls fail at once.
	a.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	b.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	eventually(t, 2*time.Second, "none serving", func() bool {
		return status(p, a.addr).State == StateNotServing && status(p, b.addr).State == StateNotServing
	})
	if err := greet(ctx, p, greetRequest("x")); err == nil {
		t.Error("a call succeeded with no replica serving")
	}
	if s := status(p, a.addr); s.Ejections != 0 {
		t.Errorf("NOT_SERVING counted as %d ejections", s.Ejections)
	}
}

// TestHealthCheckService: HealthService names the service asked about;
// one the backend does not know counts as not serving.
func TestHealthCheckService(t *testing.T) {
	t.Parallel()
	a := startHealthBackend(t)
	a.health.SetServingStatus("greet.v1.GreetService", healthpb.HealthCheckResponse_SERVING)
	p := newPool(t, Config{Addresses: []string{a.addr}, HealthCheck: true, HealthService: "greet.v1.GreetService", HealthInterval: 20 * time.Millisecond})
	if err := greet(context.Background(), p, greetRequest("x")); err != nil {
		t.Fatal(err)
	}
	a.health.SetServingStatus("greet.v1.GreetService", healthpb.HealthCheckResponse_NOT_SERVING)
	eventually(t, 2*time.Second, "not serving", func() bool { return status(p, a.addr).State == StateNotServing })

	q := newPool(t, Config{Addresses: []string{a.addr}, HealthCheck: true, HealthService: "unknown.Service", HealthInterval: 20 * time.Millisecond})
	eventually(t, 2*time.Second, "unknown service not serving", func() bool { return status(q, a.addr).State == StateNotServing })
}

// TestHealthCheckEjectsAndProbes: a replica that stops answering its
// health check is ejected, and back once it answers again.
func TestHealthCheckEjectsAndProbes(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	greetv1.RegisterGreetServiceServer(s, greetsvc.NewGRPC(nil))
	go func() { _ = s.Serve(lis) }()
	p := newPool(t, Config{Addresses: []string{addr}, HealthCheck: true, HealthInterval: 20 * time.Millisecond,
		RetryBase: 20 * time.Millisecond, RetryMax: 40 * time.Millisecond})
	eventually(t, 2*time.Second, "checked", func() bool { return status(p, addr).State == StateReady })
	s.Stop()
	eventually(t, 2*time.Second, "ejected", func() bool { return status(p, addr).State == StateEjected })

	lis2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	s2 := grpc.NewServer()
	healthpb.RegisterHealthServer(s2, health.NewServer())
	greetv1.RegisterGreetServiceServer(s2, greetsvc.NewGRPC(nil))
	go func() { _ = s2.Serve(lis2) }()
	t.Cleanup(s2.Stop)
	eventually(t, 2*time.Second, "ready again", func() bool { return status(p, addr).State == StateReady })
	if err := greet(context.Background(), p, greetRequest("x")); err != nil {
		t.Error(err)
	}
	if e := status(p, addr).Ejections; e != 1 {
		t.Errorf("%d ejections, want 1", e)
	}
}
