package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/corsgate/corsgate/interceptor"
)

// PolicyDump is the CORS table in force, route by route: what a browser
// gets for every procedure, and where each rule comes from. See
// [Gateway.PolicyDump].
type PolicyDump struct {
	// Loaded is false while some backend has no descriptors yet; its
	// procedures are then missing.
	Loaded bool `json:"loaded"`
	// Pending names the backends without descriptors.
	Pending []string `json:"pending,omitempty"`
	// Routes are the routes in the order of [Config.Routes], then the
	// services no route claims, backend by backend.
	Routes []RouteDump `json:"routes"`
}

// RouteDump is one route of a [PolicyDump].
type RouteDump struct {
	// Route is the route's name: "routes[0]" (or its [Route.Name]), or
	// "backends.NAME" for the services of backend NAME that no route
	// claims.
	Route string `json:"route"`
	// Services are the route's service patterns; empty for "backends.NAME".
	Services []string `json:"services,omitempty"`
	// Backend is the backend's name.
	Backend string `json:"backend"`
	// Policy is the route's CORS settings; null when it has no policy (no
	// CORS headers: browsers on other origins are refused).
	Policy *interceptor.PolicyDescription `json:"policy"`
	// Procedures are the rules of each procedure of the route's services.
	Procedures []interceptor.ProcedureDescription `json:"procedures"`
}

// PolicyDump returns the CORS table in force. Rules from the descriptors
// are "proto", from [Config.Services] "config". Server reflection and
// health, never opened to browsers, are not listed.
func (g *Gateway) PolicyDump() PolicyDump {
	st := g.state.Load()
	dump := PolicyDump{Loaded: st.loaded, Routes: []RouteDump{}}
	rules := interceptor.SourceProto
	if g.services != nil {
		rules = interceptor.SourceConfig
	}
	for _, b := range g.backends {
		if st.pending[b] {
			dump.Pending = append(dump.Pending, b.name)
		}
	}
	tables := map[*rule]*interceptor.Table{}
	for _, rt := range st.routes {
		tables[rt.rule] = rt.table
	}
	order := append([]*rule(nil), g.rules...)
	for _, b := range g.backends {
		order = append(order, b.implicit)
	}
	for _, r := range order {
		t := tables[r]
		if t == nil && r.patterns == nil {
			continue // a backend whose services all have routes
		}
		rd := RouteDump{Route: r.name, Services: r.patterns, Backend: r.backend.name, Procedures: []interceptor.ProcedureDescription{}}
		if r.policy != nil {
			d := r.policy.Describe()
			rd.Policy = &d
			if t != nil {
				rd.Procedures = r.policy.DescribeTable(t, rules)
			}
		} else if t != nil {
			rd.Procedures = policyless.DescribeTable(t, rules)
		}
		dump.Routes = append(dump.Routes, rd)
	}
	return dump
}

// policyless describes the tables of routes without a policy: their
// procedures' rules, which no browser on another origin gets.
var policyless = func() *interceptor.Policy {
	p, _ := interceptor.New()
	return p
}()

// PolicyHandler serves [Gateway.PolicyDump] as indented JSON: corsgate serve
// mounts it at GET /debug/policy of the metrics listener.
func (g *Gateway) PolicyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(g.PolicyDump())
	})
}
