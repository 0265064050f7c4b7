package gateway_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/gateway"
	"github.com/corsgate/corsgate/interceptor"
)

// getPolicyDump asks the handler for the dump, as GET /debug/policy does.
func getPolicyDump(tb testing.TB, g *gateway.Gateway) gateway.PolicyDump {
	tb.Helper()
	rec := httptest.NewRecorder()
	g.PolicyHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/debug/policy", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		tb.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	var dump gateway.PolicyDump
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&dump); err != nil {
		tb.Fatalf("%v\n%s", err, rec.Body)
	}
	return dump
}

// sourceOf returns the source of value in list, "" when absent.
func sourceOf(list []interceptor.Sourced[string], value string) interceptor.Source {
	for _, s := range list {
		if s.Value == value {
			return s.Source
		}
	}
	return ""
}

func procedureOf(tb testing.TB, rd gateway.RouteDump, path string) interceptor.ProcedureDescription {
	tb.Helper()
	for _, p := range rd.Procedures {
		if p.Procedure == path {
			return p
		}
	}
	tb.Fatalf("route %s has no procedure %s", rd.Route, path)
	return interceptor.ProcedureDescription{}
}

// TestPolicyDumpGreet: the greet service's table, each rule with its
// source: protocol headers default, proto options proto, flags config.
func TestPolicyDumpGreet(t *testing.T) {
	t.Parallel()
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin, "https://*.example.org"),
		interceptor.WithAllowedHeaders("x-tenant"), interceptor.WithExposedHeaders("x-served-by"), interceptor.WithCredentials(true))
	if err != nil {
		t.Fatal(err)
	}
	g, err := gateway.New(gateway.Config{Backend: "127.0.0.1:1", Files: hardGreetFiles(t), Policy: policy, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	dump := getPolicyDump(t, g)
	if !dump.Loaded || len(dump.Routes) != 1 {
		t.Fatalf("want one loaded route: %+v", dump)
	}
	rd := dump.Routes[0]
	if rd.Route != "backends.default" || rd.Backend != "default" || rd.Policy == nil {
		t.Fatalf("route %q backend %q policy %v", rd.Route, rd.Backend, rd.Policy)
	}
	if got := rd.Policy.Origins; len(got) != 2 || sourceOf(got, testOrigin) != interceptor.SourceConfig || sourceOf(got, "https://*.example.org") != interceptor.SourceConfig {
		t.Errorf("origins %+v", got)
	}
	if c := rd.Policy.Credentials; !c.Value || c.Source != interceptor.SourceConfig {
		t.Errorf("credentials %+v", c)
	}
	if s := rd.Policy.Strict; s.Value || s.Source != interceptor.SourceDefault {
		t.Errorf("strict %+v", s)
	}
	if m := rd.Policy.MaxAgeSeconds; m.Value != 7200 || m.Source != interceptor.SourceDefault {
		t.Errorf("max-age %+v", m)
	}
	if th := rd.Policy.TraceHeaders; !th.Value || th.Source != interceptor.SourceDefault {
		t.Errorf("trace-headers %+v", th)
	}
	greet := procedureOf(t, rd, "/greet.v1.GreetService/Greet")
	for _, c := range []struct {
		list  []interceptor.Sourced[string]
		value string
		want  interceptor.Source
	}{
		{greet.Methods, "GET", interceptor.SourceProto},
		{greet.Methods, "POST", interceptor.SourceDefault},
		{greet.RequestHeaders, "content-type", interceptor.SourceDefault},
		{greet.RequestHeaders, "x-grpc-web", interceptor.SourceDefault},
		{greet.RequestHeaders, "authorization", interceptor.SourceProto},
		{greet.RequestHeaders, "x-request-id", interceptor.SourceProto},
		{greet.RequestHeaders, "x-tenant", interceptor.SourceConfig},
		{greet.RequestHeaders, "traceparent", interceptor.SourceDefault},
		{greet.RequestHeaders, "tracestate", interceptor.SourceDefault},
		{greet.RequestHeaders, "baggage", interceptor.SourceDefault},
		{greet.ExposedHeaders, "Grpc-Status", interceptor.SourceDefault},
		{greet.ExposedHeaders, "X-Greet-Version", interceptor.SourceProto},
		{greet.ExposedHeaders, "X-Served-By", interceptor.SourceConfig},
	} {
		if got := sourceOf(c.list, c.value); got != c.want {
			t.Errorf("Greet %s: source %q, want %q", c.value, got, c.want)
		}
	}
	if b := greet.BrowserBarred; b.Value || b.Source != interceptor.SourceDefault {
		t.Errorf("Greet browser-barred %+v", b)
	}
	reset := procedureOf(t, rd, "/greet.v1.GreetService/ResetGreetings")
	if b := reset.BrowserBarred; !b.Value || b.Source != interceptor.SourceProto {
		t.Errorf("ResetGreetings browser-barred %+v", b)
	}
	if len(reset.Methods) != 1 || reset.Methods[0].Value != "POST" {
		t.Errorf("ResetGreetings methods %+v", reset.Methods)
	}
	for _, p := range rd.Procedures {
		if p.Procedure == "/grpc.health.v1.Health/Check" {
			t.Errorf("health is never opened to browsers, yet listed: %+v", p)
		}
	}
}

// TestPolicyDumpServicesConfig: rules of the config's services: list are
// config, not proto.
func TestPolicyDumpServicesConfig(t *testing.T) {
	t.Parallel()
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(testOrigin), interceptor.WithTraceHeaders(false))
	if err != nil {
		t.Fatal(err)
	}
	services := []interceptor.Service{{Name: "greet.v1.GreetService", Procedures: []interceptor.Procedure{
		{Name: "Greet", Methods: []string{"GET", "POST"}, RequestHeaders: []string{"x-from-config"}, BrowserBarred: true},
	}}}
	g, err := gateway.New(gateway.Config{Backend: "127.0.0.1:1", Files: hardGreetFiles(t), Policy: policy, Services: services, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	rd := getPolicyDump(t, g).Routes[0]
	greet := procedureOf(t, rd, "/greet.v1.GreetService/Greet")
	if sourceOf(greet.RequestHeaders, "x-from-config") != interceptor.SourceConfig || sourceOf(greet.Methods, "GET") != interceptor.SourceConfig ||
		greet.BrowserBarred.Source != interceptor.SourceConfig || sourceOf(greet.RequestHeaders, "authorization") != "" {
		t.Errorf("Greet from the services list: %+v", greet)
	}
	// --trace-headers=false: the trace headers are gone, by the config.
	if th := rd.Policy.TraceHeaders; th.Value || th.Source != interceptor.SourceConfig {
		t.Errorf("trace-headers %+v", th)
	}
	if src := sourceOf(greet.RequestHeaders, "traceparent"); src != "" {
		t.Errorf("traceparent allowed (%s) with trace headers off", src)
	}
}

// TestPolicyDumpRouted: two backends, each route with its policy.
func TestPolicyDumpRouted(t *testing.T) {
	t.Parallel()
	cfg := routedConfig(t, "127.0.0.1:1", "127.0.0.1:2")
	cfg.Backends[0].Files = filesOf(t, "greet/v1/greet.proto")
	cfg.Backends[1].Files = filesOf(t, "grpc/testing/test.proto")
	g, err := gateway.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	dump := getPolicyDump(t, g)
	// The two routes, then the services of test.proto no route claims.
	if len(dump.Routes) != 3 {
		t.Fatalf("want 3 routes: %+v", dump.Routes)
	}
	greet, testing, rest := dump.Routes[0], dump.Routes[1], dump.Routes[2]
	if rest.Route != "backends.testing" || rest.Backend != "testing" || len(rest.Services) != 0 {
		t.Errorf("unclaimed services: route %q backend %q services %v", rest.Route, rest.Backend, rest.Services)
	}
	procedureOf(t, rest, "/grpc.testing.ReconnectService/Start")
	for _, p := range rest.Procedures {
		if strings.HasPrefix(p.Procedure, "/grpc.testing.TestService/") {
			t.Errorf("%s is routes[1]'s, listed under %s too", p.Procedure, rest.Route)
		}
	}
	if greet.Route != "routes[0]" || greet.Backend != "greet" || len(greet.Services) != 1 || greet.Services[0] != "greet.v1.*" ||
		sourceOf(greet.Policy.Origins, testOrigin) != interceptor.SourceConfig {
		t.Errorf("greet route %+v", greet)
	}
	if testing.Route != "routes[1]" || testing.Backend != "testing" || len(testing.Policy.Origins) != 1 ||
		sourceOf(testing.Policy.Origins, adminOrigin) != interceptor.SourceConfig {
		t.Errorf("testing route %+v", testing)
	}
	unary := procedureOf(t, testing, "/grpc.testing.TestService/UnaryCall")
	if len(unary.Methods) != 1 || unary.Methods[0].Source != interceptor.SourceDefault || sourceOf(unary.RequestHeaders, "content-type") != interceptor.SourceDefault {
		t.Errorf("UnaryCall %+v", unary)
	}
	procedureOf(t, greet, "/greet.v1.GreetService/Greet")
}
