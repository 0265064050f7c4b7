package balancer

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/h2client"
)

func TestNewRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "no address", cfg: Config{}, want: "empty"},
		{name: "no port", cfg: Config{Addresses: []string{"backend"}}, want: `"backend": give host:port`},
		{name: "twice", cfg: Config{Addresses: []string{"a:1", "a:1"}}, want: "twice"},
		{name: "dns and more", cfg: Config{Addresses: []string{"dns:///a:1", "b:1"}}, want: "only address"},
		{name: "dns without port", cfg: Config{Addresses: []string{"dns:///a"}}, want: "give dns:///host:port"},
		{name: "dns with authority", cfg: Config{Addresses: []string{"dns://8.8.8.8/a:1"}}, want: "give host:port"},
		{name: "scheme", cfg: Config{Addresses: []string{"http://a:1"}}, want: "give host:port"},
		{name: "negative interval", cfg: Config{Addresses: []string{"a:1"}, HealthInterval: -1}, want: "HealthInterval"},
		{name: "backoff", cfg: Config{Addresses: []string{"a:1"}, RetryBase: time.Minute}, want: "RetryMax"},
		{name: "transport", cfg: Config{Addresses: []string{"a:1"}, Transport: h2client.Config{StreamWindow: 1}}, want: "StreamWindow"},
	} {
		p, err := New(tc.cfg)
		if err == nil {
			_ = p.Close()
			t.Errorf("%s: New accepted %+v", tc.name, tc.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %q, want it to say %q", tc.name, err, tc.want)
		}
	}
}

// TestLeastOutstanding: while a stream is open on one replica, calls go
// to the other; with none open, they alternate.
func TestLeastOutstanding(t *testing.T) {
	t.Parallel()
	a, b := startCounted(t), startCounted(t)
	p := newPool(t, Config{Name: "greet", Addresses: []string{a.addr, b.addr}})
	ctx := context.Background()

	for range 10 {
		if err := greet(ctx, p, greetRequest("x")); err != nil {
			t.Fatal(err)
		}
	}
	if a.calls.Load() != 5 || b.calls.Load() != 5 {
		t.Errorf("sequential calls split %d/%d, want 5/5 (round robin between equals)", a.calls.Load(), b.calls.Load())
	}

	frame := grpcFrame(&greetv1.GreetStreamRequest{Name: "x", Count: 2, IntervalMs: 10000})
	stream := &http.Request{
		Method: http.MethodPost,
		URL:    &url.URL{Scheme: "http", Host: "greet", Path: "/greet.v1.GreetService/GreetStream"},
		Header: http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}},
		Body:   h2client.NewBytesBody(frame), ContentLength: int64(len(frame)),
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	resp, err := p.Call(sctx, stream, false)
	if err != nil {
		t.Fatal(err)
	}
	busy, idle := a, b
	if status(p, b.addr).Outstanding == 1 {
		busy, idle = b, a
	}
	if status(p, busy.addr).Outstanding != 1 {
		t.Fatalf("replicas %+v: want one outstanding stream", p.Replicas())
	}
	before := idle.calls.Load()
	for range 10 {
		if err := greet(ctx, p, greetRequest("x")); err != nil {
			t.Fatal(err)
		}
	}
	if got := idle.calls.Load() - before; got != 10 {
		t.Errorf("%d of 10 calls went to the replica without the open stream", got)
	}
	_ = resp.Body.Close()
	if o := status(p, busy.addr).Outstanding; o != 0 {
		t.Errorf("outstanding %d after the stream's body was closed", o)
	}
}

// TestAllEjectedFailsFast: once every replica is ejected, a call fails at
// once with ErrNoReplica.
func TestAllEjectedFailsFast(t *testing.T) {
	t.Parallel()
	a, b := closedPort(t), closedPort(t)
	var mu sync.Mutex
	var events []ReplicaEvent
	p := newPool(t, Config{Name: "gone", Addresses: []string{a, b}, RetryBase: time.Minute, RetryMax: time.Minute,
		Observe: func(e ReplicaEvent) { mu.Lock(); events = append(events, e); mu.Unlock() }})
	ctx := context.Background()
	err := greet(ctx, p, greetRequest("x"))
	if !errors.Is(err, errTransport) || !h2client.DialFailed(err) {
		t.Fatalf("first call: %v, want the dial error", err)
	}
	if s := p.Replicas(); s[0].State != StateEjected || s[1].State != StateEjected || s[0].Calls != 1 || s[1].Calls != 1 {
		t.Fatalf("replicas %+v: want both tried once and ejected", s)
	}
	start := time.Now()
	err = greet(ctx, p, greetRequest("x"))
	if !errors.Is(err, ErrNoReplica) || !strings.Contains(err.Error(), `"gone"`) {
		t.Errorf("second call: %v, want ErrNoReplica naming the backend", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("second call took %v, want it to fail at once", d)
	}
	mu.Lock()
	defer mu.Unlock()
	ejections := 0
	for _, e := range events {
		if e.Backend != "gone" {
			t.Errorf("event %+v: wrong backend", e)
		}
		if e.To == StateEjected {
			ejections++
			if !h2client.DialFailed(e.Err) {
				t.Errorf("ejection %+v without its dial error", e)
			}
		}
	}
	if ejections != 2 {
		t.Errorf("events %+v: %d ejections, want 2", events, ejections)
	}
}

// TestCloseLeavesNoGoroutines: Close stops the resolver, the health
// checks and the connections, and later calls fail with ErrClosed.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	backends := startLoopbacks(t, 2)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	res := &testResolver{}
	res.set(backends[0].addr, backends[1].addr)
	host, port := res.hostPort()
	p, err := New(Config{Addresses: []string{"dns:///" + host + ":" + port}, Resolver: res, ResolveInterval: 10 * time.Millisecond,
		HealthCheck: true, HealthInterval: 10 * time.Millisecond, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 20 {
		if err := greet(ctx, p, greetRequest("x")); err != nil {
			t.Fatal(err)
		}
	}
	// A call in flight at Close, its body not read.
	resp, err := p.Call(ctx, greetRequest("x"), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err := greet(ctx, p, greetRequest("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("call after Close: %v, want ErrClosed", err)
	}
	if len(p.Replicas()) != 0 {
		t.Errorf("replicas after Close: %+v", p.Replicas())
	}
	_ = p.Close()
}

// TestDial: Dial reaches a ready replica, past one that refuses.
func TestDial(t *testing.T) {
	t.Parallel()
	dead, live := closedPort(t), startCounted(t)
	p := newPool(t, Config{Addresses: []string{dead, live.addr}})
	for range 3 {
		nc, err := p.Dial(context.Background(), "tcp", "ignored:1")
		if err != nil {
			t.Fatal(err)
		}
		if got := nc.RemoteAddr().String(); got != live.addr {
			t.Errorf("dialed %s, want %s", got, live.addr)
		}
		_ = nc.Close()
	}
	if s := status(p, dead); s.State != StateEjected || s.Calls != 0 {
		t.Errorf("refusing replica %+v: want ejected, no call counted", s)
	}
}

// TestDNSServerName: with TLS, a dns:/// name is the replicas' server
// name (their addresses are IPs); a ServerName given is kept.
func TestDNSServerName(t *testing.T) {
	t.Parallel()
	s, err := newSettings(Config{Addresses: []string{"dns:///greet.example:443"}, TLS: &tls.Config{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.transportConfig("10.0.0.1:443").TLS.ServerName; got != "greet.example" {
		t.Errorf("ServerName %q, want the name", got)
	}
	s, err = newSettings(Config{Addresses: []string{"dns:///greet.example:443"}, TLS: &tls.Config{ServerName: "other"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.transportConfig("10.0.0.1:443").TLS.ServerName; got != "other" {
		t.Errorf("ServerName %q, want the one given", got)
	}
}
