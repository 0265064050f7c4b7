package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/compiler/protogen"

	"github.com/corsgate/corsgate/interceptor"
)

const (
	envoyOutputName = "envoy.yaml"

	envoyClusterName = "backend"
	envoyStatPrefix  = "corsgate"
	defaultListen    = "127.0.0.1:8080"
	defaultBackend   = "127.0.0.1:9090"

	// Envoy's names for the HTTP filters; typed_per_filter_config keys too.
	filterGRPCWeb       = "envoy.filters.http.grpc_web"
	filterCORS          = "envoy.filters.http.cors"
	filterConnectBridge = "envoy.filters.http.connect_grpc_bridge"
	filterRouter        = "envoy.filters.http.router"
	filterHCM           = "envoy.filters.network.http_connection_manager"
	upstreamHTTPOptions = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

	// probeOrigin is the origin the per-procedure answers are asked with.
	probeOrigin = "https://probe.corsgate.invalid"
)

// corsAnswer is what the interceptor answers for one procedure: the values
// of the CORS headers, as a browser sees them.
type corsAnswer struct {
	methods, allowHeaders, exposeHeaders, maxAge string
	credentials                                  bool
}

// generateEnvoy writes an Envoy v3 bootstrap: a listener whose
// HttpConnectionManager has one route per procedure with its own CORS
// policy (typed_per_filter_config of envoy.filters.http.cors) and the
// grpc_web, cors and router filters, in that order, plus the backend cluster
// over HTTP/2; with route parameters, one cluster per backend, each route to
// the cluster of its package's backend. The per-route values are the interceptor's own answers, asked
// with [interceptor.Policy.Explain], so Envoy and corsgate agree header for header.
// The document is built from the types of envoy_config.go, without Envoy's
// own; the module internal/deploycheck loads the committed outputs into
// go-control-plane's types and runs Envoy's validation rules on them.
func generateEnvoy(gen *protogen.Plugin, sources []string, services []interceptor.Service, p *params) error {
	table, err := interceptor.NewTable(services...)
	if err != nil {
		return err
	}
	for _, h := range p.allowHeaders {
		if h == "*" {
			return fmt.Errorf("parameter allow_header: %q cannot be expressed in Envoy, whose CORS filter does not check request header names; list the names", h)
		}
	}
	if _, err := interceptor.New(p.policyOptions()...); err != nil {
		return fmt.Errorf("parameters: %w", err)
	}
	// The probe asks with its own origin only: the per-procedure answers do
	// not depend on which allowed origin asks, and next to "*" another
	// origin would be refused as having no effect.
	probeParams := *p
	probeParams.allowOrigins = []string{probeOrigin}
	probe, err := interceptor.New(probeParams.policyOptions()...)
	if err != nil {
		return fmt.Errorf("parameters: %w", err)
	}
	origins, err := envoyOrigins(p.allowOrigins)
	if err != nil {
		return err
	}

	var routes []envoyRoute
	for _, svc := range table.Services() {
		for _, proc := range svc.Procedures {
			path := "/" + svc.Name + "/" + proc.Name
			cluster := envoyClusterName
			if p.routed() {
				_, cluster = p.routeOf(svc.Name)
			}
			policy := envoyCorsPolicy{Type: typeCorsPolicy, ForwardNotMatchingPreflights: new(false)}
			if !proc.BrowserBarred {
				ans, err := askInterceptor(probe, table, path)
				if err != nil {
					return err
				}
				policy.AllowOriginStringMatch = origins
				policy.AllowMethods = ans.methods
				policy.AllowHeaders = ans.allowHeaders
				policy.ExposeHeaders = ans.exposeHeaders
				policy.MaxAge = ans.maxAge
				if ans.credentials {
					policy.AllowCredentials = new(true)
				}
				if p.privateNetwork {
					policy.AllowPrivateNetworkAccess = new(true)
				}
			}
			routes = append(routes, envoyRoute{
				Name:  path,
				Match: envoyRouteMatch{Path: path},
				Route: envoyRouteAction{
					Cluster: cluster,
					// No route timeout: streams last as long as the call; the
					// client's grpc-timeout bounds it instead.
					Timeout:           envoyDuration(0),
					MaxStreamDuration: envoyMaxStreamDuration{GRPCTimeoutHeaderMax: envoyDuration(0)},
				},
				TypedPerFilterConfig: map[string]envoyCorsPolicy{filterCORS: policy},
				// The allowed origin is echoed: caches must key on Origin.
				ResponseHeadersToAdd: []envoyHeaderValueOption{{
					Header: envoyHeaderValue{Key: "vary", Value: "Origin"},
				}},
			})
		}
	}

	filters := []envoyHTTPFilter{
		httpFilter(filterGRPCWeb, typeGRPCWeb),
		httpFilter(filterCORS, typeCors),
	}
	if p.envoyConnectBridge {
		filters = append(filters, httpFilter(filterConnectBridge, typeConnectBridge))
	}
	filters = append(filters, httpFilter(filterRouter, typeRouter))
	hcm := envoyHCM{
		Type:       typeHCM,
		StatPrefix: envoyStatPrefix,
		RouteConfig: envoyRouteConfiguration{
			Name: envoyStatPrefix,
			VirtualHosts: []envoyVirtualHost{{
				Name:    envoyStatPrefix,
				Domains: []string{"*"},
				Routes:  routes,
			}},
		},
		HTTPFilters: filters,
	}

	listen := cmp.Or(p.listen, defaultListen)
	listenAddr, err := socketAddress(listen, "0.0.0.0")
	if err != nil {
		return fmt.Errorf("parameter listen: %w", err)
	}
	var clusters []envoyCluster
	backend := cmp.Or(p.backend, defaultBackend)
	header := []string{
		"Code generated by protoc-gen-corsgate. DO NOT EDIT.",
		"Source: " + strings.Join(sources, ", "),
		"",
		"Envoy v3 bootstrap: envoy -c " + envoyOutputName,
	}
	if p.routed() {
		header = append(header, "Listens on "+listen+" and forwards over HTTP/2 to one cluster per backend:")
		for _, name := range p.backendNames() {
			addr := p.backendAddresses[name]
			c, err := envoyClusterOf(name, addr)
			if err != nil {
				return fmt.Errorf("parameter backend_address: backend %s: %w", name, err)
			}
			clusters = append(clusters, c)
			header = append(header, "  "+name+": "+addr)
		}
		header = append(header,
			"one route per procedure, to its package's backend, with its CORS policy;",
			"browser-barred procedures get a policy that allows no origin. Envoy does not",
			"answer Vary on preflights.",
		)
	} else {
		c, err := envoyClusterOf(envoyClusterName, backend)
		if err != nil {
			return fmt.Errorf("parameter backend: %w", err)
		}
		clusters = append(clusters, c)
		header = append(header,
			"Listens on "+listen+" and forwards to the gRPC server at "+backend+" over HTTP/2;",
			"one route per procedure with its CORS policy; browser-barred procedures",
			"get a policy that allows no origin. Envoy does not answer Vary on preflights.",
		)
	}
	bootstrap := envoyBootstrap{
		StaticResources: envoyStaticResources{
			Listeners: []envoyListener{{
				Name:    envoyStatPrefix,
				Address: listenAddr,
				FilterChains: []envoyFilterChain{{
					Filters: []envoyNetworkFilter{{Name: filterHCM, TypedConfig: hcm}},
				}},
			}},
			Clusters: clusters,
		},
	}
	js, err := json.Marshal(bootstrap)
	if err != nil {
		return fmt.Errorf("encode Envoy config: %w", err)
	}
	out, err := jsonToYAML(js, header...)
	if err != nil {
		return err
	}
	if _, err := gen.NewGeneratedFile(envoyOutputName, "").Write(out); err != nil {
		return fmt.Errorf("write %s: %w", envoyOutputName, err)
	}
	return nil
}

// envoyClusterOf is the cluster name of the gRPC server at hostPort, over
// HTTP/2: STATIC for an IP address, STRICT_DNS for a host name.
func envoyClusterOf(name, hostPort string) (envoyCluster, error) {
	addr, err := socketAddress(hostPort, "")
	if err != nil {
		return envoyCluster{}, err
	}
	discovery := clusterStrictDNS
	if _, err := netip.ParseAddr(addr.SocketAddress.Address); err == nil {
		discovery = clusterStatic
	}
	return envoyCluster{
		Name:           name,
		Type:           discovery,
		ConnectTimeout: envoyDuration(5 * time.Second),
		LoadAssignment: envoyClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []envoyLocalityLbEndpoints{{
				LbEndpoints: []envoyLbEndpoint{{Endpoint: envoyEndpoint{Address: addr}}},
			}},
		},
		TypedExtensionProtocolOptions: map[string]envoyHTTPProtocolOptionsAny{
			upstreamHTTPOptions: {Type: typeUpstreamHTTPProto},
		},
	}, nil
}

// askInterceptor asks the interceptor what a browser calling path with POST
// would get, and returns the CORS header values of its answers.
func askInterceptor(policy *interceptor.Policy, table *interceptor.Table, path string) (corsAnswer, error) {
	ex := policy.Explain(table, probeOrigin, path, http.MethodPost, nil)
	if !ex.Allowed {
		return corsAnswer{}, fmt.Errorf("interceptor refuses %s to an allowed origin (a protoc-gen-corsgate bug): %+v", path, ex.Checks)
	}
	ph, ah := ex.PreflightHeader, ex.ActualHeader
	return corsAnswer{
		methods:       ph.Get("Access-Control-Allow-Methods"),
		allowHeaders:  ph.Get("Access-Control-Allow-Headers"),
		maxAge:        ph.Get("Access-Control-Max-Age"),
		credentials:   ph.Get("Access-Control-Allow-Credentials") == "true",
		exposeHeaders: ah.Get("Access-Control-Expose-Headers"),
	}, nil
}

// envoyOrigins turns corsgate origins into Envoy string matchers: exact
// origins, normalized as the interceptor does; "*" as Envoy's wildcard; and
// "scheme://*.example.com" patterns as a regular expression matching one or
// more subdomain labels, like the interceptor's.
func envoyOrigins(origins []string) ([]envoyStringMatcher, error) {
	var out []envoyStringMatcher
	for _, o := range origins {
		if o == "*" {
			out = append(out, envoyStringMatcher{Exact: "*"})
			continue
		}
		norm, err := normalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("parameter allow_origin: %w", err)
		}
		scheme, rest, _ := strings.Cut(norm, "://")
		if suffix, ok := strings.CutPrefix(rest, "*"); ok {
			re := "^" + regexp.QuoteMeta(scheme+"://") + `[a-z0-9_-]+(\.[a-z0-9_-]+)*` + regexp.QuoteMeta(suffix) + "$"
			out = append(out, envoyStringMatcher{SafeRegex: &envoyRegexMatcher{Regex: re}})
			continue
		}
		out = append(out, envoyStringMatcher{Exact: norm})
	}
	return out, nil
}

// normalizeOrigin lowercases scheme and host and drops the scheme's default
// port, as browsers serialize origins. The interceptor has already accepted
// the origin, so only its shape is handled here.
func normalizeOrigin(o string) (string, error) {
	u, err := url.Parse(strings.Replace(o, "://*.", "://wildcard-label.", 1))
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("origin %q is not scheme://host[:port]", o)
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	host = strings.Replace(host, "wildcard-label.", "*.", 1)
	port := u.Port()
	if scheme == "http" && port == "80" || scheme == "https" && port == "443" {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// socketAddress turns host:port into an Envoy address; an empty host becomes
// emptyHost, or an error when that is empty too.
func socketAddress(hostPort, emptyHost string) (envoyAddress, error) {
	host, port, err := splitHostPort(hostPort)
	if err != nil {
		return envoyAddress{}, err
	}
	if host == "" {
		if emptyHost == "" {
			return envoyAddress{}, fmt.Errorf("%q has no host", hostPort)
		}
		host = emptyHost
	}
	return envoyAddress{SocketAddress: envoySocketAddress{Address: host, PortValue: port}}, nil
}

// httpFilter is an HTTP filter with its defaults, configured by an Any of
// the empty message typeURL.
func httpFilter(name, typeURL string) envoyHTTPFilter {
	return envoyHTTPFilter{Name: name, TypedConfig: envoyTypeOf{Type: typeURL}}
}
