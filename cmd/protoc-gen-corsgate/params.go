package main

import (
	"errors"
	"fmt"
	"go/token"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Output formats chosen with the parameter format.
const (
	formatGo    = "go"
	formatYAML  = "yaml"
	formatJSON  = "json"
	formatEnvoy = "envoy"
)

// maxMaxAge is the largest Access-Control-Max-Age corsgate accepts; browsers
// cap it lower (Chromium at 7200 s, Firefox at 86400 s).
const maxMaxAge = 86400 * time.Second

// param describes one plugin parameter: the formats it applies to and how to
// store its value. Repeatable parameters may be given several times.
type param struct {
	formats    []string
	repeatable bool
	set        func(p *params, value string) error
	help       string
}

// params holds the parsed plugin parameters. The zero value is not ready:
// use newParams.
type params struct {
	format               string
	allowOrigins         []string
	allowCredentials     bool
	maxAge               time.Duration
	maxAgeSet            bool
	allowHeaders         []string
	exposeHeaders        []string
	privateNetwork       bool
	strict               bool
	listen               string
	backend              string
	packageSuffix        string
	connectPackageSuffix string
	envoyConnectBridge   bool
	routes               map[string]string // proto package → backend name
	backendAddresses     map[string]string // backend name → host:port

	given []string // parameter names in the order given
}

// paramTable lists every parameter protoc-gen-corsgate understands, besides
// protogen's own (paths, module, M...).
var paramTable = map[string]param{
	"format": {
		set: func(p *params, v string) error {
			switch v {
			case formatGo, formatYAML, formatJSON, formatEnvoy:
				p.format = v
				return nil
			}
			return fmt.Errorf("want go, yaml, json or envoy, not %q", v)
		},
		help: "output: go (default), yaml, json or envoy",
	},
	"allow_origin": {
		formats:    []string{formatYAML, formatJSON, formatEnvoy},
		repeatable: true,
		set: func(p *params, v string) error {
			if v == "" {
				return errors.New("empty origin: give an origin such as https://app.example.com")
			}
			p.allowOrigins = append(p.allowOrigins, v)
			return nil
		},
		help: "origin browsers may call from (repeat for several); https://*.example.com patterns and * allowed",
	},
	"allow_credentials": {
		formats: []string{formatYAML, formatJSON, formatEnvoy},
		set:     func(p *params, v string) error { return parseBool(v, &p.allowCredentials) },
		help:    "true to let browsers send cookies and HTTP authentication",
	},
	"max_age": {
		formats: []string{formatYAML, formatJSON, formatEnvoy},
		set: func(p *params, v string) error {
			d, err := parseMaxAge(v)
			if err != nil {
				return err
			}
			p.maxAge, p.maxAgeSet = d, true
			return nil
		},
		help: "how long browsers may cache a preflight answer: seconds (7200) or a Go duration (2h); at most 86400s",
	},
	"allow_header": {
		formats:    []string{formatYAML, formatJSON, formatEnvoy},
		repeatable: true,
		set: func(p *params, v string) error {
			if err := checkHeaderName(v); err != nil {
				return err
			}
			p.allowHeaders = append(p.allowHeaders, strings.ToLower(v))
			return nil
		},
		help: "extra request header browsers may send to every procedure (repeat for several)",
	},
	"expose_header": {
		formats:    []string{formatYAML, formatJSON, formatEnvoy},
		repeatable: true,
		set: func(p *params, v string) error {
			if err := checkHeaderName(v); err != nil {
				return err
			}
			p.exposeHeaders = append(p.exposeHeaders, strings.ToLower(v))
			return nil
		},
		help: "extra response header scripts may read from every procedure (repeat for several)",
	},
	"private_network": {
		formats: []string{formatYAML, formatJSON, formatEnvoy},
		set:     func(p *params, v string) error { return parseBool(v, &p.privateNetwork) },
		help:    "true to answer Private Network Access preflights",
	},
	"strict": {
		formats: []string{formatYAML, formatJSON},
		set:     func(p *params, v string) error { return parseBool(v, &p.strict) },
		help:    "true to refuse cross-origin calls the policy does not allow (gateway config only)",
	},
	"listen": {
		formats: []string{formatYAML, formatJSON, formatEnvoy},
		set: func(p *params, v string) error {
			if _, _, err := splitHostPort(v); err != nil {
				return err
			}
			p.listen = v
			return nil
		},
		help: "host:port the gateway (or Envoy) listens on",
	},
	"backend": {
		formats: []string{formatYAML, formatJSON, formatEnvoy},
		set: func(p *params, v string) error {
			if _, _, err := splitHostPort(v); err != nil {
				return err
			}
			p.backend = v
			return nil
		},
		help: "host:port of the gRPC backend; for several backends, route and backend_address instead",
	},
	"route": {
		formats:    []string{formatYAML, formatJSON, formatEnvoy},
		repeatable: true,
		set:        func(p *params, v string) error { return p.setRoute(v) },
		help:       "PACKAGE=BACKEND: send the services of a proto package to a named backend (repeat per package; with backend_address)",
	},
	"backend_address": {
		formats:    []string{formatYAML, formatJSON, formatEnvoy},
		repeatable: true,
		set:        func(p *params, v string) error { return p.setBackendAddress(v) },
		help:       "BACKEND=HOST:PORT: the gRPC server of a backend named by route (repeat per backend)",
	},
	"package_suffix": {
		formats: []string{formatGo},
		set: func(p *params, v string) error {
			if !token.IsIdentifier(v) {
				return fmt.Errorf("%q is not a Go identifier", v)
			}
			p.packageSuffix = v
			return nil
		},
		help: `suffix of the generated Go package, "corsgate" by default (greetv1 → greetv1corsgate)`,
	},
	"connect_package_suffix": {
		formats: []string{formatGo},
		set: func(p *params, v string) error {
			if v != "" && !token.IsIdentifier(v) {
				return fmt.Errorf("%q is not a Go identifier", v)
			}
			p.connectPackageSuffix = v
			return nil
		},
		help: `package_suffix given to protoc-gen-connect-go, "connect" by default; empty for the base package`,
	},
	"envoy_connect_bridge": {
		formats: []string{formatEnvoy},
		set:     func(p *params, v string) error { return parseBool(v, &p.envoyConnectBridge) },
		help:    "true to add Envoy's connect_grpc_bridge filter, for Connect clients in front of a gRPC-only backend",
	},
}

func newParams() *params {
	return &params{
		format:               formatGo,
		packageSuffix:        "corsgate",
		connectPackageSuffix: "connect",
	}
}

// set stores one parameter; it is protogen's ParamFunc. Errors name the
// parameter.
func (p *params) set(name, value string) error {
	def, ok := paramTable[name]
	if !ok {
		return fmt.Errorf("unknown parameter %q; protoc-gen-corsgate knows %s", name, strings.Join(paramNames(), ", "))
	}
	if !def.repeatable && slices.Contains(p.given, name) {
		return fmt.Errorf("parameter %s given twice", name)
	}
	p.given = append(p.given, name)
	if err := def.set(p, value); err != nil {
		return fmt.Errorf("parameter %s: %w", name, err)
	}
	return nil
}

// check validates the parameters against each other, once all are set.
func (p *params) check() error {
	for _, name := range p.given {
		def := paramTable[name]
		if def.formats != nil && !slices.Contains(def.formats, p.format) {
			return fmt.Errorf("parameter %s does not apply to format=%s (it applies to format=%s)",
				name, p.format, strings.Join(def.formats, ", format="))
		}
	}
	if p.format == formatEnvoy && len(p.allowOrigins) == 0 {
		return errors.New("format=envoy needs at least one allow_origin parameter: Envoy has no flags to add origins later")
	}
	return p.checkRouting()
}

func paramNames() []string {
	names := make([]string, 0, len(paramTable))
	for name := range paramTable {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func parseBool(v string, dst *bool) error {
	switch v {
	case "", "true":
		*dst = true
	case "false":
		*dst = false
	default:
		return fmt.Errorf("want true or false, not %q", v)
	}
	return nil
}

func parseMaxAge(v string) (time.Duration, error) {
	var d time.Duration
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		d = time.Duration(n) * time.Second
	} else {
		d, err = time.ParseDuration(v)
		if err != nil {
			return 0, fmt.Errorf("want seconds (7200) or a duration (2h), not %q", v)
		}
	}
	switch {
	case d < 0:
		return 0, fmt.Errorf("%q is negative", v)
	case d%time.Second != 0:
		return 0, fmt.Errorf("%q is not a whole number of seconds", v)
	case d > maxMaxAge:
		return 0, fmt.Errorf("%q is more than 86400s; browsers ignore the excess", v)
	}
	return d, nil
}

// checkHeaderName accepts an HTTP field name (RFC 9110 token).
func checkHeaderName(v string) error {
	if v == "" {
		return errors.New("empty header name")
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return fmt.Errorf("%q is not a header name", v)
	}
	return nil
}

// splitHostPort splits host:port and checks the port.
func splitHostPort(v string) (string, uint32, error) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", 0, fmt.Errorf("want host:port, not %q", v)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("bad port in %q", v)
	}
	return host, uint32(n), nil
}
