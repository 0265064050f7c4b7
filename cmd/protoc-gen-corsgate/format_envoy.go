package main

import (
	"cmp"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	connectbridgev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/connect_grpc_bridge/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	grpcwebv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_web/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/compiler/protogen"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

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
// over HTTP/2. The per-route values are the interceptor's own answers, asked
// with [interceptor.Policy.Explain], so Envoy and corsgate agree header for header.
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
	probe, err := interceptor.New(append(p.policyOptions(), interceptor.WithAllowedOrigins(probeOrigin))...)
	if err != nil {
		return fmt.Errorf("parameters: %w", err)
	}
	origins, err := envoyOrigins(p.allowOrigins)
	if err != nil {
		return err
	}

	var routes []*routev3.Route
	for _, svc := range table.Services() {
		for _, proc := range svc.Procedures {
			path := "/" + svc.Name + "/" + proc.Name
			policy := &corsv3.CorsPolicy{ForwardNotMatchingPreflights: wrapperspb.Bool(false)}
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
					policy.AllowCredentials = wrapperspb.Bool(true)
				}
				if p.privateNetwork {
					policy.AllowPrivateNetworkAccess = wrapperspb.Bool(true)
				}
			}
			routes = append(routes, &routev3.Route{
				Name:  path,
				Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: path}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{
					ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: envoyClusterName},
					// No route timeout: streams last as long as the call; the
					// client's grpc-timeout bounds it instead.
					Timeout:           durationpb.New(0),
					MaxStreamDuration: &routev3.RouteAction_MaxStreamDuration{GrpcTimeoutHeaderMax: durationpb.New(0)},
				}},
				// The allowed origin is echoed: caches must key on Origin.
				ResponseHeadersToAdd: []*corev3.HeaderValueOption{{
					Header: &corev3.HeaderValue{Key: "vary", Value: "Origin"},
				}},
				TypedPerFilterConfig: map[string]*anypb.Any{filterCORS: mustAny(policy)},
			})
		}
	}

	filters := []*hcmv3.HttpFilter{
		httpFilter(filterGRPCWeb, &grpcwebv3.GrpcWeb{}),
		httpFilter(filterCORS, &corsv3.Cors{}),
	}
	if p.envoyConnectBridge {
		filters = append(filters, httpFilter(filterConnectBridge, &connectbridgev3.FilterConfig{}))
	}
	filters = append(filters, httpFilter(filterRouter, &routerv3.Router{}))
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: envoyStatPrefix,
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{
			Name: envoyStatPrefix,
			VirtualHosts: []*routev3.VirtualHost{{
				Name:    envoyStatPrefix,
				Domains: []string{"*"},
				Routes:  routes,
			}},
		}},
		HttpFilters: filters,
	}

	listen := cmp.Or(p.listen, defaultListen)
	listenAddr, err := socketAddress(listen, "0.0.0.0")
	if err != nil {
		return fmt.Errorf("parameter listen: %w", err)
	}
	backend := cmp.Or(p.backend, defaultBackend)
	backendAddr, err := socketAddress(backend, "")
	if err != nil {
		return fmt.Errorf("parameter backend: %w", err)
	}
	discovery := clusterv3.Cluster_STRICT_DNS
	if _, err := netip.ParseAddr(backendAddr.GetSocketAddress().GetAddress()); err == nil {
		discovery = clusterv3.Cluster_STATIC
	}
	bootstrap := &bootstrapv3.Bootstrap{
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: []*listenerv3.Listener{{
				Name:    envoyStatPrefix,
				Address: listenAddr,
				FilterChains: []*listenerv3.FilterChain{{
					Filters: []*listenerv3.Filter{{
						Name:       filterHCM,
						ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
					}},
				}},
			}},
			Clusters: []*clusterv3.Cluster{{
				Name:                 envoyClusterName,
				ConnectTimeout:       durationpb.New(5 * time.Second),
				ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: discovery},
				TypedExtensionProtocolOptions: map[string]*anypb.Any{
					upstreamHTTPOptions: mustAny(&upstreamhttpv3.HttpProtocolOptions{
						UpstreamProtocolOptions: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_{
							ExplicitHttpConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig{
								ProtocolConfig: &upstreamhttpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
									Http2ProtocolOptions: &corev3.Http2ProtocolOptions{},
								},
							},
						},
					}),
				},
				LoadAssignment: &endpointv3.ClusterLoadAssignment{
					ClusterName: envoyClusterName,
					Endpoints: []*endpointv3.LocalityLbEndpoints{{
						LbEndpoints: []*endpointv3.LbEndpoint{{
							HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: backendAddr}},
						}},
					}},
				},
			}},
		},
	}
	if err := bootstrap.ValidateAll(); err != nil {
		return fmt.Errorf("generated Envoy config is invalid (a protoc-gen-corsgate bug): %w", err)
	}
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(bootstrap)
	if err != nil {
		return fmt.Errorf("encode Envoy config: %w", err)
	}
	out, err := jsonToYAML(js,
		"Code generated by protoc-gen-corsgate. DO NOT EDIT.",
		"Source: "+strings.Join(sources, ", "),
		"",
		"Envoy v3 bootstrap: envoy -c "+envoyOutputName,
		"Listens on "+listen+" and forwards to the gRPC server at "+backend+" over HTTP/2;",
		"one route per procedure with its CORS policy; browser-barred procedures",
		"get a policy that allows no origin. Envoy does not answer Vary on preflights.",
	)
	if err != nil {
		return err
	}
	if _, err := gen.NewGeneratedFile(envoyOutputName, "").Write(out); err != nil {
		return fmt.Errorf("write %s: %w", envoyOutputName, err)
	}
	return nil
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
func envoyOrigins(origins []string) ([]*matcherv3.StringMatcher, error) {
	var out []*matcherv3.StringMatcher
	for _, o := range origins {
		if o == "*" {
			out = append(out, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "*"}})
			continue
		}
		norm, err := normalizeOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("parameter allow_origin: %w", err)
		}
		scheme, rest, _ := strings.Cut(norm, "://")
		if suffix, ok := strings.CutPrefix(rest, "*"); ok {
			re := "^" + regexp.QuoteMeta(scheme+"://") + `[a-z0-9_-]+(\.[a-z0-9_-]+)*` + regexp.QuoteMeta(suffix) + "$"
			out = append(out, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{
				SafeRegex: &matcherv3.RegexMatcher{Regex: re},
			}})
			continue
		}
		out = append(out, &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: norm}})
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
func socketAddress(hostPort, emptyHost string) (*corev3.Address, error) {
	host, port, err := splitHostPort(hostPort)
	if err != nil {
		return nil, err
	}
	if host == "" {
		if emptyHost == "" {
			return nil, fmt.Errorf("%q has no host", hostPort)
		}
		host = emptyHost
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       host,
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}, nil
}

func httpFilter(name string, config proto.Message) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(config)}}
}

// mustAny packs m; it fails only for messages that cannot be marshaled,
// which the generated Envoy types never are.
func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(fmt.Sprintf("protoc-gen-corsgate: pack %T: %v", m, err))
	}
	return a
}
