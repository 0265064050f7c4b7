package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

// The browser clients of the page (clientIds in example/web/src/calls/types.ts).
const (
	clientConnect      = "connect"         // connect-web, Connect protocol (GET for Greet)
	clientConnectGRPCW = "connect-grpcweb" // connect-web, gRPC-Web protocol
	clientGRPCWebText  = "grpcweb-text"    // grpc-web npm client, text mode
	clientGRPCWebBin   = "grpcweb-binary"  // grpc-web npm client, binary mode (unary only)
	clientImprobableWS = "improbable-ws"   // @improbable-eng/grpc-web, WebsocketTransport (gateway only)
)

var clients = []string{clientConnect, clientConnectGRPCW, clientGRPCWebText, clientGRPCWebBin}

// streams reports whether the client can receive a server stream.
func streams(client string) bool {
	return client != clientGRPCWebBin
}

var lastRequestID atomic.Int64

// newRequestID returns an x-request-id no other call of the test binary uses.
func newRequestID() string {
	return fmt.Sprintf("e2e-%d", lastRequestID.Add(1))
}

const testToken = "Bearer e2e-token"

// authHeaders are the request headers Greet's rules allow besides the
// protocol's: authorization and x-request-id.
func authHeaders(id string) map[string]string {
	return map[string]string{"authorization": testToken, "x-request-id": id}
}

// wantMessages compares a result's messages with want, as JSON.
func wantMessages(t *testing.T, r runResult, want ...string) {
	t.Helper()
	if len(r.Messages) != len(want) {
		t.Fatalf("got %d messages, want %d: %v", len(r.Messages), len(want), r)
	}
	for i, w := range want {
		var got, exp any
		if err := json.Unmarshal(r.Messages[i], &got); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(w), &exp); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(exp) {
			t.Errorf("message %d = %s, want %s", i, r.Messages[i], w)
		}
	}
}

// wantOK fails the test unless the call succeeded.
func wantOK(t *testing.T, r runResult) {
	t.Helper()
	if !r.OK || r.Code != "ok" {
		t.Fatalf("call failed: %v", r)
	}
}

// TestUnary: every client calls Greet and SetGreeting across origins; Greet's
// response header and trailer are readable, authorization and x-request-id
// reach the service, and connect-web's Connect transport sends Greet as GET.
func TestUnary(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			e := startEnv(t, envConfig{mode: m})
			for _, client := range clients {
				t.Run(client, func(t *testing.T) {
					t.Parallel()
					p := openPage(t, e.pageURL, e.apiURL)
					id := newRequestID()
					r := p.run(runOptions{Client: client, Method: "Greet", Target: e.apiURL, Name: "Ada", Headers: authHeaders(id)})
					wantOK(t, r)
					wantMessages(t, r, `{"greeting":"Hello, Ada!"}`)
					if got := r.Headers["x-greet-version"]; got != "1" {
						t.Errorf("header x-greet-version = %q, want %q; headers the script read: %v", got, "1", r.Headers)
					}
					if got := r.Trailers["x-greet-trailer"]; got != "greeted" {
						t.Errorf("trailer x-greet-trailer = %q, want %q; trailers the script read: %v", got, "greeted", r.Trailers)
					}

					calls := e.calls.withRequestID(id)
					if len(calls) != 1 || calls[0].Procedure != "Greet" {
						t.Fatalf("the service saw %d calls with x-request-id %s, want one Greet: %v", len(calls), id, calls)
					}
					if got := calls[0].Header.Get("Authorization"); got != testToken {
						t.Errorf("authorization at the service = %q, want %q", got, testToken)
					}
					wantMethod := http.MethodPost
					if client == clientConnect {
						wantMethod = http.MethodGet
					}
					var actual []string
					for _, req := range e.requests.withRequestID(id) {
						actual = append(actual, req.method)
					}
					if len(actual) != 1 || actual[0] != wantMethod {
						t.Errorf("origin B got Greet as %v, want one %s", actual, wantMethod)
					}
					if m == dropIn && calls[0].HTTPMethod != wantMethod {
						t.Errorf("connect-go handler saw Greet as %q, want %s", calls[0].HTTPMethod, wantMethod)
					}

					// SetGreeting declares no request headers: the protocol's are enough.
					r = p.run(runOptions{Client: client, Method: "SetGreeting", Target: e.apiURL, Greeting: "Hello"})
					wantOK(t, r)
					wantMessages(t, r, `{"previous":"Hello"}`)
				})
			}
		})
	}
}

// TestServerStream: every client that can read a server stream gets every
// message of GreetStream, in order.
func TestServerStream(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			e := startEnv(t, envConfig{mode: m})
			for _, client := range clients {
				if !streams(client) {
					continue
				}
				t.Run(client, func(t *testing.T) {
					t.Parallel()
					p := openPage(t, e.pageURL, e.apiURL)
					r := p.run(runOptions{Client: client, Method: "GreetStream", Target: e.apiURL, Name: "Bo", Count: 5, IntervalMs: 10})
					wantOK(t, r)
					var want []string
					for i := 1; i <= 5; i++ {
						want = append(want, fmt.Sprintf(`{"greeting":"Hello, Bo!","index":%d}`, i))
					}
					wantMessages(t, r, want...)
				})
			}
		})
	}
}

// TestErrorDetails: the script reads an error's code, message and
// greet.v1.GreetErrorDetail, also when the error comes trailers-only (status
// in the HTTP headers, which must be exposed for that).
func TestErrorDetails(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			e := startEnv(t, envConfig{mode: m})
			for _, client := range clients {
				t.Run(client, func(t *testing.T) {
					t.Parallel()
					p := openPage(t, e.pageURL, e.apiURL)
					r := p.run(runOptions{Client: client, Method: "Greet", Target: e.apiURL, Name: "", Headers: authHeaders(newRequestID())})
					if r.OK || r.Code != "invalid_argument" || r.Message != "name is required" {
						t.Fatalf("want invalid_argument %q, got %v", "name is required", r)
					}
					if len(r.Details) != 1 || r.Details[0].Type != "greet.v1.GreetErrorDetail" {
						t.Fatalf("want one greet.v1.GreetErrorDetail, got %v", r.Details)
					}
					var d struct{ Field, Reason string }
					if err := json.Unmarshal(r.Details[0].Value, &d); err != nil {
						t.Fatal(err)
					}
					if d.Field != "name" || d.Reason != "name must not be empty" {
						t.Errorf("detail = %+v, want field name, reason %q", d, "name must not be empty")
					}
					if got := r.Headers["x-greet-version"]; got != "1" {
						t.Errorf("header x-greet-version on the error = %q, want %q; headers: %v", got, "1", r.Headers)
					}
					if client == clientConnectGRPCW {
						// connect-web shows the raw HTTP headers. connect-go
						// answers this error trailers-only (status in the
						// headers, which must be exposed for the script); the
						// gateway sends it in the body's trailer frame.
						where, status := "headers (trailers-only)", r.Headers
						if m == viaGateway {
							where, status = "trailer frame", r.Trailers
						}
						if status["grpc-status"] != "3" || status["grpc-status-details-bin"] == "" {
							t.Errorf("want grpc-status 3 and details in the %s; headers %v, trailers %v", where, r.Headers, r.Trailers)
						}
					}

					if !streams(client) {
						return
					}
					r = p.run(runOptions{Client: client, Method: "GreetStream", Target: e.apiURL, Name: "Bo", Count: -1})
					if r.OK || r.Code != "invalid_argument" || !strings.Contains(r.Message, "count must be between") {
						t.Errorf("GreetStream count -1: want invalid_argument about count, got %v", r)
					}
				})
			}
		})
	}
}

// TestBrowserBarred: ResetGreetings is browser-barred in the proto: no client
// reaches it cross-origin, though a caller without Origin (not a browser) does.
func TestBrowserBarred(t *testing.T) {
	t.Parallel()
	const path = "/" + greetv1connect.GreetServiceName + "/ResetGreetings"
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			e := startEnv(t, envConfig{mode: m})
			t.Run("browser", func(t *testing.T) {
				for _, client := range clients {
					t.Run(client, func(t *testing.T) {
						t.Parallel()
						p := openPage(t, e.pageURL, e.apiURL)
						// No extra header: the refusal must come from the barring alone.
						r := p.run(runOptions{Client: client, Method: "ResetGreetings", Target: e.apiURL})
						if r.OK {
							t.Fatalf("browser-barred ResetGreetings succeeded: %v", r)
						}
					})
				}
			})
			if n := e.calls.count("ResetGreetings"); n != 0 {
				t.Errorf("the barred procedure ran %d times for the browser", n)
			}
			if n := e.requests.count(path, http.MethodOptions); n == 0 {
				t.Errorf("no preflight for %s reached origin B: the browser did not try", path)
			}
			if n := e.requests.count(path, http.MethodPost); n != 0 {
				t.Errorf("the browser sent %d barred POSTs after its preflight", n)
			}
			// The procedure exists and works without CORS: the refusal above
			// is the policy's.
			c := greetv1connect.NewGreetServiceClient(http.DefaultClient, e.apiURL)
			if _, err := c.ResetGreetings(t.Context(), connect.NewRequest(&greetv1.ResetGreetingsRequest{})); err != nil {
				t.Fatalf("ResetGreetings without Origin: %v", err)
			}
			if n := e.calls.count("ResetGreetings"); n != 1 {
				t.Errorf("ResetGreetings without Origin: the service saw %d calls, want 1", n)
			}
		})
	}
}
