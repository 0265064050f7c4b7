package interceptor

import (
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Service is the browser-facing description of one protobuf service as plain
// data: what protoc-gen-corsgate generates and what the YAML config carries
// under "services:". [ServiceOf] derives it from descriptors.
type Service struct {
	// Name is the fully-qualified service name, "greet.v1.GreetService".
	Name string `json:"name"`
	// Procedures are the service's methods.
	Procedures []Procedure `json:"procedures"`
}

// Procedure describes one method.
type Procedure struct {
	// Name is the method name, "Greet".
	Name string `json:"name"`
	// Methods are the HTTP methods browsers may use: ["POST"], or
	// ["GET", "POST"] for unary methods without side effects. Empty means
	// ["POST"]. Only GET and POST are accepted (any case).
	Methods []string `json:"methods"`
	// RequestHeaders are the proto-declared request headers; the protocol
	// headers are added by the policy.
	RequestHeaders []string `json:"request-headers,omitempty"`
	// ResponseHeaders are the proto-declared response headers.
	ResponseHeaders []string `json:"response-headers,omitempty"`
	// ResponseTrailers are the proto-declared trailers. Each is exposed as
	// it is and as "Trailer-<name>".
	ResponseTrailers []string `json:"response-trailers,omitempty"`
	// BrowserBarred keeps the procedure away from browsers: its preflights
	// are always refused, and so are its cross-origin actual requests, with
	// PERMISSION_DENIED, strict mode or not.
	BrowserBarred bool `json:"browser-barred,omitempty"`
}

// methodSet is a set of the HTTP methods a procedure allows.
type methodSet uint8

const (
	methodPOST methodSet = 1 << iota
	methodGET
)

func (m methodSet) has(method string) bool {
	switch method {
	case "POST":
		return m&methodPOST != 0
	case "GET":
		return m&methodGET != 0
	}
	return false
}

// String gives the Access-Control-Allow-Methods value.
func (m methodSet) String() string {
	if m&methodGET != 0 {
		return "GET, POST"
	}
	return "POST"
}

// tableProc is one procedure as the table keeps it: validated, normalized.
type tableProc struct {
	path     string // "/greet.v1.GreetService/Greet"
	methods  methodSet
	request  []string // lowercase, deduplicated, proto-declared
	exposed  []string // canonical: declared headers, trailers, Trailer-<name>
	barred   bool
	declared Procedure // as given, normalized
}

// Table is an immutable set of services with their per-procedure rules,
// validated and precomputed. It is safe for concurrent use.
type Table struct {
	services []Service
	procs    map[string]*tableProc // by path
	order    []string              // paths in declaration order
}

// NewTable validates the services and builds a table. It fails on an empty or
// duplicate service or procedure name, an unknown HTTP method, or an invalid
// header name, quoting the value.
func NewTable(services ...Service) (*Table, error) {
	t := &Table{procs: make(map[string]*tableProc)}
	seen := make(map[string]bool)
	for _, s := range services {
		if !protoreflect.FullName(s.Name).IsValid() {
			return nil, fmt.Errorf("interceptor: service name %q is not a valid fully-qualified protobuf name such as %q", s.Name, "greet.v1.GreetService")
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("interceptor: service %q is listed twice; merge the entries", s.Name)
		}
		seen[s.Name] = true
		norm := Service{Name: s.Name, Procedures: make([]Procedure, 0, len(s.Procedures))}
		for _, p := range s.Procedures {
			tp, err := newTableProc(s.Name, p)
			if err != nil {
				return nil, err
			}
			if _, dup := t.procs[tp.path]; dup {
				return nil, fmt.Errorf("interceptor: procedure %q is listed twice in service %q; merge the entries", p.Name, s.Name)
			}
			t.procs[tp.path] = tp
			t.order = append(t.order, tp.path)
			norm.Procedures = append(norm.Procedures, tp.declared)
		}
		t.services = append(t.services, norm)
	}
	return t, nil
}

// MustNewTable is like [NewTable] but panics on invalid data. It is meant
// for generated code, whose data was validated when it was generated.
func MustNewTable(services ...Service) *Table {
	t, err := NewTable(services...)
	if err != nil {
		panic(err)
	}
	return t
}

// Services returns a copy of the table's services, normalized: methods
// uppercase, header names lowercase and deduplicated.
func (t *Table) Services() []Service {
	out := make([]Service, len(t.services))
	for i, s := range t.services {
		out[i] = Service{Name: s.Name, Procedures: make([]Procedure, len(s.Procedures))}
		for j, p := range s.Procedures {
			out[i].Procedures[j] = Procedure{
				Name:             p.Name,
				Methods:          slices.Clone(p.Methods),
				RequestHeaders:   slices.Clone(p.RequestHeaders),
				ResponseHeaders:  slices.Clone(p.ResponseHeaders),
				ResponseTrailers: slices.Clone(p.ResponseTrailers),
				BrowserBarred:    p.BrowserBarred,
			}
		}
	}
	return out
}

func newTableProc(service string, p Procedure) (*tableProc, error) {
	if !protoreflect.Name(p.Name).IsValid() {
		return nil, fmt.Errorf("interceptor: procedure name %q in service %q is not a valid protobuf method name", p.Name, service)
	}
	tp := &tableProc{path: "/" + service + "/" + p.Name, barred: p.BrowserBarred}
	for _, m := range p.Methods {
		switch strings.ToUpper(m) {
		case "POST":
			tp.methods |= methodPOST
		case "GET":
			tp.methods |= methodGET
		default:
			return nil, fmt.Errorf("interceptor: %s: HTTP method %q is not used by Connect, gRPC or gRPC-Web; use %q or %q", tp.path, m, "GET", "POST")
		}
	}
	if tp.methods == 0 {
		tp.methods = methodPOST
	}
	// GET alone makes no sense for an RPC: every protocol POSTs.
	tp.methods |= methodPOST
	lower := strings.ToLower
	for _, h := range p.RequestHeaders {
		if err := validateHeaderName(tp.path+" request header", h); err != nil {
			return nil, err
		}
		if h == "*" {
			return nil, fmt.Errorf("interceptor: %s request header %q: list the header names the procedure reads", tp.path, h)
		}
	}
	for _, h := range append(slices.Clone(p.ResponseHeaders), p.ResponseTrailers...) {
		if err := validateHeaderName(tp.path+" response header or trailer", h); err != nil {
			return nil, err
		}
		if h == "*" {
			return nil, fmt.Errorf("interceptor: %s response header %q: list the header names the procedure sets", tp.path, h)
		}
	}
	tp.request = appendUnique(nil, lower, p.RequestHeaders...)
	respHeaders := appendUnique(nil, lower, p.ResponseHeaders...)
	trailers := appendUnique(nil, lower, p.ResponseTrailers...)
	tp.exposed = appendUnique(nil, canonical, respHeaders...)
	for _, tr := range trailers {
		tp.exposed = appendUnique(tp.exposed, canonical, tr, "Trailer-"+tr)
	}
	methods := []string{"POST"}
	if tp.methods&methodGET != 0 {
		methods = []string{"GET", "POST"}
	}
	tp.declared = Procedure{
		Name:             p.Name,
		Methods:          methods,
		RequestHeaders:   tp.request,
		ResponseHeaders:  respHeaders,
		ResponseTrailers: trailers,
		BrowserBarred:    p.BrowserBarred,
	}
	return tp, nil
}
