package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/testutil"
)

const (
	secretAuthorization = "Bearer s3cret-token-never-logged"
	secretCookie        = "session=c00kie-value-never-logged"
)

// accessLine returns the first line of the JSON access log in buf whose
// trace id is traceID, waiting for it: the line is written after the
// answer went out.
func accessLine(tb testing.TB, buf *testutil.SyncBuffer, traceID string) map[string]any {
	tb.Helper()
	return findAccessLine(tb, buf, "trace_id "+traceID, func(m map[string]any) bool { return m["trace_id"] == traceID })
}

// findAccessLine returns the first line of the JSON access log in buf that
// match accepts, waiting for it; what names it in the failure.
func findAccessLine(tb testing.TB, buf *testutil.SyncBuffer, what string, match func(map[string]any) bool) map[string]any {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, l := range strings.Split(buf.String(), "\n") {
			if l == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				tb.Fatalf("access log line is not JSON: %v\n%s", err, l)
			}
			if match(m) {
				return m
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no access log line with %s in:\n%s", what, buf.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkLine reports every attribute of want that line lacks or holds with
// another value; a nil value in want means the attribute must be absent.
func checkLine(tb testing.TB, line, want map[string]any) {
	tb.Helper()
	for k, v := range want {
		got, ok := line[k]
		switch {
		case v == nil && ok:
			tb.Errorf("%s = %v, want none\nline: %v", k, got, line)
		case v != nil && got != v:
			tb.Errorf("%s = %v, want %v\nline: %v", k, got, v, line)
		}
	}
}

// checkNoSecrets fails when the log holds a header value it must never hold.
func checkNoSecrets(tb testing.TB, log string) {
	tb.Helper()
	for _, secret := range []string{secretAuthorization, "s3cret", secretCookie, "c00kie"} {
		if strings.Contains(log, secret) {
			tb.Errorf("the access log holds %q:\n%s", secret, log)
		}
	}
}

// traceparent makes a W3C traceparent whose trace id names one call.
func traceparent(n int) (header, id string) {
	id = fmt.Sprintf("%032x", n+0xabc000)
	return "00-" + id + "-00f067aa0ba902b7-01", id
}

// TestAccessLog: one line per call with every field, for gRPC-Web, Connect
// and gRPC, successes, an error and CORS-refused calls, and no header value
// but the Origin and the trace id.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	var buf testutil.SyncBuffer
	backend := startBackend(t, nil)
	g, url := startGateway(t, backend, func(c *gateway.Config) {
		c.AccessLog = slog.New(slog.NewJSONHandler(&buf, nil))
	})
	waitReady(t, g)
	protocols := []struct {
		name, label string
		h2          bool
		opts        []connect.ClientOption
	}{
		{name: "grpcweb", label: "grpc_web", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
		{name: "connect", label: "connect"},
		{name: "grpc", label: "grpc", h2: true, opts: []connect.ClientOption{connect.WithGRPC()}},
	}
	calls := []struct {
		name, origin, procedure string
		call                    func(context.Context, greetv1connect.GreetServiceClient) error
		code, cors, reason      string
	}{
		{name: "ok", origin: testOrigin, procedure: "Greet", code: "ok", cors: "allowed",
			call: func(ctx context.Context, c greetv1connect.GreetServiceClient) error {
				_, err := c.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "Ada"}))
				return err
			}},
		{name: "error", origin: testOrigin, procedure: "Greet", code: "invalid_argument", cors: "allowed",
			call: func(ctx context.Context, c greetv1connect.GreetServiceClient) error {
				_, err := c.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{}))
				return err
			}},
		{name: "foreign origin", origin: "https://evil.example.net", procedure: "Greet", code: "ok", cors: "refused", reason: "origin",
			call: func(ctx context.Context, c greetv1connect.GreetServiceClient) error {
				_, err := c.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "Ada"}))
				return err
			}},
		{name: "barred", origin: testOrigin, procedure: "ResetGreetings", code: "permission_denied", cors: "refused", reason: "barred",
			call: func(ctx context.Context, c greetv1connect.GreetServiceClient) error {
				_, err := c.ResetGreetings(ctx, connect.NewRequest(&greetv1.ResetGreetingsRequest{}))
				return err
			}},
	}
	n := 0
	for _, p := range protocols {
		for _, tc := range calls {
			n++
			tp, id := traceparent(n)
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				client := greetv1connect.NewGreetServiceClient(originClient(t, p.h2, tc.origin), url, p.opts...)
				ctx := context.Background()
				err := tc.call(ctx, headerInterceptor(client, tp))
				if (err == nil) != (tc.code == "ok") {
					t.Fatalf("call error %v, want code %s", err, tc.code)
				}
				line := accessLine(t, &buf, id)
				want := map[string]any{
					"msg": "access", "level": "INFO", "procedure": "/greet.v1.GreetService/" + tc.procedure,
					"protocol": p.label, "route": "backends.default", "backend": "default", "replica": backend,
					"code": tc.code, "origin": tc.origin, "cors": tc.cors, "trace_id": id,
				}
				if tc.reason != "" {
					want["cors_reason"] = tc.reason
				}
				if tc.reason == "barred" {
					// Refused by the policy: no replica was asked.
					delete(want, "replica")
					if _, ok := line["replica"]; ok {
						t.Errorf("a call refused before the backend names a replica: %v", line)
					}
				}
				for k, v := range want {
					if line[k] != v {
						t.Errorf("%s = %v, want %v\nline: %v", k, line[k], v, line)
					}
				}
				for _, k := range []string{"time", "http_status", "duration_ms", "bytes_in", "bytes_out"} {
					if _, ok := line[k]; !ok {
						t.Errorf("line lacks %s: %v", k, line)
					}
				}
				if tc.code == "ok" && (line["bytes_in"].(float64) == 0 || line["bytes_out"].(float64) == 0) {
					t.Errorf("bytes_in %v, bytes_out %v: want both counted", line["bytes_in"], line["bytes_out"])
				}
			})
		}
	}
	t.Run("preflight", func(t *testing.T) {
		tp, id := traceparent(1000)
		req, _ := http.NewRequest(http.MethodOptions, url+"/greet.v1.GreetService/Greet", nil)
		req.Header.Set("Origin", testOrigin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "x-not-declared")
		req.Header.Set("Traceparent", tp)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		line := accessLine(t, &buf, id)
		for k, v := range map[string]any{"protocol": "preflight", "cors": "refused", "cors_reason": "header", "http_status": float64(403), "route": "backends.default"} {
			if line[k] != v {
				t.Errorf("%s = %v, want %v\nline: %v", k, line[k], v, line)
			}
		}
		if _, ok := line["code"]; ok {
			t.Errorf("a preflight has no gRPC code: %v", line)
		}
	})
	checkNoSecrets(t, buf.String())
}

// headerInterceptor makes every call of c send a traceparent, an
// Authorization and a Cookie.
func headerInterceptor(c greetv1connect.GreetServiceClient, tp string) greetv1connect.GreetServiceClient {
	return headerClient{c, tp}
}

type headerClient struct {
	greetv1connect.GreetServiceClient
	tp string
}

func (h headerClient) Greet(ctx context.Context, r *connect.Request[greetv1.GreetRequest]) (*connect.Response[greetv1.GreetResponse], error) {
	h.set(r.Header())
	return h.GreetServiceClient.Greet(ctx, r)
}

func (h headerClient) ResetGreetings(ctx context.Context, r *connect.Request[greetv1.ResetGreetingsRequest]) (*connect.Response[greetv1.ResetGreetingsResponse], error) {
	h.set(r.Header())
	return h.GreetServiceClient.ResetGreetings(ctx, r)
}

func (h headerClient) set(hdr http.Header) {
	hdr.Set("Traceparent", h.tp)
	hdr.Set("Authorization", secretAuthorization)
	hdr.Set("Cookie", secretCookie)
}

// TestAccessLogTraceID: only a valid traceparent gives a trace id.
func TestAccessLogTraceID(t *testing.T) {
	t.Parallel()
	var buf testutil.SyncBuffer
	g, url := startGateway(t, freeAddr(t), hardFilesOption(t), func(c *gateway.Config) {
		c.AccessLog = slog.New(slog.NewTextHandler(&buf, nil))
	})
	waitReady(t, g)
	for _, tp := range []string{
		"00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7",     // short
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero id
		"00-0AF7651916CD43DD8448EB211C80319C-00f067aa0ba902b7-01",  // uppercase
		"ff-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01",  // version ff
		"00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01-", // 00 with more
	} {
		req, _ := http.NewRequest(http.MethodGet, url+"/healthz", nil)
		req.Header.Set("Traceparent", tp)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(buf.String(), "\n") < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	out := buf.String()
	if strings.Count(out, "\n") != 5 || strings.Contains(out, "trace_id") || strings.Contains(out, "0af7651916cd") {
		t.Errorf("want 5 lines without a trace id:\n%s", out)
	}
	if !strings.Contains(out, "protocol=http") || !strings.Contains(out, "procedure=/healthz") {
		t.Errorf("want the /healthz requests logged as http:\n%s", out)
	}
}

// accessLogOption sends the gateway's JSON access log to buf.
func accessLogOption(buf *testutil.SyncBuffer) gatewayOption {
	return func(c *gateway.Config) { c.AccessLog = slog.New(slog.NewJSONHandler(buf, nil)) }
}

// post sends one Connect unary JSON call to path from origin, with a
// traceparent, an Authorization and a Cookie, and returns the HTTP status.
func post(tb testing.TB, url, path, origin, tp string) int {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url+path, strings.NewReader(`{"name":"Ada"}`))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", origin)
	if tp != "" {
		req.Header.Set("Traceparent", tp)
	}
	req.Header.Set("Authorization", secretAuthorization)
	req.Header.Set("Cookie", secretCookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestAccessLogRefusals: an unknown procedure and preflights, allowed and
// refused, each logged with its verdict, and no replica where no backend
// was asked.
func TestAccessLogRefusals(t *testing.T) {
	t.Parallel()
	var buf testutil.SyncBuffer
	g, url := startGateway(t, startBackend(t, nil), accessLogOption(&buf))
	waitReady(t, g)

	tp, id := traceparent(2000)
	if got := post(t, url, "/greet.v1.GreetService/NoSuchMethod", testOrigin, tp); got != http.StatusNotFound {
		t.Fatalf("unknown procedure: HTTP %d, want 404", got)
	}
	checkLine(t, accessLine(t, &buf, id), map[string]any{
		"procedure": "/greet.v1.GreetService/NoSuchMethod", "protocol": "connect", "code": "unimplemented",
		"http_status": float64(404), "cors": "refused", "cors_reason": "procedure", "origin": testOrigin,
		"route": nil, "backend": nil, "replica": nil,
	})

	tp, id = traceparent(2001)
	req, _ := http.NewRequest(http.MethodOptions, url+"/greet.v1.GreetService/Greet", nil)
	req.Header.Set("Origin", testOrigin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,traceparent")
	req.Header.Set("Traceparent", tp)
	req.Header.Set("Authorization", secretAuthorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("preflight: HTTP %d, want 204", resp.StatusCode)
	}
	checkLine(t, accessLine(t, &buf, id), map[string]any{
		"protocol": "preflight", "http_status": float64(204), "cors": "allowed", "cors_reason": nil,
		"route": "backends.default", "backend": "default", "replica": nil, "code": nil, "bytes_in": float64(0),
	})
	checkNoSecrets(t, buf.String())
}

// TestAccessLogReplicas: the line names the replica the balancer picked.
func TestAccessLogReplicas(t *testing.T) {
	t.Parallel()
	a, b := startBackend(t, nil), startBackend(t, nil)
	var buf testutil.SyncBuffer
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{
		Policy:    policy,
		Backends:  []gateway.Backend{{Name: "greet", Addresses: []string{a, b}, Files: greetFiles(t)}},
		Logger:    slog.New(slog.DiscardHandler),
		AccessLog: slog.New(slog.NewJSONHandler(&buf, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	url := testutil.ServeHandler(t, g)
	seen := map[any]int{}
	for i := range 8 {
		tp, id := traceparent(3000 + i)
		if got := post(t, url, "/greet.v1.GreetService/Greet", testOrigin, tp); got != http.StatusOK {
			t.Fatalf("call %d: HTTP %d", i, got)
		}
		line := accessLine(t, &buf, id)
		checkLine(t, line, map[string]any{"route": "backends.greet", "backend": "greet", "code": "ok"})
		seen[line["replica"]]++
	}
	if len(seen) != 2 || seen[a] == 0 || seen[b] == 0 {
		t.Errorf("replicas logged %v, want both of %s and %s", seen, a, b)
	}
}

// TestAccessLogTracing: with tracing on, the trace id is the span's, also
// for a call that brought no traceparent.
func TestAccessLogTracing(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	var buf testutil.SyncBuffer
	g, url := startGateway(t, startBackend(t, nil), accessLogOption(&buf), func(c *gateway.Config) {
		c.Tracing = &gateway.Tracing{TracerProvider: tp}
	})
	waitReady(t, g)

	if got := post(t, url, "/greet.v1.GreetService/Greet", testOrigin, ""); got != http.StatusOK {
		t.Fatalf("HTTP %d", got)
	}
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	id := spans[0].SpanContext.TraceID().String()
	checkLine(t, accessLine(t, &buf, id), map[string]any{"procedure": "/greet.v1.GreetService/Greet", "code": "ok"})

	if got := post(t, url, "/greet.v1.GreetService/Greet", testOrigin, browserTraceparent); got != http.StatusOK {
		t.Fatalf("HTTP %d", got)
	}
	if spans = exp.GetSpans(); len(spans) != 2 || spans[1].SpanContext.TraceID().String() != browserTraceID {
		t.Fatalf("spans %v, want a second one in the browser's trace", spans)
	}
	accessLine(t, &buf, browserTraceID)
}

// TestAccessLogWebSocket: a WebSocket stream is one line, written when it
// ends, with the header message's trace id and the message bytes; a refused
// upgrade is one line with its verdict.
func TestAccessLogWebSocket(t *testing.T) {
	t.Parallel()
	var buf testutil.SyncBuffer
	backend := startBackend(t, nil)
	_, url := startWSGateway(t, backend, gateway.WebSocketConfig{}, accessLogOption(&buf))

	tp, id := traceparent(4000)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	h := http.Header{"Origin": {testOrigin}, "Authorization": {secretAuthorization}, "Cookie": {secretCookie}}
	c, err := dialWithHeader(t, ctx, url, greetPath+"Greet", h, "traceparent: "+tp+"\r\nauthorization: "+secretAuthorization+"\r\n")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send(&greetv1.GreetRequest{Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	r, err := c.readAll()
	if err != nil || r.status() != "0" {
		t.Fatalf("status %q, %v", r.status(), err)
	}
	line := accessLine(t, &buf, id)
	checkLine(t, line, map[string]any{
		"procedure": greetPath + "Greet", "protocol": "grpc_websocket", "http_status": float64(101), "code": "ok",
		"route": "backends.default", "backend": "default", "replica": backend, "origin": testOrigin, "cors": "allowed",
	})
	// The request frame: 5 bytes of header and the message; the answer:
	// the header frame, the message and the trailer frame.
	if in, out := line["bytes_in"].(float64), line["bytes_out"].(float64); in < 5+3 || out < in {
		t.Errorf("bytes_in %v, bytes_out %v", in, out)
	}

	if _, resp, err := dialWS(t, ctx, url, greetPath+"Greet", "https://evil.example.net", nil); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("upgrade from a foreign origin: %v, %v", resp, err)
	}
	line = findAccessLine(t, &buf, "the foreign origin", func(m map[string]any) bool { return m["origin"] == "https://evil.example.net" })
	checkLine(t, line, map[string]any{
		"protocol": "grpc_websocket", "http_status": float64(403), "code": "permission_denied",
		"cors": "refused", "cors_reason": "origin", "replica": nil, "route": "backends.default",
	})
	checkNoSecrets(t, buf.String())
}
