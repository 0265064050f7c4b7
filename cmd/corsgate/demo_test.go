package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/internal/cliflags"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

func TestDemoPreflight(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	const (
		connectHeaders = "connect-protocol-version,content-type"
		grpcWebHeaders = "content-type,x-grpc-web,x-user-agent"
		preflightVary  = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
	)
	tests := []struct {
		name      string
		path      string
		origin    string // "" means the page's origin
		method    string
		headers   string
		wantOK    bool
		wantACAM  string
		wantAllow []string // names that must be in Access-Control-Allow-Headers
	}{
		{
			name: "Greet POST with declared headers", path: greetv1connect.GreetServiceGreetProcedure,
			method: "POST", headers: "authorization,connect-protocol-version,content-type,x-request-id",
			wantOK: true, wantACAM: "GET, POST",
			wantAllow: []string{"authorization", "connect-protocol-version", "content-type", "x-request-id"},
		},
		{
			name: "Greet GET", path: greetv1connect.GreetServiceGreetProcedure, method: "GET", headers: "authorization",
			wantOK: true, wantACAM: "GET, POST", wantAllow: []string{"authorization"},
		},
		{
			name: "Greet gRPC-Web, any case and spacing", path: greetv1connect.GreetServiceGreetProcedure,
			method: "POST", headers: "Content-Type, X-Grpc-Web ,x-user-agent", wantOK: true, wantACAM: "GET, POST",
			wantAllow: []string{"content-type", "x-grpc-web", "x-user-agent"},
		},
		{
			name: "SetGreeting POST", path: greetv1connect.GreetServiceSetGreetingProcedure, method: "POST",
			headers: connectHeaders, wantOK: true, wantACAM: "POST", wantAllow: []string{"content-type"},
		},
		{
			name: "GreetStream gRPC-Web", path: greetv1connect.GreetServiceGreetStreamProcedure, method: "POST",
			headers: grpcWebHeaders, wantOK: true, wantACAM: "POST", wantAllow: []string{"x-grpc-web"},
		},
		{
			name: "Chat Connect", path: greetv1connect.GreetServiceChatProcedure, method: "POST",
			headers: connectHeaders, wantOK: true, wantACAM: "POST", wantAllow: []string{"connect-protocol-version"},
		},
		{name: "SetGreeting GET", path: greetv1connect.GreetServiceSetGreetingProcedure, method: "GET", headers: ""},
		{name: "SetGreeting authorization not declared", path: greetv1connect.GreetServiceSetGreetingProcedure, method: "POST", headers: "authorization,content-type"},
		{name: "Greet PUT", path: greetv1connect.GreetServiceGreetProcedure, method: "PUT", headers: connectHeaders},
		{name: "Greet unknown header", path: greetv1connect.GreetServiceGreetProcedure, method: "POST", headers: "content-type,x-evil"},
		{name: "disallowed origin", path: greetv1connect.GreetServiceGreetProcedure, origin: evilOrigin, method: "POST", headers: connectHeaders},
		{name: "null origin", path: greetv1connect.GreetServiceGreetProcedure, origin: "null", method: "POST", headers: connectHeaders},
		{name: "other port of the page's host", path: greetv1connect.GreetServiceGreetProcedure, origin: "http://127.0.0.1:1", method: "POST", headers: connectHeaders},
		{name: "unknown procedure", path: "/greet.v1.GreetService/Nope", method: "POST", headers: connectHeaders},
		{name: "unknown service", path: "/other.v1.OtherService/Greet", method: "POST", headers: connectHeaders},
		{name: "barred ResetGreetings", path: greetv1connect.GreetServiceResetGreetingsProcedure, method: "POST", headers: connectHeaders},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			origin := tt.origin
			if origin == "" {
				origin = d.web
			}
			req, err := http.NewRequest(http.MethodOptions, d.api+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", tt.method)
			if tt.headers != "" {
				req.Header.Set("Access-Control-Request-Headers", tt.headers)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if !tt.wantOK {
				if res.StatusCode >= 200 && res.StatusCode < 300 {
					t.Errorf("status %d, want a refusal", res.StatusCode)
				}
				if c := corsHeaders(res.Header); len(c) > 0 {
					t.Errorf("refused preflight carries CORS headers %v", c)
				}
				return
			}
			if res.StatusCode != http.StatusNoContent {
				t.Fatalf("status %d, want 204; stderr:\n%s", res.StatusCode, d.stderr)
			}
			exact := map[string]string{
				"Access-Control-Allow-Origin":          origin,
				"Access-Control-Allow-Methods":         tt.wantACAM,
				"Access-Control-Max-Age":               "7200",
				"Access-Control-Allow-Credentials":     "",
				"Access-Control-Allow-Private-Network": "",
				"Vary":                                 preflightVary,
			}
			for name, want := range exact {
				if got := strings.Join(res.Header.Values(name), ", "); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			allowed := headerList(res.Header.Values("Access-Control-Allow-Headers"))
			for _, name := range tt.wantAllow {
				if !slices.Contains(allowed, name) {
					t.Errorf("Access-Control-Allow-Headers %q lacks %q", allowed, name)
				}
			}
			if tt.path != greetv1connect.GreetServiceGreetProcedure && slices.Contains(allowed, "authorization") {
				t.Errorf("Access-Control-Allow-Headers %q allows authorization, which only Greet declares", allowed)
			}
		})
	}
}

func TestDemoUnary(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			client, rec := d.client(t, p, d.web)
			id := newRequestID(t)
			res, err := client.Greet(context.Background(), greetRequest("Ada", id))
			if err != nil {
				t.Fatalf("Greet: %v", err)
			}
			if got := res.Msg.GetGreeting(); got != "Hello, Ada!" {
				t.Errorf("greeting = %q", got)
			}
			if got := res.Header().Get("X-Greet-Version"); got != "1" {
				t.Errorf("x-greet-version = %q, want 1", got)
			}
			if got := res.Trailer().Get("X-Greet-Trailer"); got != "greeted" {
				t.Errorf("x-greet-trailer = %q, want greeted", got)
			}
			wantAllowed(t, rec.header(), d.web, exposedForGreet)
			if got := rec.header().Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("Access-Control-Allow-Credentials = %q without --allow-credentials", got)
			}

			calls := d.callsWithID(t, id)
			if len(calls) != 1 {
				t.Fatalf("server saw %d calls with the request id, want 1: %+v", len(calls), calls)
			}
			c := calls[0]
			if c.Procedure != "Greet" || c.HTTPMethod != p.httpMethod {
				t.Errorf("server saw %s over %q, want Greet over %q", c.Procedure, c.HTTPMethod, p.httpMethod)
			}
			if got := c.Header.Get("Authorization"); got != "Bearer demo-token" {
				t.Errorf("server saw Authorization %q", got)
			}
		})
	}
}

func TestDemoErrorCarriesCORS(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			client, rec := d.client(t, p, d.web)
			_, err := client.Greet(context.Background(), greetRequest("", newRequestID(t)))
			if got := connect.CodeOf(err); got != connect.CodeInvalidArgument {
				t.Fatalf("Greet(empty name) code %v (%v), want invalid_argument", got, err)
			}
			var cerr *connect.Error
			if !errors.As(err, &cerr) || len(cerr.Details()) != 1 {
				t.Fatalf("error %v: want one detail", err)
			}
			v, derr := cerr.Details()[0].Value()
			if detail, ok := v.(*greetv1.GreetErrorDetail); derr != nil || !ok || detail.GetField() != "name" {
				t.Errorf("detail = %v, %v; want GreetErrorDetail for field name", v, derr)
			}
			wantAllowed(t, rec.header(), d.web, exposedForGreet)
		})
	}
}

func TestDemoStreams(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	for _, p := range protocols {
		if p.httpMethod == http.MethodGet {
			continue // GET is for unary procedures only
		}
		t.Run(p.name+"/GreetStream", func(t *testing.T) {
			t.Parallel()
			client, rec := d.client(t, p, d.web)
			stream, err := client.GreetStream(context.Background(), connect.NewRequest(&greetv1.GreetStreamRequest{Name: "Ada", Count: 3}))
			if err != nil {
				t.Fatal(err)
			}
			var got []int32
			for stream.Receive() {
				got = append(got, stream.Msg().GetIndex())
			}
			if err := stream.Err(); err != nil {
				t.Fatal(err)
			}
			if err := stream.Close(); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, []int32{1, 2, 3}) {
				t.Errorf("indexes %v, want [1 2 3]", got)
			}
			wantStreamAllowed(t, rec.header(), d.web)
		})
		t.Run(p.name+"/GreetMany", func(t *testing.T) {
			t.Parallel()
			client, rec := d.client(t, p, d.web)
			stream := client.GreetMany(context.Background())
			for _, name := range []string{"Ada", "Grace"} {
				if err := stream.Send(&greetv1.GreetManyRequest{Name: name}); err != nil {
					t.Fatal(err)
				}
			}
			res, err := stream.CloseAndReceive()
			if err != nil {
				t.Fatal(err)
			}
			if res.Msg.GetCount() != 2 {
				t.Errorf("count %d, want 2", res.Msg.GetCount())
			}
			wantStreamAllowed(t, rec.header(), d.web)
		})
		if !p.h2c {
			continue // bidi needs HTTP/2
		}
		t.Run(p.name+"/Chat", func(t *testing.T) {
			t.Parallel()
			client, rec := d.client(t, p, d.web)
			stream := client.Chat(context.Background())
			for _, text := range []string{"hi", "bye"} {
				if err := stream.Send(&greetv1.ChatRequest{Text: text}); err != nil {
					t.Fatal(err)
				}
				msg, err := stream.Receive()
				if err != nil {
					t.Fatal(err)
				}
				if want := "you said: " + text; msg.GetText() != want {
					t.Errorf("answer %q, want %q", msg.GetText(), want)
				}
			}
			if err := stream.CloseRequest(); err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Receive(); !errors.Is(err, io.EOF) {
				t.Errorf("after close: %v, want EOF", err)
			}
			if err := stream.CloseResponse(); err != nil {
				t.Fatal(err)
			}
			wantStreamAllowed(t, rec.header(), d.web)
		})
	}
}

// TestDemoDisallowedOrigin: without --strict, a call from a disallowed origin
// reaches the handler, but the browser hides the answer: no CORS headers.
func TestDemoDisallowedOrigin(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			client, rec := d.client(t, p, evilOrigin)
			id := newRequestID(t)
			if _, err := client.Greet(context.Background(), greetRequest("Ada", id)); err != nil {
				t.Fatalf("Greet: %v", err)
			}
			if c := corsHeaders(rec.header()); len(c) > 0 {
				t.Errorf("answer to a disallowed origin carries CORS headers %v", c)
			}
			if !slices.Contains(headerList(rec.header().Values("Vary")), "origin") {
				t.Errorf("Vary = %q, want Origin", rec.header().Values("Vary"))
			}
			if n := len(d.callsWithID(t, id)); n != 1 {
				t.Errorf("server saw %d calls, want 1 (not strict)", n)
			}
		})
	}
}

func TestDemoStrict(t *testing.T) {
	t.Parallel()
	d := startDemo(t, "--strict")
	type call func(ctx context.Context, c greetv1connect.GreetServiceClient, id string) error
	greet := func(ctx context.Context, c greetv1connect.GreetServiceClient, id string) error {
		_, err := c.Greet(ctx, greetRequest("Ada", id))
		return err
	}
	reset := func(ctx context.Context, c greetv1connect.GreetServiceClient, id string) error {
		req := connect.NewRequest(&greetv1.ResetGreetingsRequest{})
		req.Header().Set("X-Request-Id", id)
		_, err := c.ResetGreetings(ctx, req)
		return err
	}
	stream := func(ctx context.Context, c greetv1connect.GreetServiceClient, id string) error {
		req := connect.NewRequest(&greetv1.GreetStreamRequest{Name: "Ada", Count: 2})
		req.Header().Set("X-Request-Id", id)
		s, err := c.GreetStream(ctx, req)
		if err != nil {
			return err
		}
		defer s.Close()
		for s.Receive() {
		}
		return s.Err()
	}
	tests := []struct {
		name     string
		origin   string // "" sends no Origin (same-origin or not a browser)
		call     call
		wantCode connect.Code // 0 means success
	}{
		{name: "disallowed origin Greet", origin: evilOrigin, call: greet, wantCode: connect.CodePermissionDenied},
		{name: "disallowed origin GreetStream", origin: evilOrigin, call: stream, wantCode: connect.CodePermissionDenied},
		{name: "allowed origin barred ResetGreetings", origin: "page", call: reset, wantCode: connect.CodePermissionDenied},
		{name: "allowed origin Greet", origin: "page", call: greet},
		{name: "allowed origin GreetStream", origin: "page", call: stream},
		{name: "no Origin Greet", origin: "", call: greet},
	}
	for _, p := range protocols {
		for _, tt := range tests {
			if p.httpMethod == http.MethodGet && tt.name != "disallowed origin Greet" && tt.name != "allowed origin Greet" {
				continue
			}
			t.Run(p.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				origin := tt.origin
				if origin == "page" {
					origin = d.web
				}
				client, rec := d.client(t, p, origin)
				id := newRequestID(t)
				err := tt.call(context.Background(), client, id)
				calls := d.callsWithID(t, id)
				if tt.wantCode == 0 {
					if err != nil {
						t.Fatalf("call: %v", err)
					}
					if len(calls) != 1 {
						t.Errorf("server saw %d calls, want 1", len(calls))
					}
					return
				}
				if got := connect.CodeOf(err); got != tt.wantCode {
					t.Fatalf("code %v (%v), want %v", got, err, tt.wantCode)
				}
				if len(calls) != 0 {
					t.Errorf("the handler ran %d times for a refused call", len(calls))
				}
				if c := corsHeaders(rec.header()); tt.origin == evilOrigin && len(c) > 0 {
					t.Errorf("refusal of a disallowed origin carries CORS headers %v", c)
				}
			})
		}
	}
}

func TestDemoCredentials(t *testing.T) {
	t.Parallel()
	d := startDemo(t, "--allow-credentials")
	req, err := http.NewRequest(http.MethodOptions, d.api+greetv1connect.GreetServiceGreetProcedure, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", d.web)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent || res.Header.Get("Access-Control-Allow-Credentials") != "true" ||
		res.Header.Get("Access-Control-Allow-Origin") != d.web {
		t.Errorf("preflight: status %d, headers %v; want 204 with credentials and the exact origin", res.StatusCode, corsHeaders(res.Header))
	}

	client, rec := d.client(t, protocols[0], d.web)
	if _, err := client.Greet(context.Background(), greetRequest("Ada", newRequestID(t))); err != nil {
		t.Fatal(err)
	}
	if got := rec.header().Values("Access-Control-Allow-Credentials"); !slices.Equal(got, []string{"true"}) {
		t.Errorf("actual: Access-Control-Allow-Credentials = %q, want [true]", got)
	}
	wantAllowed(t, rec.header(), d.web, exposedForGreet)
}

// TestDemoOriginFlags checks --allow-origin adds to the page's origin, and
// the other flags reach the policy.
func TestDemoOriginFlags(t *testing.T) {
	t.Parallel()
	d := startDemo(t, "--allow-origin", otherOrigin, "--private-network", "--max-age", "10m",
		"--allow-header", "x-tenant", "--expose-header", "x-extra")
	tests := []struct {
		name   string
		origin string
		wantOK bool
	}{
		{name: "flag origin", origin: otherOrigin, wantOK: true},
		{name: "page origin", origin: "page", wantOK: true},
		{name: "other origin", origin: evilOrigin, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			origin := tt.origin
			if origin == "page" {
				origin = d.web
			}
			req, err := http.NewRequest(http.MethodOptions, d.api+greetv1connect.GreetServiceSetGreetingProcedure, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type,x-tenant")
			req.Header.Set("Access-Control-Request-Private-Network", "true")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if !tt.wantOK {
				if res.StatusCode != http.StatusForbidden || len(corsHeaders(res.Header)) > 0 {
					t.Errorf("status %d, CORS headers %v; want 403 and none", res.StatusCode, corsHeaders(res.Header))
				}
				return
			}
			want := map[string]string{
				"Access-Control-Allow-Origin":          origin,
				"Access-Control-Allow-Private-Network": "true",
				"Access-Control-Max-Age":               "600",
			}
			if res.StatusCode != http.StatusNoContent {
				t.Fatalf("status %d, want 204", res.StatusCode)
			}
			for name, v := range want {
				if got := res.Header.Get(name); got != v {
					t.Errorf("%s = %q, want %q", name, got, v)
				}
			}
			client, rec := d.client(t, protocols[0], origin)
			if _, err := client.Greet(context.Background(), greetRequest("Ada", newRequestID(t))); err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(headerList(rec.header().Values("Access-Control-Expose-Headers")), "x-extra") {
				t.Errorf("Access-Control-Expose-Headers %q lacks x-extra", rec.header().Values("Access-Control-Expose-Headers"))
			}
		})
	}
}

func TestDemoWebOrigin(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	tests := []struct {
		name     string
		url      string
		wantCode int
		wantType string
		wantBody string
	}{
		{name: "page", url: d.web + "/", wantCode: http.StatusOK, wantType: "text/html", wantBody: "<"},
		{name: "page config", url: d.web + "/config.json", wantCode: http.StatusOK, wantType: "application/json", wantBody: `{"api":"` + d.api + `"}`},
		{name: "calls", url: d.api + "/debug/calls", wantCode: http.StatusOK, wantType: "application/json", wantBody: "["},
		{name: "calls bad since", url: d.api + "/debug/calls?since=x", wantCode: http.StatusBadRequest, wantType: "text/plain", wantBody: `since="x"`},
		{name: "no page on the API origin", url: d.api + "/", wantCode: http.StatusNotFound, wantType: "text/plain", wantBody: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := http.Get(tt.url)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.wantCode || !strings.HasPrefix(res.Header.Get("Content-Type"), tt.wantType) ||
				!strings.Contains(string(body), tt.wantBody) {
				t.Errorf("GET %s: %d %q %.200q; want %d %q containing %q",
					tt.url, res.StatusCode, res.Header.Get("Content-Type"), body, tt.wantCode, tt.wantType, tt.wantBody)
			}
		})
	}
}

func TestCallsSince(t *testing.T) {
	t.Parallel()
	d := startDemo(t)
	client, _ := d.client(t, protocols[0], "")
	for i := range 3 {
		if _, err := client.Greet(context.Background(), greetRequest(fmt.Sprint("n", i), newRequestID(t))); err != nil {
			t.Fatal(err)
		}
	}
	res, err := http.Get(d.api + "/debug/calls?since=1")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var calls []loggedCall
	if err := json.NewDecoder(res.Body).Decode(&calls); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, c := range calls {
		seqs = append(seqs, c.Seq)
	}
	if !slices.Equal(seqs, []uint64{2, 3}) {
		t.Errorf("since=1 gave seqs %v, want [2 3]", seqs)
	}
}

func TestCallLogKeepsLast(t *testing.T) {
	t.Parallel()
	l := &callLog{max: 2}
	for _, p := range []string{"a", "b", "c"} {
		l.add(greetsvc.Call{Procedure: p})
	}
	var seqs []string
	for _, c := range l.calls {
		seqs = append(seqs, fmt.Sprint(c.Seq, c.Procedure))
	}
	if !slices.Equal(seqs, []string{"2b", "3c"}) {
		t.Errorf("kept %v, want [2b 3c]", seqs)
	}
}

func TestOriginsOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr        string
		port        int
		wantURL     string
		wantOrigins []string
	}{
		{addr: "127.0.0.1:0", port: 8081, wantURL: "http://127.0.0.1:8081", wantOrigins: []string{"http://127.0.0.1:8081"}},
		{addr: "localhost:8081", port: 8081, wantURL: "http://localhost:8081", wantOrigins: []string{"http://localhost:8081"}},
		{addr: ":8081", port: 8081, wantURL: "http://localhost:8081", wantOrigins: []string{"http://localhost:8081", "http://127.0.0.1:8081"}},
		{addr: "0.0.0.0:0", port: 5000, wantURL: "http://localhost:5000", wantOrigins: []string{"http://localhost:5000", "http://127.0.0.1:5000"}},
		{addr: "[::]:80", port: 80, wantURL: "http://localhost", wantOrigins: []string{"http://localhost", "http://127.0.0.1"}},
		{addr: "example.test:80", port: 80, wantURL: "http://example.test", wantOrigins: []string{"http://example.test"}},
		{addr: "[::1]:9", port: 9, wantURL: "http://[::1]:9", wantOrigins: []string{"http://[::1]:9"}},
	}
	for _, tt := range tests {
		url, origins := originsOf(tt.addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: tt.port})
		if url != tt.wantURL || !slices.Equal(origins, tt.wantOrigins) {
			t.Errorf("originsOf(%q, port %d) = %q, %q; want %q, %q", tt.addr, tt.port, url, origins, tt.wantURL, tt.wantOrigins)
		}
	}
}

// TestNewDemo drives the handlers newDemo builds without the command: the
// page's origins come from the caller, and a nil logger is allowed.
func TestNewDemo(t *testing.T) {
	t.Parallel()
	const page = "http://page.test:8081"
	d, err := newDemo(demoConfig{WebOrigins: []string{page}, APIURL: "http://api.test:8080"})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(d.APIHandler)
	t.Cleanup(api.Close)
	web := httptest.NewServer(d.WebHandler)
	t.Cleanup(web.Close)

	tests := []struct {
		name       string
		origin     string
		wantStatus int
	}{
		{name: "page origin", origin: page, wantStatus: http.StatusNoContent},
		{name: "the page server's real address is not the configured origin", origin: web.URL, wantStatus: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequest(http.MethodOptions, api.URL+greetv1connect.GreetServiceGreetProcedure, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			res, err := api.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.wantStatus {
				t.Errorf("preflight from %s: %d, want %d", tt.origin, res.StatusCode, tt.wantStatus)
			}
		})
	}

	res, err := web.Client().Get(web.URL + "/config.json")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var cfg struct{ API string }
	if err := json.NewDecoder(res.Body).Decode(&cfg); err != nil || cfg.API != "http://api.test:8080" {
		t.Errorf("config.json: %+v, %v; want api http://api.test:8080", cfg, err)
	}
}

func TestNewDemoRefusesPolicy(t *testing.T) {
	t.Parallel()
	_, err := newDemo(demoConfig{CORS: cliflags.CORS{AllowOrigins: []string{"*"}, AllowCredentials: true}})
	if !cliflags.IsUsage(err) {
		t.Errorf("newDemo(* with credentials) error = %v, want a UsageError", err)
	}
}

// TestDemoMessageSizeUnbounded is the regression test of the demo's
// missing message size limit: a small gzip body expanding to 1 GB grew it
// to 7 GB. A message over the limit, compressed or not, is now
// RESOURCE_EXHAUSTED, in Connect and in gRPC-Web text (whose base64 body the
// interceptor bounds itself).
func TestDemoMessageSizeUnbounded(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	d, err := newDemo(demoConfig{WebOrigins: []string{"http://page.test:8081"}, MaxMessageSize: limit})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(d.APIHandler)
	t.Cleanup(api.Close)

	msg, err := proto.Marshal(&greetv1.GreetRequest{Name: strings.Repeat("z", 16<<20)})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(msg)
	_ = zw.Close()
	if gz.Len() > limit {
		t.Fatalf("compressed body of %d bytes, want it under the limit", gz.Len())
	}
	req, err := http.NewRequest(http.MethodPost, api.URL+greetv1connect.GreetServiceGreetProcedure, bytes.NewReader(gz.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/proto")
	req.Header.Set("Content-Encoding", "gzip")
	res, err := api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !bytes.Contains(body, []byte(`"resource_exhausted"`)) {
		t.Errorf("gzip body expanding to 16 MiB: HTTP %d, %.100q; want resource_exhausted", res.StatusCode, body)
	}

	// gRPC-Web text: a base64 body far over the limit.
	text := base64.StdEncoding.EncodeToString(append([]byte{0, 0, 0x10, 0, 0}, make([]byte, 1<<20)...))
	req, err = http.NewRequest(http.MethodPost, api.URL+greetv1connect.GreetServiceGreetProcedure, strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc-web-text")
	res, err = api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	raw, _ := base64.StdEncoding.DecodeString(string(body))
	if st := res.Header.Get("Grpc-Status"); st != "8" && !bytes.Contains(raw, []byte("grpc-status: 8")) {
		t.Errorf("gRPC-Web text body of 1 MiB: grpc-status %q, body %.100q; want 8 (RESOURCE_EXHAUSTED)", st, raw)
	}
}
