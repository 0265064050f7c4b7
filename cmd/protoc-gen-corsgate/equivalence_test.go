package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1corsgate"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/config"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// loadConfigServices reads the services of a gateway config (YAML or JSON)
// with the gateway's own loader.
func loadConfigServices(tb testing.TB, data []byte) []interceptor.Service {
	tb.Helper()
	f, err := config.Parse(data)
	if err != nil {
		tb.Fatalf("gateway config does not load: %v", err)
	}
	if len(f.Services) == 0 {
		tb.Fatal("gateway config has no services")
	}
	return f.Services
}

// examplePolicy builds the policy the CORS section of
// example/config/corsgate.yaml describes, as corsgate serve would, and returns
// it with the file's bytes.
func examplePolicy(tb testing.TB) (*interceptor.Policy, []byte) {
	tb.Helper()
	data, err := os.ReadFile("../../example/config/corsgate.yaml")
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Parse(data)
	if err != nil {
		tb.Fatal(err)
	}
	opts := []interceptor.Option{
		interceptor.WithAllowedOrigins(cfg.AllowOrigin...),
		interceptor.WithAllowedHeaders(cfg.AllowHeader...),
		interceptor.WithExposedHeaders(cfg.ExposeHeader...),
		interceptor.WithCredentials(cfg.AllowCredentials),
		interceptor.WithPrivateNetwork(cfg.PrivateNetwork),
		interceptor.WithStrict(cfg.Strict),
	}
	if cfg.Has("max-age") {
		opts = append(opts, interceptor.WithMaxAge(time.Duration(cfg.MaxAge)))
	}
	policy, err := interceptor.New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	if !slices.Contains(cfg.AllowOrigin, exampleOrigin) {
		tb.Fatalf("example config allows %v, the tests call from %s", cfg.AllowOrigin, exampleOrigin)
	}
	return policy, data
}

// equivalenceRequest is one request of the table every policy answers.
type equivalenceRequest struct {
	name   string
	method string
	path   string // procedure, or "/greet.v1.GreetService/Greet?..." for GET
	header map[string]string
	body   string
	// Expected status, so that three equally wrong answers still fail.
	wantStatus int
	wantACAO   bool
}

const (
	exampleOrigin = "https://app.example.com"
	greetPrefix   = "/greet.v1.GreetService/"
)

func preflight(name, procedure, origin, method, headers string, wantStatus int) equivalenceRequest {
	h := map[string]string{"Origin": origin, "Access-Control-Request-Method": method}
	if headers != "" {
		h["Access-Control-Request-Headers"] = headers
	}
	return equivalenceRequest{
		name: name, method: http.MethodOptions, path: greetPrefix + procedure, header: h,
		wantStatus: wantStatus, wantACAO: wantStatus == http.StatusNoContent,
	}
}

var equivalenceRequests = []equivalenceRequest{
	preflight("greet POST", "Greet", exampleOrigin, "POST", "content-type,connect-protocol-version", http.StatusNoContent),
	preflight("greet GET", "Greet", exampleOrigin, "GET", "", http.StatusNoContent),
	preflight("greet declared headers", "Greet", exampleOrigin, "POST", "authorization,content-type,x-request-id", http.StatusNoContent),
	preflight("greet headers any case and spacing", "Greet", exampleOrigin, "POST", "Content-Type ,  X-Request-ID", http.StatusNoContent),
	preflight("greet undeclared header", "Greet", exampleOrigin, "POST", "content-type,x-evil", http.StatusForbidden),
	preflight("greet foreign origin", "Greet", "https://evil.example.com", "POST", "content-type", http.StatusForbidden),
	preflight("greet null origin", "Greet", "null", "POST", "content-type", http.StatusForbidden),
	preflight("greet PUT", "Greet", exampleOrigin, "PUT", "", http.StatusForbidden),
	preflight("set greeting POST", "SetGreeting", exampleOrigin, "POST", "content-type,x-grpc-web,x-user-agent", http.StatusNoContent),
	preflight("set greeting GET", "SetGreeting", exampleOrigin, "GET", "", http.StatusForbidden),
	preflight("set greeting authorization", "SetGreeting", exampleOrigin, "POST", "authorization", http.StatusForbidden),
	preflight("stream GET", "GreetStream", exampleOrigin, "GET", "", http.StatusForbidden),
	preflight("stream POST", "GreetStream", exampleOrigin, "POST", "content-type,connect-protocol-version", http.StatusNoContent),
	preflight("client stream", "GreetMany", exampleOrigin, "POST", "content-type", http.StatusNoContent),
	preflight("bidi", "Chat", exampleOrigin, "POST", "content-type", http.StatusNoContent),
	preflight("barred", "ResetGreetings", exampleOrigin, "POST", "content-type", http.StatusForbidden),
	preflight("unknown procedure", "Nope", exampleOrigin, "POST", "content-type", http.StatusForbidden),
	{
		name: "greet unary POST", method: http.MethodPost, path: greetPrefix + "Greet",
		header:     map[string]string{"Origin": exampleOrigin, "Content-Type": "application/json", "Connect-Protocol-Version": "1", "X-Request-Id": "r1"},
		body:       `{"name":"Ada"}`,
		wantStatus: http.StatusOK, wantACAO: true,
	},
	{
		name: "greet GET", method: http.MethodGet,
		path:       greetPrefix + "Greet?connect=v1&encoding=json&message=" + url.QueryEscape(`{"name":"Ada"}`),
		header:     map[string]string{"Origin": exampleOrigin},
		wantStatus: http.StatusOK, wantACAO: true,
	},
	{
		name: "greet error", method: http.MethodPost, path: greetPrefix + "Greet",
		header:     map[string]string{"Origin": exampleOrigin, "Content-Type": "application/json"},
		body:       `{}`,
		wantStatus: http.StatusBadRequest, wantACAO: true,
	},
	{
		name: "greet foreign origin", method: http.MethodPost, path: greetPrefix + "Greet",
		header:     map[string]string{"Origin": "https://evil.example.com", "Content-Type": "application/json"},
		body:       `{"name":"Ada"}`,
		wantStatus: http.StatusOK, wantACAO: false,
	},
	{
		name: "greet same origin", method: http.MethodPost, path: greetPrefix + "Greet",
		header:     map[string]string{"Content-Type": "application/json"},
		body:       `{"name":"Ada"}`,
		wantStatus: http.StatusOK, wantACAO: false,
	},
	{
		name: "set greeting", method: http.MethodPost, path: greetPrefix + "SetGreeting",
		header:     map[string]string{"Origin": exampleOrigin, "Content-Type": "application/json"},
		body:       `{"greeting":"Hi"}`,
		wantStatus: http.StatusOK, wantACAO: true,
	},
	{
		// Refused with PERMISSION_DENIED (403), strict mode or not.
		name: "barred actual", method: http.MethodPost, path: greetPrefix + "ResetGreetings",
		header:     map[string]string{"Origin": exampleOrigin, "Content-Type": "application/json"},
		body:       `{}`,
		wantStatus: http.StatusForbidden, wantACAO: false,
	},
	{
		name: "stream as unary", method: http.MethodPost, path: greetPrefix + "GreetStream",
		header:     map[string]string{"Origin": exampleOrigin, "Content-Type": "application/json"},
		body:       `{}`,
		wantStatus: http.StatusUnsupportedMediaType, wantACAO: true,
	},
}

// answer is what a server said to one request, minus what changes by itself.
type answer struct {
	status int
	header http.Header
	body   string
}

// TestEquivalence serves the example service four ways: through the
// generated Go constructor, with the rules of the generated gateway config,
// with the rules derived at run time from greetv1's descriptor, and through
// the interceptor's drop-in Wrap. Each gets the same policy, built from the
// CORS section of example/config/corsgate.yaml, and the same requests; the
// answers must agree on status, headers and body.
func TestEquivalence(t *testing.T) {
	t.Parallel()
	policy, data := examplePolicy(t)

	derived, err := interceptor.ServiceOf(greetv1.File_greet_v1_greet_proto.Services().ByName("GreetService"))
	if err != nil {
		t.Fatal(err)
	}
	fromConfig, err := interceptor.NewTable(loadConfigServices(t, data)...)
	if err != nil {
		t.Fatal(err)
	}
	fromDescriptor := interceptor.MustNewTable(derived)

	serve := func(build func(svc greetv1connect.GreetServiceHandler) (string, http.Handler)) string {
		mux := http.NewServeMux()
		mux.Handle(build(greetsvc.NewConnect(nil)))
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	servers := []struct{ name, url string }{
		{"generated Go", serve(func(svc greetv1connect.GreetServiceHandler) (string, http.Handler) {
			return greetv1corsgate.NewGreetServiceHandler(svc, policy)
		})},
		{"gateway config", serve(func(svc greetv1connect.GreetServiceHandler) (string, http.Handler) {
			path, h := greetv1connect.NewGreetServiceHandler(svc)
			return path, policy.Handler(fromConfig, h)
		})},
		{"run-time descriptors", serve(func(svc greetv1connect.GreetServiceHandler) (string, http.Handler) {
			path, h := greetv1connect.NewGreetServiceHandler(svc)
			return path, policy.Handler(fromDescriptor, h)
		})},
		{"drop-in Wrap", serve(func(svc greetv1connect.GreetServiceHandler) (string, http.Handler) {
			return policy.Wrap(greetv1connect.NewGreetServiceHandler(svc))
		})},
	}

	// The requests run in order: SetGreeting changes later greetings, the
	// same way on every server.
	for _, req := range equivalenceRequests {
		var first answer
		for i, srv := range servers {
			got := send(t, srv.url, req)
			if i == 0 {
				first = got
				if got.status != req.wantStatus {
					t.Errorf("%s: %s answered %d, want %d", req.name, srv.name, got.status, req.wantStatus)
				}
				if hasACAO := got.header.Get("Access-Control-Allow-Origin") != ""; hasACAO != req.wantACAO {
					t.Errorf("%s: %s Access-Control-Allow-Origin %q, want one: %v", req.name, srv.name, got.header.Get("Access-Control-Allow-Origin"), req.wantACAO)
				}
				continue
			}
			if got.status != first.status {
				t.Errorf("%s: %s answered %d, %s %d", req.name, servers[0].name, first.status, srv.name, got.status)
			}
			for _, key := range unionKeys(first.header, got.header) {
				if !slices.Equal(first.header[key], got.header[key]) {
					t.Errorf("%s: header %s: %s %q, %s %q", req.name, key, servers[0].name, first.header[key], srv.name, got.header[key])
				}
			}
			if got.body != first.body {
				t.Errorf("%s: body: %s %q, %s %q", req.name, servers[0].name, first.body, srv.name, got.body)
			}
		}
	}
}

func send(t *testing.T, base string, r equivalenceRequest) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), r.method, base+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", r.name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", r.name, err)
	}
	resp.Header.Del("Date")
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

func unionKeys(a, b http.Header) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
