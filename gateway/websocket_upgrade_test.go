package gateway_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/testutil"
)

// TestWebSocketUpgradeRefusals: each upgrade the gateway must refuse, before
// upgrading, with the status and the log line naming the check; the backend
// sees no call.
func TestWebSocketUpgradeRefusals(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	backend := startBackend(t, rec)
	logs := &testutil.SyncBuffer{}
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin, "https://*.example.org"),
		interceptor.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	if err != nil {
		t.Fatal(err)
	}
	g, url := startWSGateway(t, backend, gateway.WebSocketConfig{MaxStreams: 1}, func(c *gateway.Config) { c.Policy = policy })
	_, openURL := startWSGateway(t, backend, gateway.WebSocketConfig{AllowMissingOrigin: true})

	rows := []struct {
		name        string
		url         string
		path        string
		origin      string // "-": no Origin header
		subprotocol string
		wantStatus  int
		wantCheck   string
	}{
		{name: "foreign origin", url: url, path: "Chat", origin: "https://evil.example", wantStatus: 403, wantCheck: "origin"},
		{name: "suffix trick", url: url, path: "Chat", origin: "https://app.example.com.evil.example", wantStatus: 403, wantCheck: "origin"},
		{name: "pattern bare domain", url: url, path: "Chat", origin: "https://example.org", wantStatus: 403, wantCheck: "origin"},
		{name: "other scheme", url: url, path: "Chat", origin: "http://app.example.com", wantStatus: 403, wantCheck: "origin"},
		{name: "null origin", url: url, path: "Chat", origin: "null", wantStatus: 403, wantCheck: "origin"},
		{name: "missing origin", url: url, path: "Chat", origin: "-", wantStatus: 403, wantCheck: "origin"},
		{name: "browser-barred", url: url, path: "ResetGreetings", origin: testOrigin, wantStatus: 403, wantCheck: "barred"},
		{name: "unknown procedure", url: url, path: "Nope", origin: testOrigin, wantStatus: 403, wantCheck: "procedure"},
		{name: "operator service", url: url, path: "../grpc.health.v1.Health/Check", origin: testOrigin, wantStatus: 403, wantCheck: "procedure"},
		{name: "no subprotocol", url: url, path: "Chat", origin: testOrigin, subprotocol: "-", wantStatus: 400, wantCheck: "subprotocol"},
		{name: "barred without origin", url: openURL, path: "ResetGreetings", origin: "-", wantStatus: 403},
		{name: "allowed pattern", url: url, path: "Chat", origin: "https://a.example.org", wantStatus: 101},
		{name: "missing origin when allowed", url: openURL, path: "Chat", origin: "-", wantStatus: 101},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			path := greetPath + row.path
			if strings.HasPrefix(row.path, "../") {
				path = "/" + strings.TrimPrefix(row.path, "../")
			}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, row.url+path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			if row.subprotocol != "-" {
				req.Header.Set("Sec-WebSocket-Protocol", "grpc-websockets")
			}
			if row.origin != "-" {
				req.Header.Set("Origin", row.origin)
			}
			resp, err := http.DefaultTransport.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != row.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, row.wantStatus)
			}
			if row.wantCheck != "" && !strings.Contains(logs.String(), "check="+row.wantCheck+" origin="+strings.TrimPrefix(row.origin, "-")) {
				t.Errorf("no log line naming check %s for origin %q in:\n%s", row.wantCheck, row.origin, logs.String())
			}
		})
	}
	waitFor(t, "the streams to close", func() bool { return g.WebSocketStreams() == 0 })

	t.Run("stream bound", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		first, _, err := dialWS(t, ctx, url, greetPath+"Chat", testOrigin, nil)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the first stream", func() bool { return g.WebSocketStreams() == 1 })
		_, resp, err := dialWS(t, ctx, url, greetPath+"Chat", testOrigin, nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("second stream over a bound of 1: %v, %v; want 503", resp, err)
		}
		if !strings.Contains(logs.String(), "check=streams") {
			t.Errorf("no log line naming the stream bound")
		}
		_ = first.finish()
		if _, err := first.readAll(); err != nil {
			t.Fatal(err)
		}
	})

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, c := range rec.calls {
		if c.Procedure != "Chat" {
			t.Errorf("the backend saw a %s call from a refused upgrade", c.Procedure)
		}
	}
}

// TestWebSocketRequestHeaders: the header message's headers are filtered as
// a preflight would filter them, and cookies pass only with credentials.
func TestWebSocketRequestHeaders(t *testing.T) {
	t.Parallel()
	for _, credentials := range []bool{false, true} {
		name := "credentials-off"
		if credentials {
			name = "credentials-on"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			policy, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin), interceptor.WithCredentials(credentials))
			if err != nil {
				t.Fatal(err)
			}
			_, url := startWSGateway(t, startBackend(t, rec), gateway.WebSocketConfig{}, func(c *gateway.Config) { c.Policy = policy })
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			// SetGreeting declares no request header; Greet declares x-request-id.
			for _, proc := range []string{"SetGreeting", "Greet"} {
				h := http.Header{"Origin": {testOrigin}, "Cookie": {"session=s3cret"}}
				c, err := dialWithHeader(t, ctx, url, greetPath+proc, h,
					"x-request-id: "+proc+"\r\nx-not-allowed: 1\r\ncookie: forged=1\r\norigin: https://evil.example\r\n")
				if err != nil {
					t.Fatal(err)
				}
				if proc == "Greet" {
					_ = c.send(&greetv1.GreetRequest{Name: "n"})
				} else {
					_ = c.send(&greetv1.SetGreetingRequest{Greeting: "Hello"})
				}
				_ = c.finish()
				if r, err := c.readAll(); err != nil || r.status() != "0" {
					t.Fatalf("%s: %v %v", proc, r, err)
				}
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			if len(rec.calls) != 2 {
				t.Fatalf("%d calls", len(rec.calls))
			}
			for _, c := range rec.calls {
				wantID := ""
				if c.Procedure == "Greet" {
					wantID = "Greet"
				}
				if got := c.Header.Get("X-Request-Id"); got != wantID {
					t.Errorf("%s: x-request-id %q at the backend, want %q", c.Procedure, got, wantID)
				}
				if c.Header.Get("X-Not-Allowed") != "" || c.Header.Get("Origin") != testOrigin {
					t.Errorf("%s: backend saw %v", c.Procedure, c.Header)
				}
				wantCookie := ""
				if credentials {
					wantCookie = "session=s3cret"
				}
				if got := strings.Join(c.Header.Values("Cookie"), "; "); got != wantCookie {
					t.Errorf("%s: cookie %q at the backend, want %q", c.Procedure, got, wantCookie)
				}
			}
		})
	}
}
