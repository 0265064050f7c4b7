package deploycheck

import (
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/yaml"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/config"

	// The Any types of the generated config, resolved through
	// protoregistry.GlobalTypes when the bootstrap is decoded.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/connect_grpc_bridge/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_web/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
)

// Committed Envoy outputs.
const (
	exampleEnvoy = repoRoot + "/example/envoy/envoy.yaml"
	goldenEnvoy  = repoRoot + "/cmd/protoc-gen-corsgate/testdata/golden/envoy/envoy.yaml"
)

// loadEnvoyFile reads an Envoy YAML config from path and loads it as
// [loadEnvoy] does.
func loadEnvoyFile(tb testing.TB, path string) (*bootstrapv3.Bootstrap, *hcmv3.HttpConnectionManager) {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return loadEnvoy(tb, path, data)
}

// loadEnvoy reads an Envoy YAML config (data, read from path) into the
// go-control-plane types as Envoy would: unknown fields rejected, Any types
// resolved, then the protoc-gen-validate rules checked.
func loadEnvoy(tb testing.TB, path string, data []byte) (*bootstrapv3.Bootstrap, *hcmv3.HttpConnectionManager) {
	tb.Helper()
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	bootstrap := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(js, bootstrap); err != nil {
		tb.Fatalf("%s does not load into envoy.config.bootstrap.v3.Bootstrap: %v", path, err)
	}
	if err := bootstrap.ValidateAll(); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	listeners := bootstrap.GetStaticResources().GetListeners()
	if len(listeners) != 1 || len(listeners[0].GetFilterChains()) != 1 || len(listeners[0].GetFilterChains()[0].GetFilters()) != 1 {
		tb.Fatalf("%s: want one listener with one filter chain of one filter", path)
	}
	hcm := &hcmv3.HttpConnectionManager{}
	if err := listeners[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		tb.Fatalf("%s: network filter is not an HttpConnectionManager: %v", path, err)
	}
	if err := hcm.ValidateAll(); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	checkClusters(tb, path, bootstrap, hcm)
	return bootstrap, hcm
}

// checkClusters checks that every cluster speaks HTTP/2 to its gRPC server
// and that every route forwards to one of the clusters.
func checkClusters(tb testing.TB, path string, bootstrap *bootstrapv3.Bootstrap, hcm *hcmv3.HttpConnectionManager) {
	tb.Helper()
	clusters := make(map[string]bool)
	for _, c := range bootstrap.GetStaticResources().GetClusters() {
		if clusters[c.GetName()] {
			tb.Fatalf("%s: cluster %s defined twice", path, c.GetName())
		}
		clusters[c.GetName()] = true
		opts := &upstreamhttpv3.HttpProtocolOptions{}
		if err := c.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].UnmarshalTo(opts); err != nil {
			tb.Fatalf("%s: cluster %s: HTTP protocol options: %v", path, c.GetName(), err)
		}
		if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
			tb.Errorf("%s: cluster %s does not speak HTTP/2 to its backend", path, c.GetName())
		}
		if got := c.GetLoadAssignment().GetClusterName(); got != c.GetName() {
			tb.Errorf("%s: cluster %s has the load assignment of %q", path, c.GetName(), got)
		}
	}
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			if name := r.GetRoute().GetCluster(); !clusters[name] {
				tb.Errorf("%s: route %s forwards to cluster %q, which the bootstrap does not define", path, r.GetName(), name)
			}
		}
	}
}

// routeCORS returns the per-route CORS policy of every route, by path.
func routeCORS(tb testing.TB, hcm *hcmv3.HttpConnectionManager) map[string]*corsv3.CorsPolicy {
	tb.Helper()
	out := make(map[string]*corsv3.CorsPolicy)
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			path := r.GetMatch().GetPath()
			if path == "" {
				tb.Fatalf("route %q does not match an exact path", r.GetName())
			}
			if _, ok := r.GetAction().(*routev3.Route_Route); !ok {
				tb.Fatalf("route %s does not forward", path)
			}
			policy := &corsv3.CorsPolicy{}
			if err := r.GetTypedPerFilterConfig()["envoy.filters.http.cors"].UnmarshalTo(policy); err != nil {
				tb.Fatalf("route %s: per-route CORS policy: %v", path, err)
			}
			if err := policy.ValidateAll(); err != nil {
				tb.Fatalf("route %s: per-route CORS policy: %v", path, err)
			}
			out[path] = policy
		}
	}
	return out
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, strings.ToLower(s))
		}
	}
	slices.Sort(out)
	return out
}

// TestEnvoyExample loads the committed example/envoy/envoy.yaml and checks
// the example service's routes.
func TestEnvoyExample(t *testing.T) {
	t.Parallel()
	_, hcm := loadEnvoyFile(t, exampleEnvoy)

	var filters []string
	for _, f := range hcm.GetHttpFilters() {
		filters = append(filters, f.GetName())
	}
	if want := []string{"envoy.filters.http.grpc_web", "envoy.filters.http.cors", "envoy.filters.http.router"}; !slices.Equal(filters, want) {
		t.Errorf("HTTP filters %v, want %v", filters, want)
	}

	policies := routeCORS(t, hcm)
	const prefix = "/greet.v1.GreetService/"
	tests := []struct {
		procedure   string
		methods     []string // nil: barred
		headers     []string // beyond the protocol's
		exposed     []string // beyond the protocol's
		notExposed  []string
		notAllowed  []string
		credentials bool
	}{
		{
			procedure: "Greet",
			methods:   []string{"GET", "POST"},
			headers:   []string{"authorization", "x-request-id"},
			exposed:   []string{"x-greet-version", "x-greet-trailer", "trailer-x-greet-trailer"},
		},
		{procedure: "SetGreeting", methods: []string{"POST"}, notAllowed: []string{"authorization"}, notExposed: []string{"x-greet-version"}},
		{procedure: "GreetStream", methods: []string{"POST"}},
		{procedure: "GreetMany", methods: []string{"POST"}},
		{procedure: "Chat", methods: []string{"POST"}},
		{procedure: "ResetGreetings"},
	}
	if len(policies) != len(tests) {
		t.Errorf("%d routes, want %d", len(policies), len(tests))
	}
	for _, tc := range tests {
		policy, ok := policies[prefix+tc.procedure]
		if !ok {
			t.Errorf("no route for %s", tc.procedure)
			continue
		}
		if policy.GetForwardNotMatchingPreflights() == nil || policy.GetForwardNotMatchingPreflights().GetValue() {
			t.Errorf("%s: refused preflights would be forwarded to the gRPC backend", tc.procedure)
		}
		if tc.methods == nil {
			if len(policy.GetAllowOriginStringMatch()) != 0 || policy.GetAllowMethods() != "" {
				t.Errorf("%s is browser-barred but its policy allows origins %v, methods %q", tc.procedure, policy.GetAllowOriginStringMatch(), policy.GetAllowMethods())
			}
			continue
		}
		if got := policy.GetAllowMethods(); !slices.Equal(splitList(got), splitList(strings.Join(tc.methods, ","))) {
			t.Errorf("%s: allow_methods %q, want %v", tc.procedure, got, tc.methods)
		}
		origins := policy.GetAllowOriginStringMatch()
		if len(origins) != 1 || origins[0].GetExact() != "https://app.example.com" {
			t.Errorf("%s: origins %v, want exactly https://app.example.com", tc.procedure, origins)
		}
		allowed := splitList(policy.GetAllowHeaders())
		for _, h := range append([]string{"content-type", "connect-protocol-version", "x-grpc-web", "x-user-agent", "grpc-timeout"}, tc.headers...) {
			if !slices.Contains(allowed, h) {
				t.Errorf("%s: allow_headers %q lacks %s", tc.procedure, policy.GetAllowHeaders(), h)
			}
		}
		for _, h := range tc.notAllowed {
			if slices.Contains(allowed, h) {
				t.Errorf("%s: allow_headers %q has %s", tc.procedure, policy.GetAllowHeaders(), h)
			}
		}
		exposed := splitList(policy.GetExposeHeaders())
		for _, h := range append([]string{"grpc-status", "grpc-message", "grpc-status-details-bin"}, tc.exposed...) {
			if !slices.Contains(exposed, h) {
				t.Errorf("%s: expose_headers %q lacks %s", tc.procedure, policy.GetExposeHeaders(), h)
			}
		}
		for _, h := range tc.notExposed {
			if slices.Contains(exposed, h) {
				t.Errorf("%s: expose_headers %q has %s", tc.procedure, policy.GetExposeHeaders(), h)
			}
		}
		if policy.GetMaxAge() != "7200" {
			t.Errorf("%s: max_age %q, want 7200", tc.procedure, policy.GetMaxAge())
		}
		if policy.GetAllowCredentials().GetValue() != tc.credentials {
			t.Errorf("%s: allow_credentials %v", tc.procedure, policy.GetAllowCredentials())
		}
	}
}

// TestEnvoyAgreesWithInterceptor checks, on the golden Envoy config with
// credentials, patterns and extra headers, that every route states what the
// interceptor answers for the same procedure and parameters.
func TestEnvoyAgreesWithInterceptor(t *testing.T) {
	t.Parallel()
	_, hcm := loadEnvoyFile(t, goldenEnvoy)
	policies := routeCORS(t, hcm)

	// The services, as the plugin's gateway config states them.
	out := generate(t, []string{acmeProtos, repoProtos}, acmeFiles, "format=json", "allow_origin=https://app.example.com")
	cfg, err := config.Parse(out["corsgate.json"])
	if err != nil {
		t.Fatalf("gateway config does not load: %v", err)
	}
	if len(cfg.Services) == 0 {
		t.Fatal("gateway config has no services")
	}
	table, err := interceptor.NewTable(cfg.Services...)
	if err != nil {
		t.Fatal(err)
	}
	// The golden case's parameters (see goldenCases in
	// cmd/protoc-gen-corsgate/golden_test.go).
	policy, err := interceptor.New(
		interceptor.WithAllowedOrigins("https://app.example.com", "https://*.example.net"),
		interceptor.WithCredentials(true),
		interceptor.WithMaxAge(600*time.Second),
		interceptor.WithExposedHeaders("x-debug"),
		interceptor.WithPrivateNetwork(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, svc := range table.Services() {
		for _, proc := range svc.Procedures {
			path := "/" + svc.Name + "/" + proc.Name
			n++
			route, ok := policies[path]
			if !ok {
				t.Errorf("no route for %s", path)
				continue
			}
			ex := policy.Explain(table, "https://app.example.com", path, http.MethodPost, nil)
			if ex.Allowed == proc.BrowserBarred {
				t.Errorf("%s: interceptor allows=%v, but barred=%v", path, ex.Allowed, proc.BrowserBarred)
			}
			if proc.BrowserBarred {
				if len(route.GetAllowOriginStringMatch()) != 0 {
					t.Errorf("%s: barred, but Envoy allows origins", path)
				}
				continue
			}
			checks := []struct{ name, envoy, interceptor string }{
				{"allow_methods", route.GetAllowMethods(), ex.PreflightHeader.Get("Access-Control-Allow-Methods")},
				{"allow_headers", route.GetAllowHeaders(), ex.PreflightHeader.Get("Access-Control-Allow-Headers")},
				{"expose_headers", route.GetExposeHeaders(), ex.ActualHeader.Get("Access-Control-Expose-Headers")},
				{"max_age", route.GetMaxAge(), ex.PreflightHeader.Get("Access-Control-Max-Age")},
			}
			for _, c := range checks {
				if c.envoy != c.interceptor || c.envoy == "" {
					t.Errorf("%s: Envoy %s %q, interceptor %q", path, c.name, c.envoy, c.interceptor)
				}
			}
			if !route.GetAllowCredentials().GetValue() || !route.GetAllowPrivateNetworkAccess().GetValue() {
				t.Errorf("%s: credentials %v, private network %v", path, route.GetAllowCredentials(), route.GetAllowPrivateNetworkAccess())
			}
		}
	}
	if n != len(policies) {
		t.Errorf("%d procedures, %d routes", n, len(policies))
	}
}

// TestEnvoyOriginPatterns checks that the regular expression written for an
// origin pattern (RE2, which Envoy's safe_regex uses and Go's regexp
// implements) matches exactly the origins the interceptor allows.
func TestEnvoyOriginPatterns(t *testing.T) {
	t.Parallel()
	patterns := []string{"https://*.example.com", "http://*.example.com:8080", "https://App.Example.COM:443"}
	opts := []string{"format=envoy"}
	for _, p := range patterns {
		opts = append(opts, "allow_origin="+p)
	}
	out := generate(t, []string{repoProtos}, greetFiles, opts...)
	_, hcm := loadEnvoy(t, "envoy.yaml", out["envoy.yaml"])
	matchers := routeCORS(t, hcm)["/greet.v1.GreetService/Greet"].GetAllowOriginStringMatch()
	if len(matchers) != len(patterns) {
		t.Fatalf("%d origin matchers for %d patterns: %v", len(matchers), len(patterns), matchers)
	}
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(patterns...))
	if err != nil {
		t.Fatal(err)
	}
	table := interceptor.MustNewTable(interceptor.Service{Name: "a.v1.S", Procedures: []interceptor.Procedure{{Name: "M"}}})
	origins := []string{
		"https://a.example.com", "https://a.b.example.com", "https://a-b.example.com", "https://example.com",
		"https://evilexample.com", "https://a.example.com.evil.com", "http://a.example.com", "https://a.example.com:8443",
		"https://.example.com", "https://a..example.com", "http://a.example.com:8080", "http://example.com:8080",
		"https://app.example.com", "https://app.example.com:443", "https://a_b.example.com", "https://a.example.co",
		"https://a.example.comx", "https://a%2e.example.com", "https://a/.example.com",
	}
	for _, origin := range origins {
		want := policy.Explain(table, origin, "/a.v1.S/M", http.MethodPost, nil).Allowed
		if got := envoyMatches(matchers, origin); got != want {
			t.Errorf("origin %q: Envoy matchers allow=%v, interceptor allow=%v", origin, got, want)
		}
	}
}

// envoyMatches reports whether one of the matchers, exact or safe_regex,
// matches origin.
func envoyMatches(matchers []*matcherv3.StringMatcher, origin string) bool {
	for _, m := range matchers {
		switch {
		case m.GetExact() != "":
			if m.GetExact() == origin {
				return true
			}
		case m.GetSafeRegex() != nil:
			if regexp.MustCompile(m.GetSafeRegex().GetRegex()).MatchString(origin) {
				return true
			}
		}
	}
	return false
}

// TestEnvoyGenerated runs protoc-gen-corsgate through buf with parameters
// that reach every branch of the Envoy format, and loads each output into
// go-control-plane's types with Envoy's validation rules: the plugin itself
// no longer links those types.
func TestEnvoyGenerated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		modules   []string
		files     []string
		opts      []string
		discovery clusterv3.Cluster_DiscoveryType
		filters   []string
		routes    int
	}{
		{
			name:      "defaults",
			modules:   []string{repoProtos},
			files:     greetFiles,
			opts:      []string{"allow_origin=https://app.example.com"},
			discovery: clusterv3.Cluster_STATIC,
			filters:   []string{"envoy.filters.http.grpc_web", "envoy.filters.http.cors", "envoy.filters.http.router"},
			routes:    6,
		},
		{
			name:    "hostname backend, connect bridge, credentials, patterns",
			modules: []string{acmeProtos, repoProtos},
			files:   acmeFiles,
			opts: []string{
				"backend=greetd.internal:9090", "listen=:10000", "allow_origin=https://app.example.com",
				"allow_origin=https://*.example.net", "allow_credentials=true", "max_age=600", "allow_header=x-trace",
				"expose_header=x-debug", "private_network", "envoy_connect_bridge",
			},
			discovery: clusterv3.Cluster_STRICT_DNS,
			filters:   []string{"envoy.filters.http.grpc_web", "envoy.filters.http.cors", "envoy.filters.http.connect_grpc_bridge", "envoy.filters.http.router"},
			routes:    9,
		},
		{
			name:      "IPv6, no max age",
			modules:   []string{repoProtos},
			files:     greetFiles,
			opts:      []string{"allow_origin=http://[::1]:3000", "max_age=0", "listen=[::1]:8443", "backend=[::1]:9090"},
			discovery: clusterv3.Cluster_STATIC,
			filters:   []string{"envoy.filters.http.grpc_web", "envoy.filters.http.cors", "envoy.filters.http.router"},
			routes:    6,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out := generate(t, tc.modules, tc.files, append([]string{"format=envoy"}, tc.opts...)...)
			if len(out) != 1 || out["envoy.yaml"] == nil {
				t.Fatalf("generated %d files, want envoy.yaml alone", len(out))
			}
			bootstrap, hcm := loadEnvoy(t, "envoy.yaml", out["envoy.yaml"])
			clusters := bootstrap.GetStaticResources().GetClusters()
			if len(clusters) != 1 || clusters[0].GetType() != tc.discovery {
				t.Errorf("clusters %v, want one of type %v", clusters, tc.discovery)
			}
			var filters []string
			for _, f := range hcm.GetHttpFilters() {
				filters = append(filters, f.GetName())
			}
			if !slices.Equal(filters, tc.filters) {
				t.Errorf("HTTP filters %v, want %v", filters, tc.filters)
			}
			if got := len(routeCORS(t, hcm)); got != tc.routes {
				t.Errorf("%d routes, want %d", got, tc.routes)
			}
		})
	}
}
