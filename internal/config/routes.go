package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/cliflags"
	"github.com/corsgate/corsgate/internal/servicepattern"
)

// BackendFile is one entry of backends:, keyed by the backend's name:
//
//	backends:
//	  greet:
//	    addresses: [127.0.0.1:9090, 127.0.0.1:9091]  # or ["dns:///greet.internal:9090"]
//	    tls: true
//	    ca: ca.pem
//	    server-name: greet.internal
//	    cert: client.pem   # mutual TLS, with key
//	    key: client-key.pem
//	    descriptors: greet.binpb  # else server reflection
type BackendFile struct {
	// Addresses are the replicas: host:port, http:// or https:// URLs of
	// one scheme, or one "dns:///host:port". At least one.
	Addresses []string `json:"addresses,omitempty"`
	// TLS dials the backend with TLS.
	TLS bool `json:"tls,omitempty"`
	// CA is a PEM file of CAs to verify the backend with (implies TLS).
	CA string `json:"ca,omitempty"`
	// ServerName is the name verified in the backend's certificate
	// (implies TLS).
	ServerName string `json:"server-name,omitempty"`
	// Cert and Key are the gateway's PEM client certificate and key for
	// mutual TLS (imply TLS); both or neither.
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
	// InsecureSkipVerify dials with TLS without verifying the backend's
	// certificate: for test setups only; corsgate serve logs a warning.
	InsecureSkipVerify bool `json:"insecure-skip-verify,omitempty"`
	// Descriptors is a buf image or FileDescriptorSet of the backend's
	// services; empty means server reflection.
	Descriptors string `json:"descriptors,omitempty"`
}

// RouteFile is one entry of routes:. Its CORS keys override the file's
// (and the command line's) defaults for the route's services; an absent or
// null key keeps the default.
type RouteFile struct {
	// Services are fully-qualified service names or package prefixes
	// ending in ".*". At least one; no service may be named by two routes.
	Services []string `json:"services,omitempty"`
	// Backend is the name of one of backends.
	Backend string `json:"backend,omitempty"`

	AllowOrigin      []string  `json:"allow-origin,omitempty"`
	AllowHeader      []string  `json:"allow-header,omitempty"`
	ExposeHeader     []string  `json:"expose-header,omitempty"`
	AllowCredentials *bool     `json:"allow-credentials,omitempty"`
	MaxAge           *Duration `json:"max-age,omitempty"`
	Strict           *bool     `json:"strict,omitempty"`
	PrivateNetwork   *bool     `json:"private-network,omitempty"`
	TraceHeaders     *bool     `json:"trace-headers,omitempty"`
}

// Overrides returns the route's CORS keys.
func (r *RouteFile) Overrides() cliflags.Overrides {
	o := cliflags.Overrides{
		AllowOrigins:     r.AllowOrigin,
		AllowHeaders:     r.AllowHeader,
		ExposeHeaders:    r.ExposeHeader,
		AllowCredentials: r.AllowCredentials,
		Strict:           r.Strict,
		PrivateNetwork:   r.PrivateNetwork,
		TraceHeaders:     r.TraceHeaders,
	}
	if r.MaxAge != nil {
		d := time.Duration(*r.MaxAge)
		o.MaxAge = &d
	}
	return o
}

// BackendNames returns the names of backends, sorted: the order in which
// corsgate serve hands them to the gateway.
func (f *File) BackendNames() []string {
	names := make([]string, 0, len(f.Backends))
	for n := range f.Backends {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// singleBackendKeys are the keys of the single-backend form, which
// backends: replaces with per-backend keys.
var singleBackendKeys = []string{"backend", "backend-tls", "backend-ca", "backend-server-name",
	"backend-insecure-skip-verify", "backend-cert", "backend-key", "descriptors"}

// validateRouting checks backends and routes, each on its own and
// together: every route names a known backend, and no service is claimed
// by two routes.
func (f *File) validateRouting() error {
	if f.present["routes"] && !f.present["backends"] {
		return keyErrorf("routes", "without backends: name the backends the routes send services to")
	}
	if !f.present["backends"] {
		return nil
	}
	for _, k := range singleBackendKeys {
		if f.present[k] {
			return keyErrorf(k, "set together with backends: give it per backend in backends (or drop backends)")
		}
	}
	if len(f.Backends) == 0 {
		return keyErrorf("backends", "empty: name at least one backend")
	}
	for _, name := range f.BackendNames() {
		if err := checkBackendFile(name, f.Backends[name]); err != nil {
			return err
		}
	}
	defaults := f.defaultCORS()
	type claimed struct{ pattern, key string }
	var seen []claimed
	for i, r := range f.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		if len(r.Services) == 0 {
			return keyErrorf(key+".services", `missing: name services ("greet.v1.GreetService") or packages ("greet.v1.*")`)
		}
		for j, p := range r.Services {
			pkey := fmt.Sprintf("%s.services[%d]", key, j)
			if !servicepattern.Valid(p) {
				return keyErrorf(pkey, `%q is neither a fully-qualified service name ("greet.v1.GreetService") nor a package prefix ("greet.v1.*")`, p)
			}
			for _, s := range seen {
				if servicepattern.Overlap(s.pattern, p) {
					return keyErrorf(pkey, "%q claims services that %s (%q) claims too: a service goes to one route", p, s.key, s.pattern)
				}
			}
			seen = append(seen, claimed{pattern: p, key: pkey})
		}
		if r.Backend == "" {
			return keyErrorf(key+".backend", "missing: name one of backends (%s)", strings.Join(f.BackendNames(), ", "))
		}
		if f.Backends[r.Backend] == nil {
			return keyErrorf(key+".backend", "%q is not one of backends (%s)", r.Backend, strings.Join(f.BackendNames(), ", "))
		}
		if err := r.checkCORS(key, defaults); err != nil {
			return err
		}
	}
	return nil
}

// defaultCORS is the policy settings of the file's top-level CORS keys.
func (f *File) defaultCORS() cliflags.CORS {
	c := cliflags.CORS{
		AllowOrigins:     f.AllowOrigin,
		AllowHeaders:     f.AllowHeader,
		ExposeHeaders:    f.ExposeHeader,
		AllowCredentials: f.AllowCredentials,
		MaxAge:           cliflags.DefaultMaxAge,
		PrivateNetwork:   f.PrivateNetwork,
		Strict:           f.Strict,
		TraceHeaders:     f.traceHeaders(),
	}
	if f.present["max-age"] {
		c.MaxAge = time.Duration(f.MaxAge)
	}
	return c
}

// checkCORS checks the route's CORS keys on their own, then as the route's
// policy over the defaults.
func (r *RouteFile) checkCORS(key string, defaults cliflags.CORS) error {
	if r.AllowOrigin != nil {
		if err := checkOrigins(r.AllowOrigin); err != nil {
			return &KeyError{Key: key + ".allow-origin", Err: err}
		}
	}
	if err := checkHeaderNames(r.AllowHeader, interceptor.WithAllowedHeaders); err != nil {
		return &KeyError{Key: key + ".allow-header", Err: err}
	}
	if err := checkHeaderNames(r.ExposeHeader, interceptor.WithExposedHeaders); err != nil {
		return &KeyError{Key: key + ".expose-header", Err: err}
	}
	if r.MaxAge != nil {
		if err := cliflags.CheckMaxAge(time.Duration(*r.MaxAge)); err != nil {
			return &KeyError{Key: key + ".max-age", Err: err}
		}
	}
	merged := defaults.With(r.Overrides())
	if _, err := interceptor.New(merged.Options()...); err != nil {
		var ce *interceptor.ConfigError
		if !errors.As(err, &ce) {
			return &KeyError{Key: key, Err: err}
		}
		k, kerr := cliflags.KeyTerms(ce)
		return &KeyError{Key: key + "." + k, Err: kerr}
	}
	return nil
}

// checkBackendFile checks one entry of backends.
func checkBackendFile(name string, b *BackendFile) error {
	key := "backends." + name
	if !validName(name) {
		return keyErrorf(key, "%q: a backend name is 1 to 64 letters, digits, '_' or '-'", name)
	}
	if b == nil || len(b.Addresses) == 0 {
		return keyErrorf(key+".addresses", "missing: give the backend's host:port (or its replicas, or one dns:///host:port)")
	}
	scheme := ""
	for i, a := range b.Addresses {
		akey := fmt.Sprintf("%s.addresses[%d]", key, i)
		s, err := addressScheme(a)
		if err != nil {
			return &KeyError{Key: akey, Err: err}
		}
		if i > 0 && (s != scheme || s == "dns") {
			return keyErrorf(akey, "%q: give one dns:/// target, or host:port addresses of one scheme", a)
		}
		scheme = s
	}
	for _, p := range []struct{ key, value string }{{"ca", b.CA}, {"cert", b.Cert}, {"key", b.Key}, {"descriptors", b.Descriptors}} {
		if p.value != "" {
			if err := checkPath(p.value); err != nil {
				return &KeyError{Key: key + "." + p.key, Err: err}
			}
		}
	}
	if b.ServerName != "" {
		if err := checkServerName(b.ServerName); err != nil {
			return &KeyError{Key: key + ".server-name", Err: err}
		}
	}
	switch {
	case (b.Cert == "") != (b.Key == ""):
		return keyErrorf(key+".cert", "cert and key go together")
	case b.InsecureSkipVerify && b.CA != "":
		return keyErrorf(key+".insecure-skip-verify", "with ca: the CA would not be used; drop one")
	}
	return nil
}

// addressScheme checks one backend address and returns its scheme: "http",
// "https" or "dns".
func addressScheme(a string) (string, error) {
	if rest, ok := strings.CutPrefix(a, "dns:///"); ok {
		if err := checkBackend(rest); err != nil || strings.Contains(rest, "://") {
			return "", fmt.Errorf("%q: give dns:///host:port", a)
		}
		return "dns", nil
	}
	if err := checkBackend(a); err != nil {
		return "", err
	}
	if strings.HasPrefix(a, "https://") {
		return "https", nil
	}
	return "http", nil
}

func validName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
