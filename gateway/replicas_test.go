package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/greetsvc"
	"github.com/corsgate/corsgate/internal/testutil"
)

func TestMain(m *testing.M) {
	// The replica tests SIGKILL greetd: it runs as this binary, again.
	testutil.RunGreetdProcess()
	os.Exit(m.Run())
}

// greetFiles are the greet service's descriptors, so that replica tests
// need no reflection.
func greetFiles(tb testing.TB) *protoregistry.Files {
	tb.Helper()
	files, err := protodesc.NewFiles(testutil.DescriptorSet(greetv1.File_greet_v1_greet_proto))
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

// startReplicated runs a gateway whose one backend has the given replica
// addresses, with metrics, and returns it with its base URL.
func startReplicated(tb testing.TB, backend gateway.Backend, resolver gateway.Resolver) (*gateway.Gateway, string, *prometheus.Registry) {
	tb.Helper()
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin))
	if err != nil {
		tb.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics, err := gateway.NewMetrics(reg)
	if err != nil {
		tb.Fatal(err)
	}
	backend.Files = greetFiles(tb)
	g, err := gateway.New(gateway.Config{
		Policy:   policy,
		Backends: []gateway.Backend{backend},
		Logger:   slog.New(slog.DiscardHandler),
		Metrics:  metrics,
		Resolver: resolver,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = g.Close() })
	return g, testutil.ServeHandler(tb, g), reg
}

// counterValue sums the series of a counter family whose labels include
// want.
func counterValue(tb testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	tb.Helper()
	families, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			matched := 0
			for _, l := range m.GetLabel() {
				if v, ok := want[l.GetName()]; ok && v == l.GetValue() {
					matched++
				}
			}
			if matched == len(want) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestReplicaKilledBehindGateway: 64 browser-style callers (gRPC-Web over
// HTTP/1.1) for 20 s through the gateway to three greetd processes; one is
// SIGKILLed at 5 s and started again on its address at 10 s. Calls in flight
// on it may fail with UNAVAILABLE; every call started after the kill
// succeeds; after the restart it takes calls again within 5 s. With -short
// every time is a quarter.
func TestReplicaKilledBehindGateway(t *testing.T) {
	t.Parallel()
	scale := time.Duration(4)
	if testing.Short() {
		scale = 1
	}
	killAfter, restartAfter, runFor := scale*1250*time.Millisecond, scale*2500*time.Millisecond, scale*5*time.Second
	const callers = 64

	procs := []*testutil.GreetdProcess{
		testutil.StartGreetdProcess(t, "127.0.0.1:0"),
		testutil.StartGreetdProcess(t, "127.0.0.1:0"),
		testutil.StartGreetdProcess(t, "127.0.0.1:0"),
	}
	victim := procs[1]
	_, url, reg := startReplicated(t, gateway.Backend{Name: "greet", Addresses: []string{procs[0].Addr, procs[1].Addr, procs[2].Addr}}, nil)
	client := greetv1connect.NewGreetServiceClient(httpClient(t, false), url, connect.WithGRPCWeb())

	var killedAt atomic.Int64 // unix nanoseconds once the victim's process ended
	var calls, ok, inFlightFailed, lateFailed, otherFailed atomic.Int64
	var mu sync.Mutex
	var samples []string
	note := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if len(samples) < 5 {
			samples = append(samples, err.Error())
		}
	}
	start := time.Now()
	stop := start.Add(runFor)
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for time.Now().Before(stop) {
				began := time.Now().UnixNano()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				res, err := client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "Ada"}))
				cancel()
				calls.Add(1)
				k := killedAt.Load()
				switch {
				case err == nil && res.Msg.GetGreeting() == "Hello, Ada!":
					ok.Add(1)
				case err == nil:
					otherFailed.Add(1)
					note(errors.New("wrong greeting " + res.Msg.GetGreeting()))
				case connect.CodeOf(err) != connect.CodeUnavailable:
					otherFailed.Add(1)
					note(err)
				case k != 0 && began > k:
					lateFailed.Add(1)
					note(err)
				default:
					inFlightFailed.Add(1)
					note(err)
				}
			}
		})
	}

	time.Sleep(time.Until(start.Add(killAfter)))
	victim.Kill()
	killedAt.Store(time.Now().UnixNano())
	time.Sleep(time.Until(start.Add(restartAfter)))
	before := counterValue(t, reg, "corsgate_backend_replica_transitions_total", map[string]string{"backend": "greet", "state": "ready"})
	testutil.StartGreetdProcess(t, victim.Addr)
	restartedAt := time.Now()
	var backIn time.Duration
	for deadline := restartedAt.Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if counterValue(t, reg, "corsgate_backend_replica_transitions_total", map[string]string{"backend": "greet", "state": "ready"}) > before {
			backIn = time.Since(restartedAt)
			break
		}
	}
	wg.Wait()

	ejections := counterValue(t, reg, "corsgate_backend_replica_transitions_total", map[string]string{"backend": "greet", "state": "ejected"})
	t.Logf("%d callers, %v: %d calls, %d ok, %d failed in flight at the kill, %d failed after it, %d other failures; ejections %v; back %v after the restart",
		callers, runFor, calls.Load(), ok.Load(), inFlightFailed.Load(), lateFailed.Load(), otherFailed.Load(), ejections, backIn.Round(time.Millisecond))
	if len(samples) > 0 {
		t.Logf("failures seen: %q", samples)
	}
	if lateFailed.Load() != 0 || otherFailed.Load() != 0 {
		t.Errorf("%d calls started after the kill failed, %d failed otherwise: want none", lateFailed.Load(), otherFailed.Load())
	}
	if ok.Load() < calls.Load()/2 || ok.Load() < 500 {
		t.Errorf("only %d of %d calls succeeded", ok.Load(), calls.Load())
	}
	if ejections < 1 {
		t.Errorf("the killed replica was never ejected (metric corsgate_backend_replica_transitions_total{state=\"ejected\"} = %v)", ejections)
	}
	if backIn == 0 {
		t.Errorf("the restarted replica was not ready again within 5 s")
	}
}

// dnsAnswers is a resolver whose answer the test changes.
type dnsAnswers struct {
	mu    sync.Mutex
	hosts []string
}

func (d *dnsAnswers) LookupHost(context.Context, string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.hosts), nil
}

func (d *dnsAnswers) set(hosts ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hosts = hosts
}

// TestReplicasFollowDNS: a dns:/// backend whose answer moves from one
// loopback address to another moves the traffic with it, with no call
// failing, and the replica that left the answer gets no more calls.
func TestReplicasFollowDNS(t *testing.T) {
	t.Parallel()
	first, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(first.Addr().String())
	second, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", port))
	if err != nil {
		t.Skipf("127.0.0.2 is not usable here: %v", err)
	}
	var seen [2]atomic.Int64
	for i, lis := range []net.Listener{first, second} {
		testutil.ServeGreetd(t, lis, &greetsvc.Greeter{Record: func(greetsvc.Call) { seen[i].Add(1) }})
	}
	dns := &dnsAnswers{hosts: []string{"127.0.0.1"}}
	_, url, _ := startReplicated(t, gateway.Backend{
		Name:            "greet",
		Addresses:       []string{"dns:///greet.test:" + port},
		ResolveInterval: 100 * time.Millisecond,
	}, dns)
	client := greetv1connect.NewGreetServiceClient(httpClient(t, true), url, connect.WithGRPC())

	var failed atomic.Int64
	var calls atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_, err := client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "Ada"}))
				cancel()
				calls.Add(1)
				if err != nil {
					failed.Add(1)
					t.Errorf("call failed while the answer moved: %v", err)
				}
			}
		})
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (calls %d, first %d, second %d)", what, calls.Load(), seen[0].Load(), seen[1].Load())
			}
		}
	}
	waitFor("calls on the first address", func() bool { return seen[0].Load() > 50 })
	dns.set("127.0.0.2")
	waitFor("calls on the second address", func() bool { return seen[1].Load() > 50 })
	// Calls the first address took before the answer moved have ended by
	// now; it must get no more.
	time.Sleep(200 * time.Millisecond)
	firstAfter := seen[0].Load()
	secondAfter := seen[1].Load()
	waitFor("more calls on the second address", func() bool { return seen[1].Load() > secondAfter+50 })
	close(stop)
	wg.Wait()
	if got := seen[0].Load(); got != firstAfter {
		t.Errorf("the address that left the answer took %d more calls", got-firstAfter)
	}
	t.Logf("%d calls, %d failed; first address %d, second %d", calls.Load(), failed.Load(), seen[0].Load(), seen[1].Load())
}
