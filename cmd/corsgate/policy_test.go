package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/testutil"
)

// decodeDump decodes a policy dump, refusing fields the type lacks.
func decodeDump(t *testing.T, b []byte) gateway.PolicyDump {
	t.Helper()
	var dump gateway.PolicyDump
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&dump); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return dump
}

func sourceIn(list []interceptor.Sourced[string], value string) interceptor.Source {
	for _, s := range list {
		if s.Value == value {
			return s.Source
		}
	}
	return ""
}

func procedureIn(t *testing.T, rd gateway.RouteDump, path string) interceptor.ProcedureDescription {
	t.Helper()
	for _, p := range rd.Procedures {
		if p.Procedure == path {
			return p
		}
	}
	t.Fatalf("route %s lacks %s", rd.Route, path)
	return interceptor.ProcedureDescription{}
}

// checkGreetRules checks the rules of the greet service in rd, under a
// policy with --allow-header x-tenant: Greet (NO_SIDE_EFFECTS, declared
// headers) and the browser-barred ResetGreetings.
func checkGreetRules(t *testing.T, rd gateway.RouteDump) {
	t.Helper()
	greet := procedureIn(t, rd, greetPath)
	for _, c := range []struct {
		list  []interceptor.Sourced[string]
		value string
		want  interceptor.Source
	}{
		{greet.Methods, "GET", interceptor.SourceProto},
		{greet.Methods, "POST", interceptor.SourceDefault},
		{greet.RequestHeaders, "authorization", interceptor.SourceProto},
		{greet.RequestHeaders, "x-request-id", interceptor.SourceProto},
		{greet.RequestHeaders, "traceparent", interceptor.SourceDefault},
		{greet.RequestHeaders, "tracestate", interceptor.SourceDefault},
		{greet.RequestHeaders, "x-grpc-web", interceptor.SourceDefault},
		{greet.RequestHeaders, "x-tenant", interceptor.SourceConfig},
		{greet.ExposedHeaders, "X-Greet-Version", interceptor.SourceProto},
		{greet.ExposedHeaders, "Grpc-Status", interceptor.SourceDefault},
	} {
		if got := sourceIn(c.list, c.value); got != c.want {
			t.Errorf("%s %s: source %q, want %q", rd.Route, c.value, got, c.want)
		}
	}
	if set := procedureIn(t, rd, "/greet.v1.GreetService/SetGreeting"); len(set.Methods) != 1 || set.Methods[0].Value != "POST" {
		t.Errorf("SetGreeting methods %+v, want POST alone", set.Methods)
	}
	if b := procedureIn(t, rd, "/greet.v1.GreetService/ResetGreetings").BrowserBarred; !b.Value || b.Source != interceptor.SourceProto {
		t.Errorf("ResetGreetings browser-barred %+v", b)
	}
}

// TestPolicyCommand: corsgate policy prints the table of a descriptor set,
// and of a config with two backends asked by reflection, route by route.
func TestPolicyCommand(t *testing.T) {
	t.Parallel()
	t.Run("descriptors", func(t *testing.T) {
		t.Parallel()
		desc := filepath.Join(t.TempDir(), "greet.binpb")
		serveWriteDescriptors(t, desc, greetv1.File_greet_v1_greet_proto)
		code, stdout, stderr := runCLI(t, "policy", "--descriptors", desc, "--allow-origin", appOrigin, "--allow-header", "x-tenant")
		if code != exitOK || stderr != "" {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		dump := decodeDump(t, []byte(stdout))
		if !dump.Loaded || len(dump.Routes) != 1 {
			t.Fatalf("dump %+v, want one loaded route", dump)
		}
		rd := dump.Routes[0]
		if rd.Route != "backends.default" || rd.Policy == nil || sourceIn(rd.Policy.Origins, appOrigin) != interceptor.SourceConfig {
			t.Fatalf("route %+v", rd)
		}
		checkGreetRules(t, rd)
	})
	t.Run("routed config", func(t *testing.T) {
		t.Parallel()
		cfg := writeRoutedConfig(t, testutil.StartGreetd(t, nil), testutil.StartTestService(t), "allow-header: [x-tenant]\n")
		code, stdout, stderr := runCLI(t, "policy", "--config", cfg)
		if code != exitOK {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		dump := decodeDump(t, []byte(stdout))
		byName := map[string]gateway.RouteDump{}
		for _, rd := range dump.Routes {
			byName[rd.Route] = rd
		}
		greet, testing := byName["routes[0]"], byName["routes[1]"]
		if greet.Backend != "greet" || testing.Backend != "testing" {
			t.Fatalf("routes %+v", dump.Routes)
		}
		checkGreetRules(t, greet)
		if sourceIn(testing.Policy.Origins, routeAdminOrigin) != interceptor.SourceConfig || sourceIn(testing.Policy.Origins, serveOrigin) != "" {
			t.Errorf("routes[1] origins %+v, want %s alone", testing.Policy.Origins, routeAdminOrigin)
		}
		unary := procedureIn(t, testing, "/grpc.testing.TestService/UnaryCall")
		if len(unary.Methods) != 1 || sourceIn(unary.RequestHeaders, "traceparent") != interceptor.SourceDefault {
			t.Errorf("UnaryCall %+v", unary)
		}
	})
	t.Run("bad flag", func(t *testing.T) {
		t.Parallel()
		code, _, stderr := runCLI(t, "policy", "--descriptors", filepath.Join(t.TempDir(), "nope.binpb"))
		if code != exitUsage {
			t.Errorf("exit %d, want %d; stderr %q", code, exitUsage, stderr)
		}
	})
}

// TestServeDebugPolicy: GET /debug/policy on the metrics listener serves
// the table in force.
func TestServeDebugPolicy(t *testing.T) {
	t.Parallel()
	desc := filepath.Join(t.TempDir(), "greet.binpb")
	serveWriteDescriptors(t, desc, greetv1.File_greet_v1_greet_proto)
	_, metrics, _ := serveWithStdout(t, "--backend", serveBackend(t, false), "--descriptors", desc,
		"--allow-origin", serveOrigin, "--allow-header", "x-tenant", "--metrics-listen", "127.0.0.1:0")
	res, err := http.Get(metrics + "/debug/policy")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("HTTP %d, content type %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	dump := decodeDump(t, buf.Bytes())
	if !dump.Loaded || len(dump.Routes) != 1 {
		t.Fatalf("dump %+v", dump)
	}
	checkGreetRules(t, dump.Routes[0])
	if res, err := http.Post(metrics+"/debug/policy", "application/json", nil); err != nil || res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /debug/policy: %v %v, want 405", res, err)
	} else {
		_ = res.Body.Close()
	}
}
