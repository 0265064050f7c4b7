package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

const (
	secretAuthorization = "Bearer s3cret-token-never-logged"
	secretCookie        = "session=c00kie-value-never-logged"
)

// accessLines returns the access log's lines parsed, waiting until one has
// trace id; the line is logged after the answer went out.
func accessLine(tb testing.TB, buf *syncBuffer, traceID string) map[string]any {
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
			if m["trace_id"] == traceID {
				return m
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no access log line with trace_id %s in:\n%s", traceID, buf.String())
		}
		time.Sleep(5 * time.Millisecond)
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
	var buf syncBuffer
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
	for _, secret := range []string{secretAuthorization, "s3cret", secretCookie, "c00kie"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the access log holds %q:\n%s", secret, buf.String())
		}
	}
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
	var buf syncBuffer
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
