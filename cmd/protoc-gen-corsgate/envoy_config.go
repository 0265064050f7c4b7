package main

import (
	"strconv"
	"time"
)

// The subset of Envoy's v3 API that the bootstrap of format=envoy uses, as
// the JSON that protojson writes for it (proto field names, Duration as
// "5s", wrapped bools as plain bools, an Any as "@type" followed by the
// message's fields). Fields are declared in the order of their .proto files,
// which is the order protojson writes them in; zero values are omitted as
// protojson omits them, so only fields that must appear when false are
// pointers. The module internal/deploycheck loads every committed output
// into go-control-plane's types, unknown fields rejected, and checks Envoy's
// validation rules.

// Type URLs of the Any values in the bootstrap.
const (
	typeURLPrefix         = "type.googleapis.com/"
	typeHCM               = typeURLPrefix + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
	typeCorsPolicy        = typeURLPrefix + "envoy.extensions.filters.http.cors.v3.CorsPolicy"
	typeCors              = typeURLPrefix + "envoy.extensions.filters.http.cors.v3.Cors"
	typeGRPCWeb           = typeURLPrefix + "envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"
	typeConnectBridge     = typeURLPrefix + "envoy.extensions.filters.http.connect_grpc_bridge.v3.FilterConfig"
	typeRouter            = typeURLPrefix + "envoy.extensions.filters.http.router.v3.Router"
	typeUpstreamHTTPProto = typeURLPrefix + "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
)

// envoyBootstrap is envoy.config.bootstrap.v3.Bootstrap.
type envoyBootstrap struct {
	StaticResources envoyStaticResources `json:"static_resources"`
}

// envoyStaticResources is envoy.config.bootstrap.v3.Bootstrap.StaticResources.
type envoyStaticResources struct {
	Listeners []envoyListener `json:"listeners"`
	Clusters  []envoyCluster  `json:"clusters"`
}

// envoyListener is envoy.config.listener.v3.Listener.
type envoyListener struct {
	Name         string             `json:"name"`
	Address      envoyAddress       `json:"address"`
	FilterChains []envoyFilterChain `json:"filter_chains"`
}

// envoyFilterChain is envoy.config.listener.v3.FilterChain.
type envoyFilterChain struct {
	Filters []envoyNetworkFilter `json:"filters"`
}

// envoyNetworkFilter is envoy.config.listener.v3.Filter with its
// typed_config; the only network filter written is the HttpConnectionManager.
type envoyNetworkFilter struct {
	Name        string   `json:"name"`
	TypedConfig envoyHCM `json:"typed_config"`
}

// envoyAddress is envoy.config.core.v3.Address with a socket_address.
type envoyAddress struct {
	SocketAddress envoySocketAddress `json:"socket_address"`
}

// envoySocketAddress is envoy.config.core.v3.SocketAddress with a port_value
// (a oneof member: written even when 0).
type envoySocketAddress struct {
	Address   string `json:"address"`
	PortValue uint32 `json:"port_value"`
}

// envoyHCM is the Any of
// envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.
// Its codec_type is left at AUTO, the zero value.
type envoyHCM struct {
	Type        string                  `json:"@type"`
	StatPrefix  string                  `json:"stat_prefix"`
	RouteConfig envoyRouteConfiguration `json:"route_config"`
	HTTPFilters []envoyHTTPFilter       `json:"http_filters"`
}

// envoyHTTPFilter is
// envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter
// whose typed_config is an Any of an empty message: the filters written
// (grpc_web, cors, connect_grpc_bridge, router) take their defaults.
type envoyHTTPFilter struct {
	Name        string      `json:"name"`
	TypedConfig envoyTypeOf `json:"typed_config"`
}

// envoyTypeOf is an Any of a message with every field at its default.
type envoyTypeOf struct {
	Type string `json:"@type"`
}

// envoyRouteConfiguration is envoy.config.route.v3.RouteConfiguration.
type envoyRouteConfiguration struct {
	Name         string             `json:"name"`
	VirtualHosts []envoyVirtualHost `json:"virtual_hosts"`
}

// envoyVirtualHost is envoy.config.route.v3.VirtualHost.
type envoyVirtualHost struct {
	Name    string       `json:"name"`
	Domains []string     `json:"domains"`
	Routes  []envoyRoute `json:"routes,omitempty"`
}

// envoyRoute is envoy.config.route.v3.Route with a route action.
type envoyRoute struct {
	Name                 string                     `json:"name"`
	Match                envoyRouteMatch            `json:"match"`
	Route                envoyRouteAction           `json:"route"`
	TypedPerFilterConfig map[string]envoyCorsPolicy `json:"typed_per_filter_config"`
	ResponseHeadersToAdd []envoyHeaderValueOption   `json:"response_headers_to_add"`
}

// envoyRouteMatch is envoy.config.route.v3.RouteMatch with an exact path.
type envoyRouteMatch struct {
	Path string `json:"path"`
}

// envoyRouteAction is envoy.config.route.v3.RouteAction to a cluster.
type envoyRouteAction struct {
	Cluster           string                 `json:"cluster"`
	Timeout           string                 `json:"timeout"`
	MaxStreamDuration envoyMaxStreamDuration `json:"max_stream_duration"`
}

// envoyMaxStreamDuration is envoy.config.route.v3.RouteAction.MaxStreamDuration.
type envoyMaxStreamDuration struct {
	GRPCTimeoutHeaderMax string `json:"grpc_timeout_header_max"`
}

// envoyHeaderValueOption is envoy.config.core.v3.HeaderValueOption.
type envoyHeaderValueOption struct {
	Header envoyHeaderValue `json:"header"`
}

// envoyHeaderValue is envoy.config.core.v3.HeaderValue.
type envoyHeaderValue struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// envoyCorsPolicy is the Any of envoy.extensions.filters.http.cors.v3.CorsPolicy.
// The wrapped bools are pointers: forward_not_matching_preflights is written
// when false, since Envoy's default for it is true.
type envoyCorsPolicy struct {
	Type                         string               `json:"@type"`
	AllowOriginStringMatch       []envoyStringMatcher `json:"allow_origin_string_match,omitempty"`
	AllowMethods                 string               `json:"allow_methods,omitempty"`
	AllowHeaders                 string               `json:"allow_headers,omitempty"`
	ExposeHeaders                string               `json:"expose_headers,omitempty"`
	MaxAge                       string               `json:"max_age,omitempty"`
	AllowCredentials             *bool                `json:"allow_credentials,omitempty"`
	AllowPrivateNetworkAccess    *bool                `json:"allow_private_network_access,omitempty"`
	ForwardNotMatchingPreflights *bool                `json:"forward_not_matching_preflights,omitempty"`
}

// envoyStringMatcher is envoy.type.matcher.v3.StringMatcher with either an
// exact string, never empty here, or a safe_regex.
type envoyStringMatcher struct {
	Exact     string             `json:"exact,omitempty"`
	SafeRegex *envoyRegexMatcher `json:"safe_regex,omitempty"`
}

// envoyRegexMatcher is envoy.type.matcher.v3.RegexMatcher (RE2).
type envoyRegexMatcher struct {
	Regex string `json:"regex"`
}

// envoyCluster is envoy.config.cluster.v3.Cluster.
type envoyCluster struct {
	Name                          string                                 `json:"name"`
	Type                          string                                 `json:"type"`
	ConnectTimeout                string                                 `json:"connect_timeout"`
	LoadAssignment                envoyClusterLoadAssignment             `json:"load_assignment"`
	TypedExtensionProtocolOptions map[string]envoyHTTPProtocolOptionsAny `json:"typed_extension_protocol_options"`
}

// Cluster discovery types (envoy.config.cluster.v3.Cluster.DiscoveryType).
// The type is a member of a oneof, so protojson writes it even when it is
// STATIC, the zero value.
const (
	clusterStatic    = "STATIC"
	clusterStrictDNS = "STRICT_DNS"
)

// envoyClusterLoadAssignment is envoy.config.endpoint.v3.ClusterLoadAssignment.
type envoyClusterLoadAssignment struct {
	ClusterName string                     `json:"cluster_name"`
	Endpoints   []envoyLocalityLbEndpoints `json:"endpoints"`
}

// envoyLocalityLbEndpoints is envoy.config.endpoint.v3.LocalityLbEndpoints.
type envoyLocalityLbEndpoints struct {
	LbEndpoints []envoyLbEndpoint `json:"lb_endpoints"`
}

// envoyLbEndpoint is envoy.config.endpoint.v3.LbEndpoint with an endpoint.
type envoyLbEndpoint struct {
	Endpoint envoyEndpoint `json:"endpoint"`
}

// envoyEndpoint is envoy.config.endpoint.v3.Endpoint.
type envoyEndpoint struct {
	Address envoyAddress `json:"address"`
}

// envoyHTTPProtocolOptionsAny is the Any of
// envoy.extensions.upstreams.http.v3.HttpProtocolOptions with an explicit
// HTTP/2 configuration at its defaults.
type envoyHTTPProtocolOptionsAny struct {
	Type               string                  `json:"@type"`
	ExplicitHTTPConfig envoyExplicitHTTPConfig `json:"explicit_http_config"`
}

// envoyExplicitHTTPConfig is
// envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig.
type envoyExplicitHTTPConfig struct {
	HTTP2ProtocolOptions struct{} `json:"http2_protocol_options"`
}

// envoyDuration writes d as protojson writes a google.protobuf.Duration of
// whole seconds: "0s", "5s".
func envoyDuration(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}
