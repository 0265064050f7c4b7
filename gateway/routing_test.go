package gateway_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/testutil"
)

const adminOrigin = "https://admin.example.com"

// routedConfig is two backends behind one gateway: greetd's
// greet.v1.GreetService under the default policy (testOrigin), grpc-go's
// grpc.testing.TestService under a route policy of its own (adminOrigin).
func routedConfig(tb testing.TB, greet, testing string) gateway.Config {
	tb.Helper()
	def, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin))
	if err != nil {
		tb.Fatal(err)
	}
	admin, err := interceptor.New(interceptor.WithAllowedOrigins(adminOrigin))
	if err != nil {
		tb.Fatal(err)
	}
	return gateway.Config{
		Policy: def,
		Backends: []gateway.Backend{
			{Name: "greet", Addresses: []string{greet}},
			{Name: "testing", Addresses: []string{testing}},
		},
		Routes: []gateway.Route{
			{Services: []string{"greet.v1.*"}, Backend: "greet"},
			{Services: []string{"grpc.testing.TestService"}, Backend: "testing", Policy: admin},
		},
		Logger: slog.New(slog.DiscardHandler),
	}
}

func startRouted(tb testing.TB, cfg gateway.Config) (*gateway.Gateway, string) {
	tb.Helper()
	g, err := gateway.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = g.Close() })
	return g, serveHandler(tb, g)
}

// originClient is httpClient with another Origin.
func originClient(tb testing.TB, h2 bool, origin string) *http.Client {
	tb.Helper()
	c := httpClient(tb, h2)
	next := c.Transport
	c.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Header.Set("Origin", origin)
		return next.RoundTrip(r)
	})
	return c
}

// TestRoutedBackends calls two services on two grpc-go backends through one
// gateway in every protocol, each from the origin its route allows.
func TestRoutedBackends(t *testing.T) {
	t.Parallel()
	g, url := startRouted(t, routedConfig(t, startBackend(t, nil), testutil.StartTestService(t)))
	waitReady(t, g)
	for _, k := range clientKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			greet := newGreetClient(t, url, k)
			res, err := greet.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "route"}))
			if err != nil {
				t.Fatalf("Greet: %v", err)
			}
			if !strings.Contains(res.Msg.GetGreeting(), "route") {
				t.Errorf("Greet = %q", res.Msg.GetGreeting())
			}
			unary := connect.NewClient[testgrpc.SimpleRequest, testgrpc.SimpleResponse](
				originClient(t, k.h2, adminOrigin), url+"/grpc.testing.TestService/UnaryCall", k.opts...)
			out, err := unary.CallUnary(context.Background(), connect.NewRequest(&testgrpc.SimpleRequest{
				Payload: &testgrpc.Payload{Body: []byte("echo")}}))
			if err != nil {
				t.Fatalf("UnaryCall: %v", err)
			}
			if string(out.Msg.GetPayload().GetBody()) != "echo" {
				t.Errorf("UnaryCall payload = %q, want echo", out.Msg.GetPayload().GetBody())
			}
			if k.proto != "grpc" && out.Header().Get("Access-Control-Allow-Origin") != adminOrigin {
				t.Errorf("UnaryCall ACAO = %q, want %q", out.Header().Get("Access-Control-Allow-Origin"), adminOrigin)
			}
		})
	}
}

// TestRoutedCORS checks that an origin allowed on one route is refused on
// the other, in preflights and actual requests.
func TestRoutedCORS(t *testing.T) {
	t.Parallel()
	g, url := startRouted(t, routedConfig(t, startBackend(t, nil), testutil.StartTestService(t)))
	waitReady(t, g)
	tests := []struct {
		path, origin string
		allowed      bool
	}{
		{path: "/greet.v1.GreetService/Greet", origin: testOrigin, allowed: true},
		{path: "/greet.v1.GreetService/Greet", origin: adminOrigin},
		{path: "/grpc.testing.TestService/UnaryCall", origin: adminOrigin, allowed: true},
		{path: "/grpc.testing.TestService/UnaryCall", origin: testOrigin},
		{path: "/grpc.testing.UnknownService/Call", origin: adminOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.path+" "+tt.origin, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodOptions, url+tt.path, nil)
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "content-type,x-grpc-web")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = res.Body.Close()
			acao := res.Header.Get("Access-Control-Allow-Origin")
			if tt.allowed && (res.StatusCode != http.StatusNoContent || acao != tt.origin) {
				t.Errorf("preflight = %d ACAO %q, want 204 and %q", res.StatusCode, acao, tt.origin)
			}
			if !tt.allowed && (res.StatusCode != http.StatusForbidden || acao != "") {
				t.Errorf("preflight = %d ACAO %q, want 403 without CORS headers", res.StatusCode, acao)
			}
			// The actual request: gRPC-Web, an empty message.
			req, _ = http.NewRequest(http.MethodPost, url+tt.path, strings.NewReader("\x00\x00\x00\x00\x00"))
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Content-Type", "application/grpc-web+proto")
			res, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			_ = res.Body.Close()
			acao = res.Header.Get("Access-Control-Allow-Origin")
			if tt.allowed != (acao == tt.origin) {
				t.Errorf("actual request ACAO = %q, allowed %v", acao, tt.allowed)
			}
		})
	}
	for path, want := range map[string]gateway.Resolution{
		"/greet.v1.GreetService/Greet":        {Route: "routes[0]", Backend: "greet"},
		"/grpc.testing.TestService/EmptyCall": {Route: "routes[1]", Backend: "testing"},
	} {
		got, ok := g.Resolve(path)
		if !ok || got.Route != want.Route || got.Backend != want.Backend || got.Policy == nil || got.Table == nil {
			t.Errorf("Resolve(%s) = %+v %v, want route %s backend %s", path, got, ok, want.Route, want.Backend)
		}
	}
	if _, ok := g.Resolve("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"); ok {
		t.Error("reflection is routed with two backends; no route claims it")
	}
}

func filesOf(tb testing.TB, paths ...string) *protoregistry.Files {
	tb.Helper()
	var set []*protoregistry.Files
	for _, p := range paths {
		fd, err := protoregistry.GlobalFiles.FindFileByPath(p)
		if err != nil {
			tb.Fatal(err)
		}
		files, err := protodesc.NewFiles(testutil.DescriptorSet(fd))
		if err != nil {
			tb.Fatal(err)
		}
		set = append(set, files)
	}
	return set[0]
}

// TestRoutingRefusedAtStart checks the routing tables New refuses, naming the
// setting at fault.
func TestRoutingRefusedAtStart(t *testing.T) {
	t.Parallel()
	greetFiles := filesOf(t, "greet/v1/greet.proto")
	testingFiles := filesOf(t, "grpc/testing/test.proto")
	tests := []struct {
		name    string
		edit    func(*gateway.Config)
		field   string
		wantKey string
		want    string
	}{
		{name: "pattern matching nothing", field: "Routes", wantKey: "routes[1].services[1]", want: "matches no service",
			edit: func(c *gateway.Config) { c.Routes[1].Services = append(c.Routes[1].Services, "grpc.nosuch.*") }},
		{name: "service in two backends", field: "Routes", wantKey: "routes", want: "greet.v1.GreetService is in the descriptors of backends greet and third",
			edit: func(c *gateway.Config) {
				c.Routes = c.Routes[1:]
				c.Backends = append(c.Backends, gateway.Backend{Name: "third", Addresses: []string{"127.0.0.1:3"}, Files: greetFiles})
			}},
		{name: "two routes claim a service", field: "Routes[1].Services[0]", want: "a service goes to one route",
			edit: func(c *gateway.Config) { c.Routes[1].Services = []string{"greet.v1.GreetService"} }},
		{name: "unknown backend", field: "Routes[1].Backend", want: `"nosuch" names no backend`,
			edit: func(c *gateway.Config) { c.Routes[1].Backend = "nosuch" }},
		{name: "no address", field: "Backends[1].Addresses", want: "no address",
			edit: func(c *gateway.Config) { c.Backends[1].Addresses = nil }},
		{name: "bad pattern", field: "Routes[0].Services[0]", want: "neither",
			edit: func(c *gateway.Config) { c.Routes[0].Services = []string{"greet.*.v1"} }},
		{name: "dns with others", field: "Backends[0].Addresses[1]", want: "one dns:/// target",
			edit: func(c *gateway.Config) {
				c.Backends[0].Addresses = []string{"dns:///greet.internal:9090", "127.0.0.1:9091"}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := routedConfig(t, "127.0.0.1:1", "127.0.0.1:2")
			cfg.Backends[0].Files, cfg.Backends[1].Files = greetFiles, testingFiles
			tt.edit(&cfg)
			g, err := gateway.New(cfg)
			if err == nil {
				_ = g.Close()
				t.Fatal("New accepted it")
			}
			var ce *gateway.ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want Config.%s ... %q", err, tt.field, tt.want)
			}
			var re *gateway.RoutingError
			if tt.wantKey != "" && (!errors.As(err, &re) || re.Key != tt.wantKey) {
				t.Errorf("RoutingError = %v, want key %q", re, tt.wantKey)
			}
		})
	}
}

// TestRoutingRefusedByReflection checks that a routing table that new
// reflected descriptors would break is reported (log, metric, /healthz)
// while the routes in force keep serving.
func TestRoutingRefusedByReflection(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	metrics, err := gateway.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	cfg := routedConfig(t, startBackend(t, nil), testutil.StartTestService(t))
	cfg.Routes[1].Services = append(cfg.Routes[1].Services, "grpc.nosuch.*")
	cfg.Metrics = metrics
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	_, url := startRouted(t, cfg)
	client := newGreetClient(t, url, clientKinds()[0])
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "still"}))
		res, herr := http.Get(url + "/healthz")
		var body []byte
		if herr == nil {
			body, _ = io.ReadAll(res.Body)
			_ = res.Body.Close()
		}
		if err == nil && strings.Contains(string(body), "routing table refused") {
			if !strings.Contains(string(body), `routes[1].services[1]: "grpc.nosuch.*" matches no service of backend testing`) {
				t.Errorf("/healthz = %q, want the key and the reason", body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Greet %v, /healthz %q", err, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "key=routes[1].services[1]") {
		t.Errorf("log has no line with the key:\n%s", logs.String())
	}
	if got := metricValue(t, reg, "corsgate_routing_errors_total", map[string]string{"backend": "testing"}); got != 1 {
		t.Errorf("corsgate_routing_errors_total{backend=testing} = %v, want 1", got)
	}
	// The testing backend has no descriptors in force: its calls wait.
	unary := connect.NewClient[testgrpc.Empty, testgrpc.Empty](originClient(t, false, adminOrigin), url+"/grpc.testing.TestService/EmptyCall")
	if _, err := unary.CallUnary(context.Background(), connect.NewRequest(&testgrpc.Empty{})); connect.CodeOf(err) != connect.CodeUnavailable {
		t.Errorf("EmptyCall = %v, want UNAVAILABLE", err)
	}
}
