package balancer

import (
	"context"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corsgate/corsgate/internal/greetsvc"
	"github.com/corsgate/corsgate/internal/testutil"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testResolver answers a name with the IPs it was last set to.
type testResolver struct {
	mu      sync.Mutex
	ips     []string
	port    string
	lookups atomic.Int64
}

// set makes the answer the IPs of addrs, which share one port.
func (r *testResolver) set(addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ips = r.ips[:0]
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		r.ips = append(r.ips, host)
		r.port = port
	}
}

func (r *testResolver) hostPort() (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return "greet.test", r.port
}

func (r *testResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	r.lookups.Add(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if host != "greet.test" {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(r.ips), nil
}

// startLoopbacks serves a counted greetd on each of 127.0.0.1 to
// 127.0.0.n, one port for all, as replicas behind one DNS name are.
func startLoopbacks(tb testing.TB, n int) []*counted {
	tb.Helper()
	for range 20 {
		first, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := strconv.Itoa(first.Addr().(*net.TCPAddr).Port)
		liss := []net.Listener{first}
		for i := 2; i <= n; i++ {
			lis, err := net.Listen("tcp", net.JoinHostPort("127.0.0."+strconv.Itoa(i), port))
			if err != nil {
				break
			}
			liss = append(liss, lis)
		}
		if len(liss) < n {
			for _, l := range liss {
				_ = l.Close()
			}
			continue
		}
		out := make([]*counted, n)
		for i, lis := range liss {
			c := &counted{}
			c.addr = testutil.ServeGreetd(tb, lis, &greetsvc.Greeter{Record: func(greetsvc.Call) { c.calls.Add(1) }})
			out[i] = c
		}
		return out
	}
	tb.Skip("cannot listen on one port of 127.0.0.1 to 127.0.0." + strconv.Itoa(n))
	return nil
}

// TestResolverMovesTraffic: when the name's answer changes from A, B to
// B, C under load, C gets calls, A gets none after the change, and no call
// fails.
func TestResolverMovesTraffic(t *testing.T) {
	t.Parallel()
	backends := startLoopbacks(t, 3)
	a, b, c := backends[0], backends[1], backends[2]
	res := &testResolver{}
	res.set(a.addr, b.addr)
	host, port := res.hostPort()
	var removed atomic.Int64
	p := newPool(t, Config{Name: "greet", Addresses: []string{"dns:///" + net.JoinHostPort(host, port)}, Resolver: res,
		ResolveInterval: 50 * time.Millisecond,
		Observe: func(e ReplicaEvent) {
			if e.Address == a.addr && e.To == StateNone {
				removed.Add(1)
			}
		}})

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var calls, failures atomic.Int64
	var firstErr atomic.Value
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := greet(context.Background(), p, greetRequest("x")); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
				calls.Add(1)
			}
		})
	}
	eventually(t, 5*time.Second, "A and B get calls", func() bool { return a.calls.Load() > 50 && b.calls.Load() > 50 })
	res.set(b.addr, c.addr)
	eventually(t, 5*time.Second, "A is drained and removed", func() bool { return removed.Load() == 1 })
	aAtRemoval := a.calls.Load()
	cAtRemoval := c.calls.Load()
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	t.Logf("calls %d, failures %d; A %d (at removal %d), B %d, C %d (at A's removal %d); lookups %d",
		calls.Load(), failures.Load(), a.calls.Load(), aAtRemoval, b.calls.Load(), c.calls.Load(), cAtRemoval, res.lookups.Load())
	if failures.Load() != 0 {
		t.Errorf("%d calls failed, first: %v", failures.Load(), firstErr.Load())
	}
	if a.calls.Load() != aAtRemoval {
		t.Errorf("A got %d calls after its removal", a.calls.Load()-aAtRemoval)
	}
	if c.calls.Load() <= cAtRemoval || c.calls.Load() < 50 {
		t.Errorf("C got %d calls, %d after A's removal: want it to take calls", c.calls.Load(), c.calls.Load()-cAtRemoval)
	}
	var addrs []string
	for _, s := range p.Replicas() {
		addrs = append(addrs, s.Address)
	}
	if !slices.Equal(addrs, []string{b.addr, c.addr}) {
		t.Errorf("replicas %v, want B and C", addrs)
	}
}

// TestResolverFailureKeepsReplicas: an error or an empty answer keeps the
// replicas as they are.
func TestResolverFailureKeepsReplicas(t *testing.T) {
	t.Parallel()
	backends := startLoopbacks(t, 1)
	res := &testResolver{}
	res.set(backends[0].addr)
	_, port := res.hostPort()
	p := newPool(t, Config{Addresses: []string{"dns:///greet.test:" + port}, Resolver: res, ResolveInterval: 10 * time.Millisecond})
	ctx := context.Background()
	if err := greet(ctx, p, greetRequest("x")); err != nil {
		t.Fatal(err)
	}
	res.set()
	n := res.lookups.Load()
	eventually(t, 5*time.Second, "resolved again", func() bool { return res.lookups.Load() > n+2 })
	if err := greet(ctx, p, greetRequest("x")); err != nil {
		t.Errorf("after an empty answer: %v", err)
	}

	bad := newPool(t, Config{Addresses: []string{"dns:///other.test:" + port}, Resolver: res})
	if err := greet(ctx, bad, greetRequest("x")); err == nil {
		t.Error("a name that does not resolve took a call")
	}
}
