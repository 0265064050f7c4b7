package gateway_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/interceptor"
)

// hardStreamGate holds every GreetStream after its first message until open is
// closed, so that a test can keep many streams open at once.
type hardStreamGate struct {
	open chan struct{}
}

func (g *hardStreamGate) option() grpc.ServerOption {
	return grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
		if !strings.HasSuffix(info.FullMethod, "/GreetStream") {
			return next(srv, ss)
		}
		return next(srv, &hardGatedStream{ServerStream: ss, open: g.open})
	})
}

type hardGatedStream struct {
	grpc.ServerStream
	open chan struct{}
	sent int
}

func (s *hardGatedStream) SendMsg(m any) error {
	if s.sent++; s.sent > 1 {
		select {
		case <-s.open:
		case <-s.Context().Done():
			return s.Context().Err()
		}
	}
	return s.ServerStream.SendMsg(m)
}

// hardHeapInUse returns the live heap after a full collection.
func hardHeapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// hardMaxHeapPerStream is the bound TestThousandStreams holds the heap
// of one open server stream to, counting the client, the gateway (a pooled
// 32 KiB copy buffer, its HTTP/2 stream state on both sides) and the grpc-go
// backend, all in this process.
const hardMaxHeapPerStream = 128 << 10

// TestThousandStreams holds 1 000 server streams open at once
// through the gateway (gRPC-Web over h2c, the browser's protocol), checks
// that every one completes without error, and measures the heap per open
// stream. Not parallel: heap figures count the whole process.
func TestThousandStreams(t *testing.T) {
	const streams = 1000
	gate := &hardStreamGate{open: make(chan struct{})}
	backend := startBackend(t, nil, gate.option())
	_, gwURL := startGateway(t, backend, hardFilesOption(t))
	client := newGreetClient(t, gwURL, clientKind{name: "grpcweb/h2c", h2: true, opts: []connect.ClientOption{connect.WithGRPCWeb()}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Warm up pools and connections, then take the baseline.
	for range 20 {
		s, err := client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "w", Count: 1}))
		if err != nil {
			t.Fatal(err)
		}
		for s.Receive() {
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	base := hardHeapInUse()
	baseG := runtime.NumGoroutine()

	var (
		opened sync.WaitGroup
		done   sync.WaitGroup
		errs   atomic.Int64
		mu     sync.Mutex
		first  []error
	)
	fail := func(err error) {
		errs.Add(1)
		mu.Lock()
		if len(first) < 5 {
			first = append(first, err)
		}
		mu.Unlock()
	}
	opened.Add(streams)
	done.Add(streams)
	start := time.Now()
	for i := range streams {
		go func() {
			defer done.Done()
			gotFirst := false
			defer func() {
				if !gotFirst {
					opened.Done()
				}
			}()
			s, err := client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: fmt.Sprint(i), Count: 3}))
			if err != nil {
				fail(err)
				return
			}
			defer s.Close()
			n := 0
			for s.Receive() {
				if n++; n == 1 {
					gotFirst = true
					opened.Done()
				}
			}
			if err := s.Err(); err != nil {
				fail(err)
			} else if n != 3 {
				fail(fmt.Errorf("stream %d: %d messages, want 3", i, n))
			}
		}()
	}
	opened.Wait()
	openTook := time.Since(start)
	open := hardHeapInUse()
	openG := runtime.NumGoroutine()
	close(gate.open)
	done.Wait()
	if n := errs.Load(); n > 0 {
		t.Fatalf("%d of %d streams failed; first errors: %v", n, streams, first)
	}
	perStream := int64(open-base) / streams
	t.Logf("%d streams opened in %v; heap %d KiB -> %d KiB: %d bytes per open stream; %d goroutines per stream",
		streams, openTook, base>>10, open>>10, perStream, (openG-baseG)/streams)
	if perStream > hardMaxHeapPerStream {
		t.Errorf("heap per open stream %d bytes, want at most %d", perStream, hardMaxHeapPerStream)
	}
}

// TestNoLeaksAfterManyStreams opens and closes 10 000 streams
// through an in-process gateway (half gRPC-Web over h2c, half Connect over
// HTTP/1.1, some canceled midway), then checks that the heap is back near
// its baseline and, once servers and clients are closed, that no goroutine
// is left. Not parallel: goleak and heap figures see the whole process.
func TestNoLeaksAfterManyStreams(t *testing.T) {
	const (
		total       = 10000
		concurrency = 32
	)
	ignore := goleak.IgnoreCurrent()
	addr, srv := hardStartBackend(t)
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Backend: addr, Policy: policy, Files: hardGreetFiles(t), Logger: hardDiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	hs := &http.Server{Handler: g, Protocols: &protocols, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(lis) }()
	gwURL := "http://" + lis.Addr().String()
	kinds := []clientKind{
		{name: "grpcweb/h2c", h2: true, opts: []connect.ClientOption{connect.WithGRPCWeb()}},
		{name: "connect/h1", h2: false},
	}
	var transports []*http.Transport
	clients := make([]interface {
		GreetStream(context.Context, *connect.Request[greetv1.GreetStreamRequest]) (*connect.ServerStreamForClient[greetv1.GreetStreamResponse], error)
	}, len(kinds))
	for i, k := range kinds {
		var p http.Protocols
		if k.h2 {
			p.SetUnencryptedHTTP2(true)
		} else {
			p.SetHTTP1(true)
		}
		tr := &http.Transport{Protocols: &p, MaxIdleConnsPerHost: concurrency}
		transports = append(transports, tr)
		clients[i] = greetv1connect.NewGreetServiceClient(&http.Client{Transport: originTransport{tr}}, gwURL, k.opts...)
	}

	run := func(n int) {
		var wg sync.WaitGroup
		var next, failed atomic.Int64
		var firstErr atomic.Value
		for range concurrency {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					s, err := clients[i%2].GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "L", Count: 3}))
					if err == nil {
						got := 0
						for s.Receive() {
							if got++; i%10 == 9 && got == 1 {
								cancel() // some clients give up midway
							}
						}
						if i%10 != 9 && (s.Err() != nil || got != 3) {
							err = fmt.Errorf("stream %d: %d messages, %w", i, got, s.Err())
						}
						_ = s.Close()
					}
					cancel()
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
					}
				}
			}()
		}
		wg.Wait()
		if n := failed.Load(); n > 0 {
			t.Fatalf("%d streams failed, first: %v", n, firstErr.Load())
		}
	}

	run(500) // warm up
	base := hardHeapInUse()
	start := time.Now()
	run(total)
	took := time.Since(start)
	for _, tr := range transports {
		tr.CloseIdleConnections()
	}
	// Idle connections and pooled buffers may stay; streams must not.
	time.Sleep(100 * time.Millisecond)
	after := hardHeapInUse()
	t.Logf("%d streams in %v; heap %d KiB before, %d KiB after", total, took, base>>10, after>>10)
	if after > base+4<<20 {
		t.Errorf("heap grew by %d KiB over %d streams; want it back within 4 MiB of the baseline", (after-base)>>10, total)
	}

	// Stop everything in order, then look for leftovers: a goroutine of a
	// stream, a connection or the reflection refresher still running.
	for _, tr := range transports {
		tr.CloseIdleConnections()
	}
	_ = hs.Close()
	_ = g.Close()
	srv.Stop()
	goleak.VerifyNone(t, ignore)
}

// TestSlowClients runs well-behaved clients next to hostile slow
// ones: slowloris connections that dribble their request headers, and
// clients that start big server streams (over HTTP/1.1 and h2c) and never
// read the response. The well-behaved calls must all succeed promptly, and
// the server must drop the slowloris connections at its ReadHeaderTimeout.
func TestSlowClients(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		slowloris        int
		stuckH1, stuckH2 int
	}{
		{name: "slowloris", slowloris: 100},
		{name: "never-reading HTTP/1.1 clients", stuckH1: 8},
		{name: "never-reading h2c clients", stuckH2: 8},
		{name: "all at once", slowloris: 100, stuckH1: 8, stuckH2: 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hardRunSlowClients(t, tt.slowloris, tt.stuckH1, tt.stuckH2)
		})
	}
}

func hardRunSlowClients(t *testing.T, slowloris, stuckH1, stuckH2 int) {
	backend := startBackend(t, nil)
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Backend: backend, Policy: policy, Files: hardGreetFiles(t), Logger: hardDiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	const readHeaderTimeout = time.Second
	hs := &http.Server{Handler: g, Protocols: &protocols, ReadHeaderTimeout: readHeaderTimeout, MaxHeaderBytes: 64 << 10}
	go func() { _ = hs.Serve(lis) }()
	t.Cleanup(func() { _ = hs.Close() })
	addr := lis.Addr().String()
	gwURL := "http://" + addr

	// Slowloris: connections that send one header byte every 50ms.
	closed := make(chan time.Duration, slowloris)
	stop := make(chan struct{})
	defer close(stop)
	for range slowloris {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		go func() {
			start := time.Now()
			req := "POST " + hardGreetPrefix + "Greet HTTP/1.1\r\nHost: x\r\nOrigin: " + testOrigin + "\r\nX-Slow: " + strings.Repeat("a", 10000)
			for i := 0; i < len(req); i++ {
				if _, err := c.Write([]byte{req[i]}); err != nil {
					closed <- time.Since(start)
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}()
	}

	// Never-reading clients: big streams (about 20 MB each) whose
	// responses nobody reads.
	body := encodeFrame(0, mustMarshal(t, &greetv1.GreetStreamRequest{Name: strings.Repeat("n", 200), Count: 100000}))
	for range stuckH1 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		req := fmt.Sprintf("POST %sGreetStream HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\nContent-Type: application/grpc-web+proto\r\nContent-Length: %d\r\n\r\n%s",
			hardGreetPrefix, testOrigin, len(body), body)
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
	}
	if stuckH2 > 0 {
		stuck := httpClient(t, true)
		for range stuckH2 {
			req, err := http.NewRequest(http.MethodPost, gwURL+hardGreetPrefix+"GreetStream", strings.NewReader(string(body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/grpc-web+proto")
			res, err := stuck.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = res.Body.Close() })
			// Never read res.Body.
		}
	}
	time.Sleep(500 * time.Millisecond) // let the stuck streams fill every buffer

	// Well-behaved clients, every protocol, unary and streams.
	const calls = 40
	var wg sync.WaitGroup
	var slow, failed atomic.Int64
	var firstErr atomic.Value
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := clientKinds()[i%len(clientKinds())]
			client := newGreetClient(t, gwURL, k)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			var err error
			if i%2 == 0 {
				_, err = client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "ok"}))
			} else {
				var s *connect.ServerStreamForClient[greetv1.GreetStreamResponse]
				if s, err = client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "ok", Count: 5})); err == nil {
					n := 0
					for s.Receive() {
						n++
					}
					if err = s.Err(); err == nil && n != 5 {
						err = fmt.Errorf("%d messages", n)
					}
					_ = s.Close()
				}
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Errorf("%s: %w", k.name, err))
			}
			if time.Since(start) > 2*time.Second {
				slow.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d well-behaved calls failed next to slow clients; first: %v", n, calls, firstErr.Load())
	}
	if n := slow.Load(); n > 0 {
		t.Errorf("%d of %d well-behaved calls took over 2s next to slow clients", n, calls)
	}

	// The server drops slowloris connections at ReadHeaderTimeout.
	deadline := time.After(readHeaderTimeout + 5*time.Second)
	for i := range slowloris {
		select {
		case d := <-closed:
			if d > readHeaderTimeout+3*time.Second {
				t.Errorf("a slowloris connection lasted %v, ReadHeaderTimeout is %v", d, readHeaderTimeout)
			}
		case <-deadline:
			t.Fatalf("%d of %d slowloris connections still open after %v", slowloris-i, slowloris, readHeaderTimeout+5*time.Second)
		}
	}
}

// hardMaxBufferedPerStuckClient bounds what a client that never reads may
// make the process hold: the backend's data in flight for that one stream
// (the gateway's 256 KiB HTTP/2 stream window, its copy and write buffers, and
// grpc-go's own per-stream send buffers on the backend side). Measured here
// between 430 KiB and 1.15 MiB depending on timing; each stream carries about
// 20 MB, so a gateway that buffered what it cannot deliver would hold ten
// times the bound.
const hardMaxBufferedPerStuckClient = 2 << 20

// TestNeverReadingClientMemory starts server streams of about 20 MB
// each from HTTP/1.1 clients that never read, and measures the heap the
// process (gateway and backend; the clients' unread bytes sit in kernel
// socket buffers) holds per stuck client. What a stuck stream may pin is
// what makes many of them exhaust memory or the shared connection to the
// backend. Not parallel: heap figures count the whole process.
func TestNeverReadingClientMemory(t *testing.T) {
	const stuck = 16
	backend := hardStartBackendAddr(t)
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Backend: backend, Policy: policy, Files: hardGreetFiles(t), Logger: hardDiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	gwURL := serveHandler(t, g)
	addr := strings.TrimPrefix(gwURL, "http://")
	body := encodeFrame(0, mustMarshal(t, &greetv1.GreetStreamRequest{Name: strings.Repeat("n", 200), Count: 100000}))
	// Warm up: one complete small stream.
	client := newGreetClient(t, gwURL, clientKinds()[1])
	if s, err := client.GreetStream(context.Background(), connect.NewRequest(&greetv1.GreetStreamRequest{Name: "w", Count: 2})); err == nil {
		for s.Receive() {
		}
		_ = s.Close()
	}
	base := hardHeapInUse()
	for range stuck {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		req := fmt.Sprintf("POST %sGreetStream HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\nContent-Type: application/grpc-web+proto\r\nContent-Length: %d\r\n\r\n%s",
			hardGreetPrefix, testOrigin, len(body), body)
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
	}
	// Let every stuck stream fill whatever buffers it can.
	var held uint64
	for range 20 {
		time.Sleep(100 * time.Millisecond)
		held = max(held, hardHeapInUse()-min(base, hardHeapInUse()))
	}
	per := held / stuck
	t.Logf("%d never-reading clients hold %d KiB of heap: %d KiB each", stuck, held>>10, per>>10)
	if per > hardMaxBufferedPerStuckClient {
		t.Errorf("a never-reading client makes the process hold %d KiB; want at most %d KiB", per>>10, hardMaxBufferedPerStuckClient>>10)
	}
}

// hardStartBackendAddr starts greetd and returns its address.
func hardStartBackendAddr(tb testing.TB) string {
	tb.Helper()
	addr, _ := hardStartBackend(tb)
	return addr
}
