package interceptor

import (
	"net/http"
	"strings"
	"testing"
)

func values(list []Sourced[string]) string {
	v := make([]string, 0, len(list))
	for _, s := range list {
		if s.Value != "*" {
			v = append(v, s.Value)
		}
	}
	return strings.Join(v, ", ")
}

// TestDescribeTableIsWhatPreflightsAnswer: for every procedure of greet and
// several policies, DescribeTable lists exactly the methods, request headers
// and exposed headers the handler answers with, in their order; a
// browser-barred procedure is refused.
func TestDescribeTableIsWhatPreflightsAnswer(t *testing.T) {
	t.Parallel()
	table := greetTable(t)
	policies := map[string]*Policy{
		"default":          mustNew(t, WithAllowedOrigins(appOrigin)),
		"no trace headers": mustNew(t, WithAllowedOrigins(appOrigin), WithTraceHeaders(false)),
		"lists":            mustNew(t, WithAllowedOrigins(appOrigin), WithAllowedHeaders("X-Tenant", "authorization"), WithExposedHeaders("x-served-by")),
		"any header":       mustNew(t, WithAllowedOrigins(appOrigin), WithAllowedHeaders("*")),
	}
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := p.Handler(table, noop)
			procs := p.DescribeTable(table, SourceProto)
			if len(procs) != len(table.order) {
				t.Fatalf("%d procedures described, table has %d", len(procs), len(table.order))
			}
			for _, d := range procs {
				w := &fakeWriter{header: make(http.Header)}
				// No request headers: with "*" the answer would echo them.
				h.ServeHTTP(w, preflightRequest(d.Procedure, appOrigin, "POST", ""))
				if d.BrowserBarred.Value {
					if w.code != http.StatusForbidden {
						t.Errorf("%s is described barred, its preflight answers %d", d.Procedure, w.code)
					}
					continue
				}
				if got := w.header.Get(hACAM); got != values(d.Methods) {
					t.Errorf("%s: methods %q, preflight allows %q", d.Procedure, values(d.Methods), got)
				}
				if got := w.header.Get(hACAH); got != values(d.RequestHeaders) {
					t.Errorf("%s: request headers\n%q, preflight allows\n%q", d.Procedure, values(d.RequestHeaders), got)
				}
				w = &fakeWriter{header: make(http.Header)}
				h.ServeHTTP(w, actualRequest(d.Procedure, appOrigin))
				if got := w.header.Get(hACEH); got != values(d.ExposedHeaders) {
					t.Errorf("%s: exposed headers\n%q, response exposes\n%q", d.Procedure, values(d.ExposedHeaders), got)
				}
				if got := sourceOfValue(d.RequestHeaders, "*"); (got != "") != p.anyHeader || got != "" && got != SourceConfig {
					t.Errorf("%s: \"*\" described with source %q, policy any-header %v", d.Procedure, got, p.anyHeader)
				}
			}
		})
	}
}

func sourceOfValue(list []Sourced[string], v string) Source {
	for _, s := range list {
		if s.Value == v {
			return s.Source
		}
	}
	return ""
}

// TestDescribeSources: where each rule of Greet comes from, and the
// policy's settings against their defaults.
func TestDescribeSources(t *testing.T) {
	t.Parallel()
	p := mustNew(t, WithAllowedOrigins(appOrigin, "https://*.corp.example"), WithAllowedHeaders("x-tenant"),
		WithCredentials(true), WithMaxAge(0), WithTraceHeaders(false))
	d := p.Describe()
	if got := values(d.Origins); got != appOrigin+", https://*.corp.example" {
		t.Errorf("origins %q", got)
	}
	for name, c := range map[string]struct {
		got  any
		want any
	}{
		"credentials":   {d.Credentials, Sourced[bool]{Value: true, Source: SourceConfig}},
		"strict":        {d.Strict, Sourced[bool]{Value: false, Source: SourceDefault}},
		"trace-headers": {d.TraceHeaders, Sourced[bool]{Value: false, Source: SourceConfig}},
		"max-age":       {d.MaxAgeSeconds, Sourced[int64]{Value: 0, Source: SourceConfig}},
	} {
		if c.got != c.want {
			t.Errorf("%s = %+v, want %+v", name, c.got, c.want)
		}
	}
	var greet ProcedureDescription
	for _, pd := range p.DescribeTable(greetTable(t), SourceProto) {
		if pd.Procedure == pathGreet {
			greet = pd
		}
	}
	for _, c := range []struct {
		list  []Sourced[string]
		value string
		want  Source
	}{
		{greet.Methods, "GET", SourceProto}, // idempotency_level = NO_SIDE_EFFECTS
		{greet.Methods, "POST", SourceDefault},
		{greet.RequestHeaders, "x-grpc-web", SourceDefault},
		{greet.RequestHeaders, "x-request-id", SourceProto},
		{greet.RequestHeaders, "x-tenant", SourceConfig},
		{greet.RequestHeaders, "traceparent", ""}, // WithTraceHeaders(false)
		{greet.ExposedHeaders, "Trailer-X-Greet-Trailer", SourceProto},
	} {
		if got := sourceOfValue(c.list, c.value); got != c.want {
			t.Errorf("Greet %s: source %q, want %q", c.value, got, c.want)
		}
	}
}
