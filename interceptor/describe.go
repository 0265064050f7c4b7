package interceptor

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Source says where a rule comes from, in a [PolicyDescription] or a
// [ProcedureDescription].
type Source string

// The sources of rules.
const (
	// SourceDefault: corsgate's own: the headers of the Connect, gRPC-Web
	// and gRPC protocols, POST, and the policy's defaults.
	SourceDefault Source = "default"
	// SourceProto: the service's descriptors: corsgate's proto options
	// and idempotency_level = NO_SIDE_EFFECTS.
	SourceProto Source = "proto"
	// SourceConfig: the deployment's settings: the policy's options (flags
	// and config keys such as allow-header) and the services: list of the
	// config file.
	SourceConfig Source = "config"
)

// Sourced is a value with the source of the rule that set it.
type Sourced[T any] struct {
	Value  T      `json:"value"`
	Source Source `json:"source"`
}

// PolicyDescription is a policy's deployment-wide settings, each with its
// source; see [Policy.Describe].
type PolicyDescription struct {
	// Origins are the allowed origins as normalized: exact origins,
	// patterns ("https://*.example.com") and "*".
	Origins []Sourced[string] `json:"origins"`
	// OriginFunc is true when a [WithOriginFunc] function decides origins
	// the list does not allow.
	OriginFunc bool `json:"origin-func,omitempty"`
	// Credentials is whether Access-Control-Allow-Credentials is sent.
	Credentials Sourced[bool] `json:"credentials"`
	// MaxAgeSeconds is Access-Control-Max-Age, 0 when omitted.
	MaxAgeSeconds Sourced[int64] `json:"max-age-seconds"`
	// PrivateNetwork is whether Private Network Access is granted.
	PrivateNetwork Sourced[bool] `json:"private-network"`
	// Strict is whether disallowed cross-origin calls are refused.
	Strict Sourced[bool] `json:"strict"`
	// TraceHeaders is whether every procedure allows traceparent,
	// tracestate and baggage ([WithTraceHeaders]).
	TraceHeaders Sourced[bool] `json:"trace-headers"`
}

// ProcedureDescription is one procedure's rules under a policy, each with
// its source: exactly what preflights are answered with; see
// [Policy.DescribeTable].
type ProcedureDescription struct {
	// Procedure is the path, "/greet.v1.GreetService/Greet".
	Procedure string `json:"procedure"`
	// Methods are the allowed HTTP methods.
	Methods []Sourced[string] `json:"methods"`
	// RequestHeaders are the request headers browsers may send, lowercase,
	// in the order of Access-Control-Allow-Headers; "*" (from the config)
	// stands for any name but authorization.
	RequestHeaders []Sourced[string] `json:"request-headers"`
	// ExposedHeaders are the response headers scripts may read, in the
	// order of Access-Control-Expose-Headers.
	ExposedHeaders []Sourced[string] `json:"exposed-headers"`
	// BrowserBarred is whether browsers may never call the procedure.
	BrowserBarred Sourced[bool] `json:"browser-barred"`
}

// Describe returns the policy's settings with their sources: a setting
// that differs from its default comes from the configuration.
func (p *Policy) Describe() PolicyDescription {
	d := PolicyDescription{
		Origins:        []Sourced[string]{},
		OriginFunc:     p.origins.fn != nil,
		Credentials:    sourcedBool(p.credentials),
		PrivateNetwork: sourcedBool(p.privateNetwork),
		Strict:         sourcedBool(p.strict),
		TraceHeaders:   Sourced[bool]{Value: p.traceHeaders, Source: SourceDefault},
		MaxAgeSeconds:  Sourced[int64]{Value: int64(DefaultMaxAge / time.Second), Source: SourceDefault},
	}
	m := p.origins
	if m.all {
		d.Origins = append(d.Origins, Sourced[string]{Value: "*", Source: SourceConfig})
	}
	exact := make([]string, 0, len(m.exact))
	for o := range m.exact {
		exact = append(exact, o)
	}
	slices.Sort(exact)
	for _, o := range exact {
		d.Origins = append(d.Origins, Sourced[string]{Value: o, Source: SourceConfig})
	}
	for _, pat := range m.patterns {
		d.Origins = append(d.Origins, Sourced[string]{Value: pat.prefix + "*" + pat.suffix, Source: SourceConfig})
	}
	if !p.traceHeaders {
		d.TraceHeaders.Source = SourceConfig // on by default
	}
	if p.maxAge == nil {
		d.MaxAgeSeconds = Sourced[int64]{Value: 0, Source: SourceConfig}
	} else if secs, _ := strconv.ParseInt(p.maxAge[0], 10, 64); secs != d.MaxAgeSeconds.Value {
		d.MaxAgeSeconds = Sourced[int64]{Value: secs, Source: SourceConfig}
	}
	return d
}

func sourcedBool(v bool) Sourced[bool] {
	if v {
		return Sourced[bool]{Value: true, Source: SourceConfig}
	}
	return Sourced[bool]{Value: false, Source: SourceDefault}
}

// DescribeTable returns the rules of every procedure of t under the
// policy, in the table's order, each with its source. rules is where the
// table's own rules come from: [SourceProto] for a table derived from
// descriptors ([ServiceOf]), [SourceConfig] for one built from the config
// file's services: list.
func (p *Policy) DescribeTable(t *Table, rules Source) []ProcedureDescription {
	out := make([]ProcedureDescription, 0, len(t.order))
	for _, path := range t.order {
		tp := t.procs[path]
		d := ProcedureDescription{Procedure: path, BrowserBarred: Sourced[bool]{Value: tp.barred, Source: SourceDefault}}
		if tp.barred {
			d.BrowserBarred.Source = rules
		}
		if tp.methods&methodGET != 0 {
			d.Methods = append(d.Methods, Sourced[string]{Value: "GET", Source: rules})
		}
		d.Methods = append(d.Methods, Sourced[string]{Value: "POST", Source: SourceDefault})
		var seen []string
		add := func(list []Sourced[string], conv func(string) string, src Source, names []string) []Sourced[string] {
			for _, n := range names {
				n = conv(n)
				if !slices.Contains(seen, n) {
					seen = append(seen, n)
					list = append(list, Sourced[string]{Value: n, Source: src})
				}
			}
			return list
		}
		lower := strings.ToLower
		d.RequestHeaders = add(nil, lower, SourceDefault, protocolRequestHeaders)
		if p.traceHeaders {
			d.RequestHeaders = add(d.RequestHeaders, lower, SourceDefault, traceRequestHeaders)
		}
		d.RequestHeaders = add(d.RequestHeaders, lower, rules, tp.request)
		d.RequestHeaders = add(d.RequestHeaders, lower, SourceConfig, p.allowedHeaders)
		if p.anyHeader {
			d.RequestHeaders = append(d.RequestHeaders, Sourced[string]{Value: "*", Source: SourceConfig})
		}
		seen = nil
		d.ExposedHeaders = add(nil, canonical, SourceDefault, protocolExposedHeaders)
		d.ExposedHeaders = add(d.ExposedHeaders, canonical, rules, tp.exposed)
		d.ExposedHeaders = add(d.ExposedHeaders, canonical, SourceConfig, p.exposedHeaders)
		out = append(out, d)
	}
	return out
}
