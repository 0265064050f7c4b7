package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// TestStallTimeoutReleasesBackendStream starts a big server stream from an
// HTTP/1.1 client that never reads: once its writes have been blocked for
// the gateway's StallTimeout, the call must end and the backend's handler
// must see its context canceled. A stream whose client reads slowly but
// steadily must not be cut, however long it lasts.
func TestStallTimeoutReleasesBackendStream(t *testing.T) {
	t.Parallel()
	const stall = 300 * time.Millisecond
	ended := make(chan error, 4)
	backend := startBackend(t, nil, grpc.ChainStreamInterceptor(
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, next grpc.StreamHandler) error {
			err := next(srv, ss)
			if strings.HasSuffix(info.FullMethod, "/GreetStream") {
				ended <- ss.Context().Err()
			}
			return err
		}))
	_, gwURL := startGateway(t, backend, hardFilesOption(t), func(c *gateway.Config) { c.StallTimeout = stall })

	t.Run("reading client is not cut", func(t *testing.T) {
		client := newGreetClient(t, gwURL, clientKinds()[0])
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// 8 messages 100ms apart: the stream lasts well past the stall timeout.
		s, err := client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "slow", Count: 8, IntervalMs: 100}))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for s.Receive() {
			n++
		}
		if err := s.Err(); err != nil || n != 8 {
			t.Fatalf("%d messages, error %v; want 8 and none", n, err)
		}
		_ = s.Close()
		if err := <-ended; err != nil {
			t.Errorf("backend handler ended with %v", err)
		}
	})

	t.Run("never-reading client is released", func(t *testing.T) {
		addr := strings.TrimPrefix(gwURL, "http://")
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		// About 40 MB of responses: more than every buffer on the way holds.
		body := encodeFrame(0, mustMarshal(t, &greetv1.GreetStreamRequest{Name: strings.Repeat("n", 400), Count: 100000}))
		req := fmt.Sprintf("POST %sGreetStream HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web+proto\r\nContent-Length: %d\r\n\r\n%s",
			hardGreetPrefix, len(body), body)
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		select {
		case err := <-ended:
			if err == nil {
				t.Fatal("the backend stream ended on its own: nothing was stuck, the test proves nothing")
			}
			t.Logf("backend stream released %v after the request", time.Since(start).Round(time.Millisecond))
		case <-time.After(10 * time.Second):
			t.Fatalf("the backend stream of a client that never reads is still open after 10s (StallTimeout %v)", stall)
		}
	})
}

// TestStallDeadlineClearedForNextRequest checks that the progress deadline
// of a call does not outlive it: on the same HTTP/1.1 connection, a request
// the gateway answers without an RPC (here /healthz), sent after the last
// deadline would have passed, is still answered.
func TestStallDeadlineClearedForNextRequest(t *testing.T) {
	t.Parallel()
	const stall = 200 * time.Millisecond
	backend := startBackend(t, nil)
	_, gwURL := startGateway(t, backend, hardFilesOption(t), func(c *gateway.Config) { c.StallTimeout = stall })
	c, err := net.Dial("tcp", strings.TrimPrefix(gwURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	body := encodeFrame(0, mustMarshal(t, &greetv1.GreetStreamRequest{Name: "k", Count: 3}))
	req := fmt.Sprintf("POST %sGreetStream HTTP/1.1\r\nHost: x\r\nContent-Type: application/grpc-web+proto\r\nContent-Length: %d\r\n\r\n%s",
		hardGreetPrefix, len(body), body)
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	time.Sleep(3 * stall)
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("second request on the connection: %v", err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d", res.StatusCode)
	}
}

// TestProvisionalPreflight covers the gateway in reflection mode before its
// first descriptors: an allowed origin's preflight for any procedure path
// is granted with the protocol headers only and Access-Control-Max-Age 0,
// so that a browser can read the UNAVAILABLE that follows and keeps nothing;
// other origins, other headers and paths that name no procedure are refused.
func TestProvisionalPreflight(t *testing.T) {
	t.Parallel()
	_, gwURL := startGateway(t, freeAddr(t))
	tests := []struct {
		name    string
		path    string
		origin  string
		headers string
		want    int
	}{
		{name: "allowed", path: hardGreetPrefix + "Greet", origin: testOrigin, headers: "content-type,x-grpc-web,x-user-agent", want: http.StatusNoContent},
		{name: "connect headers", path: "/any.v1.Service/Method", origin: testOrigin, headers: "connect-protocol-version,content-type", want: http.StatusNoContent},
		{name: "declared header not granted", path: hardGreetPrefix + "Greet", origin: testOrigin, headers: "authorization,content-type", want: http.StatusForbidden},
		{name: "other origin", path: hardGreetPrefix + "Greet", origin: "https://evil.example.net", headers: "content-type", want: http.StatusForbidden},
		{name: "not a procedure", path: "/healthz/x/y", origin: testOrigin, headers: "content-type", want: http.StatusForbidden},
		{name: "no method", path: "/greet.v1.GreetService/", origin: testOrigin, headers: "content-type", want: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(http.MethodOptions, gwURL+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", tt.headers)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = res.Body.Close()
			if res.StatusCode != tt.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tt.want)
			}
			acao := res.Header.Get("Access-Control-Allow-Origin")
			if tt.want != http.StatusNoContent {
				if acao != "" {
					t.Errorf("refused preflight carries Access-Control-Allow-Origin %q", acao)
				}
				return
			}
			if acao != tt.origin {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", acao, tt.origin)
			}
			if got := res.Header.Values("Access-Control-Max-Age"); len(got) != 1 || got[0] != "0" {
				t.Errorf("Access-Control-Max-Age %q, want [0]: a provisional answer must not be cached", got)
			}
		})
	}
}

// TestProvisionalPreflightLetsBarredCallRun replays the browser-barred
// procedure that ran during the first seconds: with the backend down at
// start, the provisional preflight grants every procedure path, the
// browser-barred ResetGreetings included; once the descriptors load, the
// browser's actual cross-origin call used to reach the backend. It is now
// refused with PERMISSION_DENIED, strict mode or not.
func TestProvisionalPreflightLetsBarredCallRun(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	g, gwURL := startGateway(t, addr)
	path := hardGreetPrefix + "ResetGreetings"
	req, err := http.NewRequest(http.MethodOptions, gwURL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", testOrigin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("provisional preflight: status %d, want 204 (provisional mode grants every procedure path)", res.StatusCode)
	}

	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the gateway's backend address was taken meanwhile: %v", err)
	}
	rec := &recorder{}
	serveBackendOn(t, lis, rec)
	waitReady(t, g)

	for _, k := range clientKinds() {
		if k.proto == "grpc" || strings.Contains(k.name, "json") {
			continue
		}
		client := newGreetClient(t, gwURL, k)
		_, err := client.ResetGreetings(context.Background(), connect.NewRequest(&greetv1.ResetGreetingsRequest{}))
		if got := connect.CodeOf(err); got != connect.CodePermissionDenied {
			t.Errorf("%s: cross-origin call to a browser-barred procedure: %v (code %v), want permission_denied", k.name, err, got)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, c := range rec.calls {
		if c.Procedure == "ResetGreetings" {
			t.Fatalf("the browser-barred procedure ran for a cross-origin call")
		}
	}
}
