package gateway_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// TestProtocols runs every call kind through the gateway with each client
// protocol, codec and HTTP version connect-go offers, against a grpc-go
// backend, and checks messages, metadata, errors with details and CORS
// headers on success and on error.
func TestProtocols(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	backend := startBackend(t, rec)
	g, url := startGateway(t, backend)
	waitReady(t, g)

	for _, k := range clientKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			client := newGreetClient(t, url, k)
			ctx := context.Background()

			t.Run("unary", func(t *testing.T) {
				req := connect.NewRequest(&greetv1.GreetRequest{Name: "Ada"})
				req.Header().Set("Authorization", "Bearer t0ken")
				req.Header().Set("X-Request-Id", "req-"+k.name)
				req.Header().Set("X-Token-Bin", "AAEC")
				res, err := client.Greet(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if got := res.Msg.GetGreeting(); got != "Hello, Ada!" {
					t.Errorf("greeting = %q", got)
				}
				if got := res.Header().Get(greetsvc.HeaderVersion); got != greetsvc.Version {
					t.Errorf("header %s = %q, want %q", greetsvc.HeaderVersion, got, greetsvc.Version)
				}
				if got := res.Trailer().Get(greetsvc.TrailerName); got != greetsvc.TrailerValue {
					t.Errorf("trailer %s = %q, want %q (trailers %v)", greetsvc.TrailerName, got, greetsvc.TrailerValue, res.Trailer())
				}
				if k.proto != "grpc" {
					if got := res.Header().Get("Access-Control-Allow-Origin"); got != testOrigin {
						t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, testOrigin)
					}
				}
				seen := rec.findByRequestID(t, "req-"+k.name)
				if got := seen.Header.Get("authorization"); got != "Bearer t0ken" {
					t.Errorf("backend saw authorization %q", got)
				}
				if got := seen.Header.Get("x-token-bin"); got != "\x00\x01\x02" {
					t.Errorf("backend saw x-token-bin %q", got)
				}
				for _, hop := range []string{"connection", "te", "x-grpc-web", "connect-protocol-version", "origin-when-cross-origin"} {
					if hop == "te" {
						continue // grpc-go consumes it
					}
					if v := seen.Header.Values(hop); len(v) > 0 {
						t.Errorf("backend saw %s: %v", hop, v)
					}
				}
			})

			t.Run("unary error with details", func(t *testing.T) {
				_, err := client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{}))
				var cerr *connect.Error
				if !errors.As(err, &cerr) {
					t.Fatalf("err = %v, want a *connect.Error", err)
				}
				if cerr.Code() != connect.CodeInvalidArgument {
					t.Errorf("code = %v, want invalid_argument", cerr.Code())
				}
				if cerr.Message() != "name is required" {
					t.Errorf("message = %q", cerr.Message())
				}
				details := cerr.Details()
				if len(details) != 1 {
					t.Fatalf("details = %v, want 1", details)
				}
				v, err := details[0].Value()
				if err != nil {
					t.Fatal(err)
				}
				d, ok := v.(*greetv1.GreetErrorDetail)
				if !ok || d.GetField() != "name" {
					t.Errorf("detail = %v", v)
				}
				if k.proto != "grpc" {
					if got := cerr.Meta().Get("Access-Control-Allow-Origin"); got != testOrigin {
						t.Errorf("error Access-Control-Allow-Origin = %q, want %q", got, testOrigin)
					}
				}
			})

			t.Run("server stream", func(t *testing.T) {
				stream, err := client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "Bo", Count: 5}))
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for stream.Receive() {
					n++
					if got := stream.Msg().GetIndex(); got != int32(n) {
						t.Errorf("index = %d, want %d", got, n)
					}
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				if n != 5 {
					t.Errorf("got %d messages, want 5", n)
				}
				if k.proto != "grpc" {
					if got := stream.ResponseHeader().Get("Access-Control-Allow-Origin"); got != testOrigin {
						t.Errorf("Access-Control-Allow-Origin = %q", got)
					}
				}
				_ = stream.Close()
			})

			t.Run("server stream error", func(t *testing.T) {
				stream, err := client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "Bo", Count: -1}))
				if err != nil {
					t.Fatal(err)
				}
				for stream.Receive() {
					t.Error("got a message")
				}
				if got := connect.CodeOf(stream.Err()); got != connect.CodeInvalidArgument {
					t.Errorf("code = %v (%v), want invalid_argument", got, stream.Err())
				}
				_ = stream.Close()
			})

			t.Run("client stream", func(t *testing.T) {
				if !k.h2 && k.proto != "connect" && k.proto != "grpcweb" {
					t.Skip("needs HTTP/2")
				}
				stream := client.GreetMany(ctx)
				for _, name := range []string{"Ada", "Bo", "Cy"} {
					if err := stream.Send(&greetv1.GreetManyRequest{Name: name}); err != nil {
						t.Fatal(err)
					}
				}
				res, err := stream.CloseAndReceive()
				if err != nil {
					t.Fatal(err)
				}
				if got := res.Msg.GetGreeting(); got != "Hello, Ada and Bo and Cy!" || res.Msg.GetCount() != 3 {
					t.Errorf("response = %v", res.Msg)
				}
			})

			t.Run("bidi", func(t *testing.T) {
				if !k.h2 {
					t.Skip("full-duplex bidi needs HTTP/2")
				}
				stream := client.Chat(ctx)
				for i := range 3 {
					text := fmt.Sprintf("line %d", i)
					if err := stream.Send(&greetv1.ChatRequest{Text: text}); err != nil {
						t.Fatal(err)
					}
					res, err := stream.Receive()
					if err != nil {
						t.Fatal(err)
					}
					if want := "you said: " + text; res.GetText() != want {
						t.Errorf("answer = %q, want %q", res.GetText(), want)
					}
				}
				if err := stream.CloseRequest(); err != nil {
					t.Fatal(err)
				}
				if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
					t.Errorf("after close: %v, want EOF", err)
				}
				_ = stream.CloseResponse()
			})

			t.Run("deadline", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
				defer cancel()
				start := time.Now()
				stream, err := client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "Bo", Count: 10, IntervalMs: 200}))
				if err == nil {
					for stream.Receive() {
					}
					err = stream.Err()
					_ = stream.Close()
				}
				if got := connect.CodeOf(err); got != connect.CodeDeadlineExceeded {
					t.Errorf("code = %v (%v), want deadline_exceeded", got, err)
				}
				if took := time.Since(start); took > 3*time.Second {
					t.Errorf("took %v", took)
				}
			})
		})
	}
}

func (r *recorder) findByRequestID(tb testing.TB, id string) greetsvc.Call {
	tb.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.calls {
		if c.Header.Get("x-request-id") == id {
			return c
		}
	}
	tb.Fatalf("the backend saw no call with x-request-id %q", id)
	return greetsvc.Call{}
}

// TestUnknownProcedure checks that a path outside the descriptors is
// UNIMPLEMENTED in every protocol, 404 for Connect, with no CORS grant.
func TestUnknownProcedure(t *testing.T) {
	t.Parallel()
	backend := startBackend(t, nil)
	g, url := startGateway(t, backend)
	waitReady(t, g)
	for _, k := range clientKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			client := connect.NewClient[greetv1.GreetRequest, greetv1.GreetResponse](httpClient(t, k.h2), url+"/greet.v1.GreetService/Nope", k.opts...)
			_, err := client.CallUnary(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "x"}))
			if got := connect.CodeOf(err); got != connect.CodeUnimplemented {
				t.Errorf("code = %v (%v), want unimplemented", got, err)
			}
			var cerr *connect.Error
			if errors.As(err, &cerr) {
				if v := cerr.Meta().Get("Access-Control-Allow-Origin"); v != "" {
					t.Errorf("Access-Control-Allow-Origin = %q on an unknown procedure", v)
				}
			}
		})
	}
	t.Run("connect status", func(t *testing.T) {
		t.Parallel()
		req, _ := http.NewRequest(http.MethodPost, url+"/nope.v1.Nope/Nope", strings.NewReader(""))
		req.Header.Set("Content-Type", "application/proto")
		res, err := httpClient(t, false).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body := readAll(t, res.Body)
		if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"unimplemented"`) {
			t.Errorf("status %d body %s, want 404 unimplemented", res.StatusCode, body)
		}
	})
}
