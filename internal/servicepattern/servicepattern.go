// Package servicepattern reads the service patterns of the gateway's
// routes: a fully-qualified service name ("greet.v1.GreetService"), or a
// package prefix ending in ".*" ("greet.v1.*", every service whose name
// starts with "greet.v1."). The gateway routes by them and internal/config
// validates them with the same functions.
package servicepattern

import (
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Valid reports whether p is a service name or a package prefix with ".*".
func Valid(p string) bool {
	return protoreflect.FullName(strings.TrimSuffix(p, ".*")).IsValid()
}

// Match reports whether pattern p names the service.
func Match(p, service string) bool {
	if prefix, ok := strings.CutSuffix(p, "*"); ok {
		return strings.HasPrefix(service, prefix)
	}
	return service == p
}

// Overlap reports whether some service name matches both patterns.
func Overlap(a, b string) bool {
	pa, wa := strings.CutSuffix(a, "*")
	pb, wb := strings.CutSuffix(b, "*")
	switch {
	case !wa && !wb:
		return a == b
	case wa && wb:
		return strings.HasPrefix(pa, pb) || strings.HasPrefix(pb, pa)
	case wa:
		return strings.HasPrefix(b, pa)
	default:
		return strings.HasPrefix(a, pb)
	}
}
