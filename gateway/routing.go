package gateway

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/servicepattern"
)

// Route sends the services it names to one backend, under a CORS policy of
// its own ([Config.Routes]).
type Route struct {
	// Services are fully-qualified service names ("greet.v1.GreetService")
	// or package prefixes ending in ".*" ("greet.v1.*": every service whose
	// name starts with "greet.v1."). At least one is required, and no
	// service may be named by two routes. Each must name a service of the
	// backend: with descriptors from files, [New] refuses one that names
	// none; with reflection, the routing table that would follow is refused
	// and reported (see [RoutingError]).
	Services []string
	// Backend is the [Backend.Name] the services go to. Required.
	Backend string
	// Policy decides CORS for the route's services. Nil means
	// [Config.Policy].
	Policy *interceptor.Policy
	// Name names the route in reports and errors, as the key of its
	// config entry; the default is "routes[i]", i its index.
	Name string
}

// RoutingError is a routing table the descriptors do not allow: a route
// pattern that matches no service of its backend, or a service that two
// backends serve with no route choosing one. [New] returns it (inside a
// [ConfigError]) when the descriptors come from files; with reflection, the
// table is not installed, the last good one keeps serving, and the error is
// logged, counted (corsgate_routing_errors_total) and shown by /healthz.
type RoutingError struct {
	// Key is the setting at fault in config-file terms:
	// "routes[1].services[0]" for a pattern, "routes" for a service no
	// route chooses.
	Key string
	// Backend is the backend whose descriptors were being installed, or
	// whose route pattern matches nothing.
	Backend string
	// Err says what is wrong.
	Err error

	// digest and generation are the backend's refused descriptors and the
	// number of installs before, so that a refresh with the same
	// descriptors is not reported again.
	digest     [sha256.Size]byte
	generation int
}

func (e *RoutingError) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns the error inside.
func (e *RoutingError) Unwrap() error { return e.Err }

// rule is a route at run time, or the implicit route of one backend's
// services that no route claims (patterns nil).
type rule struct {
	name     string
	patterns []string
	backend  *backend
	policy   *interceptor.Policy
}

// newRules validates cfg.Routes against the backends.
func (g *Gateway) newRules(routes []Route) error {
	type seen struct {
		pattern string
		route   string
	}
	var all []seen
	for i, rt := range routes {
		field := fmt.Sprintf("Routes[%d]", i)
		name := rt.Name
		if name == "" {
			name = fmt.Sprintf("routes[%d]", i)
		}
		b := g.byName[rt.Backend]
		if b == nil {
			return &ConfigError{Field: field + ".Backend", Err: fmt.Errorf("%q names no backend; known: %s", rt.Backend, strings.Join(g.backendNames(), ", "))}
		}
		if len(rt.Services) == 0 {
			return &ConfigError{Field: field + ".Services", Err: errors.New(`empty; name services ("greet.v1.GreetService") or packages ("greet.v1.*")`)}
		}
		for j, p := range rt.Services {
			if !servicepattern.Valid(p) {
				return &ConfigError{Field: fmt.Sprintf("%s.Services[%d]", field, j),
					Err: fmt.Errorf(`%q is neither a fully-qualified service name ("greet.v1.GreetService") nor a package prefix ("greet.v1.*")`, p)}
			}
			for _, s := range all {
				if servicepattern.Overlap(s.pattern, p) {
					return &ConfigError{Field: fmt.Sprintf("%s.Services[%d]", field, j),
						Err: fmt.Errorf("%q claims services %q of %s claims too; a service goes to one route", p, s.pattern, s.route)}
				}
			}
			all = append(all, seen{pattern: p, route: name})
		}
		policy := rt.Policy
		if policy == nil {
			policy = g.policy
		}
		g.rules = append(g.rules, &rule{name: name, patterns: rt.Services, backend: b, policy: policy})
	}
	return nil
}

func (g *Gateway) backendNames() []string {
	names := make([]string, len(g.backends))
	for i, b := range g.backends {
		names[i] = b.name
	}
	return names
}

// ruleFor returns the route claiming service and the index of its pattern,
// or nil.
func (g *Gateway) ruleFor(service string) (*rule, int) {
	for _, r := range g.rules {
		for i, p := range r.patterns {
			if servicepattern.Match(p, service) {
				return r, i
			}
		}
	}
	return nil, 0
}

// claim is one routed service.
type claim struct {
	sd    protoreflect.ServiceDescriptor
	r     *rule
	types *dynamicpb.Types
}

// build makes the routing table from the descriptors in force, with files
// in place of b's when b is not nil. Backends without descriptors are
// pending. A table the descriptors do not allow is a *RoutingError; other
// errors are the CORS rules'.
func (g *Gateway) build(b *backend, files *protoregistry.Files) (*state, *RoutingError, error) {
	st := &state{loaded: true, routes: map[string]*route{}, services: map[string]*backend{}, pending: map[*backend]bool{}}
	claims := map[protoreflect.FullName]claim{}
	used := map[*rule][]bool{}
	type owner struct {
		b     *backend
		sd    protoreflect.ServiceDescriptor
		types *dynamicpb.Types
	}
	owners := map[protoreflect.FullName][]owner{}
	for _, be := range g.backends {
		fs := be.files.Load()
		if be == b {
			fs = files
		}
		if fs == nil {
			st.loaded = false
			st.pending[be] = true
			continue
		}
		types := dynamicpb.NewTypes(fs)
		fs.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
			sds := fd.Services()
			for i := range sds.Len() {
				sd := sds.Get(i)
				name := sd.FullName()
				if r, pi := g.ruleFor(string(name)); r != nil {
					if r.backend == be {
						if used[r] == nil {
							used[r] = make([]bool, len(r.patterns))
						}
						used[r][pi] = true
						claims[name] = claim{sd: sd, r: r, types: types}
					}
					continue
				}
				if len(g.backends) > 1 && isOperatorService(name) {
					continue // in every backend; the gateway answers health itself
				}
				owners[name] = append(owners[name], owner{b: be, sd: sd, types: types})
			}
			return true
		})
	}
	failing := DefaultBackendName
	if b != nil {
		failing = b.name
	}
	for _, name := range sortedNames(owners) {
		os := owners[name]
		if len(os) > 1 {
			names := make([]string, len(os))
			for i, o := range os {
				names[i] = o.b.name
			}
			return nil, &RoutingError{Key: "routes", Backend: failing, Err: fmt.Errorf(
				"service %s is in the descriptors of backends %s; add a route that chooses one", name, strings.Join(names, " and "))}, nil
		}
		claims[name] = claim{sd: os[0].sd, r: os[0].b.implicit, types: os[0].types}
	}
	for _, r := range g.rules {
		if st.pending[r.backend] {
			continue
		}
		for i, p := range r.patterns {
			if used[r] == nil || !used[r][i] {
				return nil, &RoutingError{Key: fmt.Sprintf("%s.services[%d]", r.name, i), Backend: r.backend.name,
					Err: fmt.Errorf("%q matches no service of backend %s", p, r.backend.name)}, nil
			}
		}
	}
	if err := g.fill(st, claims); err != nil {
		return nil, nil, err
	}
	return st, nil, nil
}

// fill adds the procedures of claims to st with their CORS handlers.
func (g *Gateway) fill(st *state, claims map[protoreflect.FullName]claim) error {
	rpc := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.serveRPC(st, w, r) })
	perRule := map[*rule][]interceptor.Service{}
	var all, unclaimed []interceptor.Service
	var order []*rule
	for _, name := range sortedNames(claims) {
		c := claims[name]
		if _, ok := perRule[c.r]; !ok {
			perRule[c.r] = nil
			order = append(order, c.r)
		}
		g.addRoutes(st, c.sd, c.r, c.types)
		st.services[string(name)] = c.r.backend
		if g.services != nil || isOperatorService(name) {
			continue
		}
		svc, err := interceptor.ServiceOf(c.sd)
		if err != nil {
			return fmt.Errorf("gateway: CORS rules of %s: %w", name, err)
		}
		perRule[c.r] = append(perRule[c.r], svc)
		all = append(all, svc)
	}
	for _, svc := range g.services {
		if c, ok := claims[protoreflect.FullName(svc.Name)]; ok {
			perRule[c.r] = append(perRule[c.r], svc)
		} else {
			unclaimed = append(unclaimed, svc)
		}
		all = append(all, svc)
	}
	for _, r := range order {
		table, err := interceptor.NewTable(perRule[r]...)
		if err != nil {
			return fmt.Errorf("gateway: CORS table of %s: %w", r.name, err)
		}
		var h http.Handler = rpc
		if r.policy != nil {
			h = r.policy.Handler(table, rpc)
		}
		var upgrade *interceptor.UpgradeGuard
		if g.ws != nil {
			// WebSocket upgrades are checked by the route's policy too.
			upgrade = cmp.Or(r.policy, g.ws.policy).Upgrades(table)
		}
		for _, rt := range st.routes {
			if rt.rule == r {
				rt.handler, rt.table, rt.upgrade = h, table, upgrade
			}
		}
	}
	var err error
	if st.table, err = interceptor.NewTable(all...); err != nil {
		return fmt.Errorf("gateway: CORS table: %w", err)
	}
	st.fallback = rpc
	if g.policy == nil {
		return nil
	}
	table, err := interceptor.NewTable(unclaimed...)
	if err != nil {
		return fmt.Errorf("gateway: CORS table: %w", err)
	}
	st.fallback = g.policy.Handler(table, rpc)
	if !st.loaded && g.services == nil {
		st.fallback = g.newPending(st, st.fallback, rpc)
	}
	return nil
}

func sortedNames[V any](m map[protoreflect.FullName]V) []protoreflect.FullName {
	names := make([]protoreflect.FullName, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// pendingBackend returns the backend a request for path waits for: the
// pending backend of the route claiming the path's service, or, for a
// service no route claims, the first pending backend; nil when none.
func (g *Gateway) pendingBackend(st *state, path string) *backend {
	if len(st.pending) == 0 {
		return nil
	}
	service, _, ok := splitProcedure(path)
	if ok {
		if r, _ := g.ruleFor(service); r != nil {
			if st.pending[r.backend] {
				return r.backend
			}
			return nil
		}
	}
	for _, b := range g.backends {
		if st.pending[b] {
			return b
		}
	}
	return nil
}

// pending is the CORS handler of unknown paths while some backend has no
// descriptors yet: a path that may belong to a pending backend gets the
// provisional answer of its route's policy (see provisional.go), others the
// refusal of fallback.
type pending struct {
	g        *Gateway
	st       *state
	fallback http.Handler
	byRule   map[*rule]*provisional
	implicit *provisional
}

func (g *Gateway) newPending(st *state, fallback, rpc http.Handler) *pending {
	p := &pending{g: g, st: st, fallback: fallback, byRule: map[*rule]*provisional{}}
	for _, r := range g.rules {
		if st.pending[r.backend] && r.policy != nil {
			p.byRule[r] = &provisional{g: g, policy: r.policy, fallback: r.policy.Handler(nil, rpc), rpc: rpc}
		}
	}
	p.implicit = &provisional{g: g, policy: g.policy, fallback: fallback, rpc: rpc}
	return p
}

func (p *pending) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b := p.g.pendingBackend(p.st, r.URL.Path)
	if b == nil {
		p.fallback.ServeHTTP(w, r)
		return
	}
	if service, _, ok := splitProcedure(r.URL.Path); ok {
		if ru, _ := p.g.ruleFor(service); ru != nil {
			if h := p.byRule[ru]; h != nil {
				h.ServeHTTP(w, r)
				return
			}
			p.fallback.ServeHTTP(w, r)
			return
		}
	}
	p.implicit.ServeHTTP(w, r)
}

// kickRefresh asks for new descriptors after a request for an unknown
// path: from the backend of the route claiming its service, or from every
// backend.
func (g *Gateway) kickRefresh(path string) {
	if service, _, ok := splitProcedure(path); ok {
		if r, _ := g.ruleFor(service); r != nil {
			r.backend.kickRefresh()
			return
		}
	}
	for _, b := range g.backends {
		b.kickRefresh()
	}
}
