package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/corsgate/corsgate/interceptor"
)

// The parameters route and backend_address put the aggregated outputs in
// front of several backends: route=PACKAGE=BACKEND sends the services of a
// proto package to a named backend, and backend_address=BACKEND=HOST:PORT
// says where that backend is. With them, format=yaml and json write the
// backends: and routes: sections of the gateway config, and format=envoy
// writes one cluster per backend; without them, the outputs name one
// backend, as before.

// setRoute stores one route parameter, PACKAGE=BACKEND.
func (p *params) setRoute(v string) error {
	pkg, backend, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want PACKAGE=BACKEND (route=greet.v1=greet), not %q", v)
	}
	if !protoreflect.FullName(pkg).IsValid() {
		return fmt.Errorf("%q is not a proto package name such as greet.v1", pkg)
	}
	if err := checkBackendName(backend); err != nil {
		return err
	}
	if prev, dup := p.routes[pkg]; dup {
		return fmt.Errorf("package %s routed twice (to %s and to %s): give one route per package", pkg, prev, backend)
	}
	if p.routes == nil {
		p.routes = make(map[string]string)
	}
	p.routes[pkg] = backend
	return nil
}

// setBackendAddress stores one backend_address parameter, BACKEND=HOST:PORT.
func (p *params) setBackendAddress(v string) error {
	name, addr, ok := strings.Cut(v, "=")
	if !ok {
		return fmt.Errorf("want BACKEND=HOST:PORT (backend_address=greet=127.0.0.1:9090), not %q", v)
	}
	if err := checkBackendName(name); err != nil {
		return err
	}
	host, _, err := splitHostPort(addr)
	if err != nil {
		return fmt.Errorf("backend %s: %w", name, err)
	}
	if host == "" {
		return fmt.Errorf("backend %s: %q has no host", name, addr)
	}
	if prev, dup := p.backendAddresses[name]; dup {
		return fmt.Errorf("backend %s given twice (%s and %s): give one address per backend", name, prev, addr)
	}
	if p.backendAddresses == nil {
		p.backendAddresses = make(map[string]string)
	}
	p.backendAddresses[name] = addr
	return nil
}

// checkRouting checks route and backend_address against each other and
// against backend, once all parameters are set.
func (p *params) checkRouting() error {
	if len(p.routes) == 0 && len(p.backendAddresses) == 0 {
		return nil
	}
	if p.backend != "" {
		return errors.New("parameter backend does not apply with route parameters: " +
			"give each backend's address with backend_address=BACKEND=HOST:PORT and drop backend")
	}
	for _, name := range p.backendNames() {
		if _, ok := p.backendAddresses[name]; !ok {
			return fmt.Errorf("parameter route: backend %s has no address: add backend_address=%s=HOST:PORT", name, name)
		}
	}
	for _, name := range sortedKeys(p.backendAddresses) {
		if !slices.Contains(p.backendNames(), name) {
			return fmt.Errorf("parameter backend_address: no route parameter names backend %s: "+
				"route a package to it (route=PACKAGE=%s) or drop it", name, name)
		}
	}
	return nil
}

// routed reports whether the outputs name several backends.
func (p *params) routed() bool { return len(p.routes) > 0 }

// backendNames returns the backends the route parameters name, sorted.
func (p *params) backendNames() []string {
	var names []string
	for _, b := range p.routes {
		if !slices.Contains(names, b) {
			names = append(names, b)
		}
	}
	slices.Sort(names)
	return names
}

// routeOf returns the routed package of a service and its backend.
func (p *params) routeOf(service string) (pkg, backend string) {
	pkg = servicePackage(service)
	return pkg, p.routes[pkg]
}

// checkRoutedServices checks the route parameters against the services
// generated: every package routed has a service, and every service's
// package is routed (Envoy needs a cluster for every route, and the gateway
// config states where each service goes).
func (p *params) checkRoutedServices(services []interceptor.Service) error {
	if !p.routed() {
		return nil
	}
	var packages []string
	for _, svc := range services {
		pkg, backend := p.routeOf(svc.Name)
		if backend == "" {
			return fmt.Errorf("package %q of service %s has no route parameter: add route=%s=BACKEND", pkg, svc.Name, pkg)
		}
		if !slices.Contains(packages, pkg) {
			packages = append(packages, pkg)
		}
	}
	slices.Sort(packages)
	for _, pkg := range sortedKeys(p.routes) {
		if !slices.Contains(packages, pkg) {
			return fmt.Errorf("parameter route: package %s has no service in the files generated (packages with services: %s): "+
				"fix the package name or drop the parameter", pkg, strings.Join(packages, ", "))
		}
	}
	return nil
}

// configRoute is one entry of routes: in the gateway config, the keys of
// internal/config's RouteFile.
type configRoute struct {
	Services []string `json:"services"`
	Backend  string   `json:"backend"`
}

// configBackend is one entry of backends: in the gateway config, the keys
// of internal/config's BackendFile.
type configBackend struct {
	Addresses []string `json:"addresses"`
}

// configRouting returns the backends: and routes: sections: one route per
// routed package, by package name. A route claims its package as "pkg.*",
// unless another routed package is inside it ("acme.v1" and
// "acme.v1.admin"), whose services "acme.v1.*" would claim too: then the
// route lists its package's services by name.
func (p *params) configRouting(services []interceptor.Service) (map[string]configBackend, []configRoute) {
	backends := make(map[string]configBackend, len(p.backendAddresses))
	for name, addr := range p.backendAddresses {
		backends[name] = configBackend{Addresses: []string{addr}}
	}
	var routes []configRoute
	for _, pkg := range sortedKeys(p.routes) {
		r := configRoute{Services: []string{pkg + ".*"}, Backend: p.routes[pkg]}
		if p.hasInnerPackage(pkg) {
			r.Services = nil
			for _, svc := range services {
				if servicePackage(svc.Name) == pkg {
					r.Services = append(r.Services, svc.Name)
				}
			}
		}
		routes = append(routes, r)
	}
	return backends, routes
}

// hasInnerPackage reports whether another routed package is inside pkg.
func (p *params) hasInnerPackage(pkg string) bool {
	for other := range p.routes {
		if strings.HasPrefix(other, pkg+".") {
			return true
		}
	}
	return false
}

// servicePackage is the proto package of a service's full name: services
// are declared at the top of a file, so all but the last name.
func servicePackage(service string) string {
	i := strings.LastIndexByte(service, '.')
	if i < 0 {
		return ""
	}
	return service[:i]
}

// checkBackendName accepts the backend names internal/config accepts: 1 to
// 64 letters, digits, '_' or '-'.
func checkBackendName(name string) error {
	ok := name != "" && len(name) <= 64
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%q is not a backend name: 1 to 64 letters, digits, '_' or '-'", name)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
