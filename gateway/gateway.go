// Package gateway is corsgate's standalone gateway: an [http.Handler] that
// puts a browser-ready front on any gRPC server.
//
// It accepts gRPC-Web (binary application/grpc-web[+proto|+json] and text
// application/grpc-web-text, base64), Connect (unary POST, unary GET for
// methods marked NO_SIDE_EFFECTS, and every streaming kind; bidi needs
// HTTP/2) and gRPC itself, and speaks gRPC to its backends over h2c or TLS
// through long-lived HTTP/2 connection pools: one backend ([Config.Backend])
// or several named ones, to which [Route]s send services, each route with
// a CORS policy of its own ([Config.Backends], [Config.Routes]). Messages are moved
// frame by frame without decoding them; only the JSON codec is transcoded to
// and from the binary form the backend expects, using the descriptors.
//
// Only procedures present in the backends' descriptors are routed; they
// come from a file (see [LoadDescriptorFile]) or from each backend's server
// reflection, refreshed in the background. CORS is decided by an
// [interceptor.Policy] per route from the same descriptors (or from explicit
// [interceptor.Service] rules). The routing table (path → route, backend,
// the route's CORS handler) is rebuilt and swapped atomically whenever a
// backend's descriptors change; CORS headers the backends set are removed.
//
// The gateway also answers /healthz and grpc.health.v1.Health itself.
//
// # Serving
//
// Serve it with an [http.Server] that enables HTTP/1.1 and unencrypted
// HTTP/2 (or TLS), sets ReadHeaderTimeout and MaxHeaderBytes, and has no
// WriteTimeout: a write timeout cuts long streams. gRPC clients may be
// given a listener of their own, served by [Gateway.GRPCServer] on grpc-go's
// server transport, which costs less per call than net/http's.
package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/corsgate/corsgate/interceptor"
)

// DefaultMaxMessageSize is the default of [Config.MaxMessageSize]: 4 MiB, as
// gRPC's default receive limit.
const DefaultMaxMessageSize = 4 << 20

// maxBufferedResponse bounds a response message that the gateway must hold
// whole (Connect unary, JSON transcoding) when MaxMessageSize is smaller:
// responses come from the trusted backend, and MaxMessageSize is about what
// clients send.
const maxBufferedResponse = 64 << 20

// DefaultReflectionInterval is the default of [Config.ReflectionInterval].
const DefaultReflectionInterval = time.Minute

// DefaultStallTimeout is the default of [Config.StallTimeout].
const DefaultStallTimeout = 30 * time.Second

// Config configures a [Gateway]: one backend (Backend, BackendTLS, Files)
// or several (Backends, Routes).
type Config struct {
	// Backend is the gRPC server of the single-backend form: "host:port"
	// or "http://host:port" for plaintext HTTP/2 (h2c), "https://host:port"
	// for TLS. It serves every service in its descriptors, under Policy,
	// and is named [DefaultBackendName]. Required unless Backends is set.
	Backend string
	// BackendTLS, when not nil, makes the gateway speak TLS to the backend
	// whatever the scheme of Backend. With an "https://" Backend and a nil
	// BackendTLS, the system roots verify the backend.
	BackendTLS *tls.Config
	// Files are the descriptors of the backend's services. When nil, the
	// gateway asks the backend's server reflection (grpc.reflection.v1,
	// falling back to v1alpha): it retries while the backend starts, asks
	// again every ReflectionInterval, and keeps the last good set when a
	// refresh fails.
	Files *protoregistry.Files
	// Backends are the named backends of a routed gateway, in place of
	// Backend, BackendTLS and Files (which must then be unset). Each
	// backend's descriptors (its Files, or its reflection, as above) say
	// what it serves; Routes choose the backend of services and their CORS
	// policy. A service that no route claims is served from the one backend
	// that has it, under that backend's policy; one that two backends have
	// needs a route. Server reflection and health are not routed to any
	// backend unless a route claims them.
	Backends []Backend
	// Routes send services to backends; see [Route]. Unused without
	// Backends.
	Routes []Route
	// ReflectionInterval is how often reflection is asked again. The default
	// (zero) is one minute; a negative value never refreshes after the first
	// success. It is unused when Files is set.
	ReflectionInterval time.Duration
	// Policy decides CORS: the default of every route and backend. Nil
	// means no CORS headers at all, so browsers on other origins are
	// refused.
	Policy *interceptor.Policy
	// Services, when not nil, replace the CORS rules derived from the
	// descriptors (the `services:` list of the YAML config). Routing still
	// follows the descriptors.
	Services []interceptor.Service
	// MaxMessageSize bounds every message a client sends, in bytes as sent
	// on the wire; a larger one fails the call with RESOURCE_EXHAUSTED, as
	// gRPC servers do. Response messages pass through unbounded, except
	// where the gateway must hold one whole (Connect unary responses, JSON
	// transcoding): there the bound is the larger of MaxMessageSize and
	// 64 MiB. The default (zero) is [DefaultMaxMessageSize]; negative is
	// refused.
	MaxMessageSize int
	// StallTimeout bounds how long one write to a client may block: a
	// client that stops reading for that long (up to an eighth more) has
	// its call aborted, and the backend stream, with what it buffered, is
	// released. It is a progress deadline, not a write timeout: a stream
	// whose client keeps reading runs for as long as it lasts. The default
	// (zero) is [DefaultStallTimeout]; a negative value disables it.
	StallTimeout time.Duration
	// MaxRequestBuffer bounds the bytes of request messages the gateway
	// holds at once, over all calls (a unary call's body, a JSON or gzip
	// message checked whole). Buffers grow as bytes arrive, never from a
	// size the client declares; a call whose buffer would take the total
	// past the bound fails with RESOURCE_EXHAUSTED. It must be at least
	// MaxMessageSize plus 5 bytes. The default (zero) is
	// [DefaultMaxRequestBuffer]; negative is refused.
	MaxRequestBuffer int64
	// BodyTimeout bounds how long a client may send nothing while a
	// message is partly received: anywhere in the body of a call whose
	// client sends one message, and inside a message of a client stream
	// (between messages a stream may wait as long as it likes). A client
	// that takes longer has its body cut and the call answered
	// DEADLINE_EXCEEDED. The default (zero) is [DefaultBodyTimeout]; a
	// negative value disables it.
	BodyTimeout time.Duration
	// Logger receives the gateway's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics, when not nil, counts calls, latencies and backend errors.
	Metrics *Metrics
	// Resolver resolves the "dns:///host:port" addresses of backends to
	// their replicas. Nil means net.DefaultResolver; tests inject their own.
	Resolver Resolver
	// AccessLog, when not nil, gets one line per request, message
	// "access" at info level, written when the answer ended (for a
	// WebSocket stream, when the stream ended), with these attributes,
	// absent ones omitted:
	//
	//	procedure    the request path, cut at 256 bytes
	//	protocol     grpc_web, grpc_web_text, connect, grpc, grpc_websocket;
	//	             preflight; http for anything else
	//	route        "routes[0]", or "backends.NAME" for a service no route claims
	//	backend      the backend's name
	//	replica      the address that took the call: the backend's one address,
	//	             or the replica the balancer picked; absent when no backend
	//	             was asked
	//	code         the gRPC code in snake case ("ok", "permission_denied");
	//	             absent for preflights and plain HTTP answers
	//	http_status  the HTTP status (101 for a WebSocket stream)
	//	duration_ms  from the request's arrival to the end of its answer
	//	bytes_in     request body bytes read, as sent (WebSocket: the frames)
	//	bytes_out    response body bytes written (WebSocket: the messages)
	//	origin       the Origin header, cut at 256 bytes
	//	cors         allowed, refused, same-origin, none (no Origin) or unknown
	//	cors_reason  when refused: origin, procedure, barred, method or header
	//	trace_id     the call's span's trace id when [Config.Tracing] made
	//	             one, else that of a valid W3C traceparent header
	//
	// No other header value is ever logged: not Authorization, not
	// cookies. Nil: no access log, at the cost of a nil check per call and
	// no allocation.
	AccessLog *slog.Logger
	// WebSockets, when not nil, also serves improbable-eng/grpc-web's
	// WebSocket transport (every stream type, client and bidi streams
	// included) behind the Policy's Origin check; see [WebSocketConfig].
	// Nil: upgrades are not served.
	WebSockets *WebSocketConfig
	// Tracing, when not nil, makes an OpenTelemetry server span of every
	// routed call and continues the client's trace into the backend; see
	// [Tracing]. Nil: no spans, at no cost per call.
	Tracing *Tracing
	// Clients, when not nil, is where the backends' clients come from and
	// go back to: gateways built with the same Clients share the client
	// (and the connections) of every backend configured alike. See
	// [Clients]. Nil: the gateway dials its own.
	Clients *Clients
}

// Resolver looks up the IPv4 and IPv6 addresses of a host;
// *net.Resolver is one.
type Resolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Gateway serves gRPC-Web, Connect and gRPC clients from gRPC backends. It
// is safe for concurrent use. Create it with [New]; stop it with
// [Gateway.Close].
type Gateway struct {
	log      *slog.Logger
	alog     *slog.Logger // nil: no access log
	metrics  *Metrics
	resolver Resolver // nil: net.DefaultResolver
	policy   *interceptor.Policy
	services []interceptor.Service
	maxMsg   int
	maxResp  int // bound of a response message the gateway must hold whole
	interval time.Duration
	stall    time.Duration // 0: no progress deadline
	backends []*backend
	byName   map[string]*backend
	rules    []*rule // the routes, in order

	// bodyTimeout is the request body's progress deadline, 0: none.
	bodyTimeout time.Duration
	budget      budget      // request bytes buffered, over all calls
	ws          *webSockets // nil: WebSockets off
	tracer      *tracer     // nil: no spans
	clients     *Clients    // nil: the backends' clients are the gateway's own
	closeOnce   sync.Once

	mu         sync.Mutex // serializes installs
	generation int        // installs so far, under mu
	state      atomic.Pointer[state]
	ready      chan struct{} // closed once every backend's descriptors are loaded
	readyOnce  sync.Once
	health     http.Handler
	healthPfx  string

	ctx     context.Context
	cancel  context.CancelFunc
	running sync.WaitGroup // the refreshers
}

// state is the routing table: everything that changes with the
// descriptors, swapped as a whole.
type state struct {
	loaded   bool // every backend has descriptors
	pending  map[*backend]bool
	routes   map[string]*route   // by path
	services map[string]*backend // routed service → its backend
	table    *interceptor.Table  // the CORS rules of every route
	fallback http.Handler        // CORS policy around the RPC handler, for unknown paths
}

// route is one routable procedure, precomputed.
type route struct {
	path          string // "/pkg.Service/Method"
	url           *url.URL
	streamType    connect.StreamType
	noSideEffects bool
	input, output protoreflect.MessageDescriptor
	metrics       *routeMetrics
	backend       *backend
	rule          *rule
	types         *dynamicpb.Types          // for JSON, from the backend's descriptors
	table         *interceptor.Table        // the CORS rules of rule's services
	handler       http.Handler              // rule's CORS policy around the RPC handler
	upgrade       *interceptor.UpgradeGuard // rule's policy for WebSocket upgrades; nil: WebSockets off
	trace         *routeTrace               // nil: tracing off
}

// ConfigError is the error [New] returns for a bad [Config] field.
type ConfigError struct {
	// Field is the name of the Config field at fault, such as "Backend",
	// "Backends[1].Addresses" or "Routes[0].Services[2]".
	Field string
	// Err says what is wrong with it.
	Err error
}

func (e *ConfigError) Error() string { return "gateway: Config." + e.Field + ": " + e.Err.Error() }

// Unwrap returns the error inside.
func (e *ConfigError) Unwrap() error { return e.Err }

// New validates cfg and returns a gateway. It never blocks on the network:
// in reflection mode the descriptors load in the background (see
// [Gateway.Ready]); until then calls fail with UNAVAILABLE.
func New(cfg Config) (*Gateway, error) {
	if cfg.MaxMessageSize < 0 {
		return nil, &ConfigError{Field: "MaxMessageSize", Err: fmt.Errorf("%d is negative; use 0 for the default of %d", cfg.MaxMessageSize, DefaultMaxMessageSize)}
	}
	maxMsg := cfg.MaxMessageSize
	if maxMsg == 0 {
		maxMsg = DefaultMaxMessageSize
	}
	switch {
	case cfg.MaxRequestBuffer < 0:
		return nil, &ConfigError{Field: "MaxRequestBuffer", Err: fmt.Errorf("%d is negative; use 0 for the default of %d", cfg.MaxRequestBuffer, DefaultMaxRequestBuffer)}
	case cfg.MaxRequestBuffer > 0 && cfg.MaxRequestBuffer < int64(maxMsg)+headerLen:
		return nil, &ConfigError{Field: "MaxRequestBuffer", Err: fmt.Errorf("%d is less than the largest message (MaxMessageSize %d, plus 5 bytes of framing): no such message could ever be buffered; raise it", cfg.MaxRequestBuffer, maxMsg)}
	}
	g := &Gateway{
		log:      cfg.Logger,
		alog:     cfg.AccessLog,
		metrics:  cfg.Metrics,
		resolver: cfg.Resolver,
		policy:   cfg.Policy,
		services: cfg.Services,
		maxMsg:   cfg.MaxMessageSize,
		interval: cfg.ReflectionInterval,
		byName:   map[string]*backend{},
		ready:    make(chan struct{}),
		tracer:   newTracer(cfg.Tracing),
		clients:  cfg.Clients,
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.maxMsg == 0 {
		g.maxMsg = DefaultMaxMessageSize
	}
	g.maxResp = max(g.maxMsg, maxBufferedResponse)
	g.budget.limit = cfg.MaxRequestBuffer
	if g.budget.limit == 0 {
		g.budget.limit = max(DefaultMaxRequestBuffer, int64(g.maxMsg)+headerLen)
	}
	switch {
	case cfg.BodyTimeout == 0:
		g.bodyTimeout = DefaultBodyTimeout
	case cfg.BodyTimeout > 0:
		g.bodyTimeout = cfg.BodyTimeout
	}
	if g.interval == 0 {
		g.interval = DefaultReflectionInterval
	}
	switch {
	case cfg.StallTimeout == 0:
		g.stall = DefaultStallTimeout
	case cfg.StallTimeout > 0:
		g.stall = cfg.StallTimeout
	}
	if g.services != nil {
		if _, err := interceptor.NewTable(g.services...); err != nil {
			return nil, &ConfigError{Field: "Services", Err: fmt.Errorf("gateway: CORS table: %w", err)}
		}
	}
	if err := g.newBackends(cfg); err != nil {
		g.closeClients()
		return nil, err
	}
	if err := g.newRules(cfg.Routes); err != nil {
		g.closeClients()
		return nil, err
	}
	g.healthPfx, g.health = g.newHealthHandler()
	if err := g.initWebSockets(cfg.WebSockets, cfg.Policy); err != nil {
		g.closeClients()
		return nil, err
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	st, rerr, err := g.build(nil, nil)
	if err != nil || rerr != nil {
		g.cancel()
		g.closeClients()
		if rerr != nil {
			return nil, &ConfigError{Field: "Routes", Err: rerr}
		}
		return nil, &ConfigError{Field: "Files", Err: err}
	}
	g.state.Store(st)
	if st.loaded {
		g.markReady()
	}
	for _, b := range g.backends {
		if b.reflect {
			g.running.Add(1)
			go b.refresher(g.running.Done)
		}
	}
	return g, nil
}

// newBackends builds the backends of either form, with the descriptors of
// those that have files.
func (g *Gateway) newBackends(cfg Config) error {
	backends := cfg.Backends
	if len(backends) == 0 {
		if len(cfg.Routes) > 0 {
			return &ConfigError{Field: "Routes", Err: errors.New("routes need Backends")}
		}
		backends = []Backend{{Name: DefaultBackendName, Addresses: []string{cfg.Backend}, TLS: cfg.BackendTLS, Files: cfg.Files}}
	} else if cfg.Backend != "" || cfg.BackendTLS != nil || cfg.Files != nil {
		return &ConfigError{Field: "Backend", Err: errors.New("set with Backends; give one backend or the named backends, not both")}
	}
	for i, bc := range backends {
		field := fmt.Sprintf("Backends[%d]", i)
		if len(cfg.Backends) == 0 {
			field = "Backend"
		}
		if !validBackendName(bc.Name) {
			return &ConfigError{Field: field + ".Name", Err: fmt.Errorf("%q: give 1 to 64 letters, digits, '.', '_' or '-'", bc.Name)}
		}
		if g.byName[bc.Name] != nil {
			return &ConfigError{Field: field + ".Name", Err: fmt.Errorf("%q names two backends", bc.Name)}
		}
		b, err := g.newBackend(bc, field)
		if err != nil {
			return err
		}
		b.implicit = &rule{name: "backends." + b.name, backend: b, policy: b.policy}
		g.backends = append(g.backends, b)
		g.byName[b.name] = b
		g.metrics.addBackend(b.name)
		if bc.Files != nil {
			b.files.Store(bc.Files)
			b.digest = digestFiles(bc.Files)
		}
	}
	return nil
}

func (g *Gateway) closeClients() {
	for _, b := range g.backends {
		if g.clients != nil {
			g.clients.release(b.client)
			continue
		}
		_ = b.client.Close()
	}
}

// ServeHTTP serves one request: a CORS preflight, an RPC in any of the
// accepted protocols, /healthz or grpc.health.v1.Health.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		// RFC 9112 section 6.3: a request with both Transfer-Encoding and
		// Content-Length must be answered and its connection closed, since
		// an intermediary may have framed it by the other header
		// (request smuggling). net/http frames it by Transfer-Encoding, but
		// drops Content-Length from the request and keeps the connection,
		// so the handler cannot tell the two cases apart: every HTTP/1.x
		// request with a Transfer-Encoding closes its connection.
		// Browsers never send one.
		w.Header()["Connection"] = connectionClose
	}
	if g.alog != nil {
		g.serveLogged(w, r)
		return
	}
	g.serve(w, r, nil)
}

// serve dispatches a request; st is the routing table to use, nil for the
// one in force.
func (g *Gateway) serve(w http.ResponseWriter, r *http.Request, st *state) {
	if g.ws != nil && isWebSocketUpgrade(r) {
		g.serveWebSocket(w, r) // before health: upgrades go to browser procedures only
		return
	}
	if path := r.URL.Path; path == "/healthz" {
		g.serveHealthz(w, r)
		return
	} else if strings.HasPrefix(path, g.healthPfx) {
		g.health.ServeHTTP(w, r)
		return
	}
	if st == nil {
		st = g.state.Load()
	}
	if rt := st.routes[r.URL.Path]; rt != nil {
		rt.handler.ServeHTTP(w, r)
		return
	}
	st.fallback.ServeHTTP(w, r)
}

var connectionClose = []string{"close"}

// Ready waits until the gateway has descriptors of every backend to route
// by, or ctx is done. With descriptors from files it returns nil at once.
func (g *Gateway) Ready(ctx context.Context) error {
	select {
	case <-g.ready: // first: with a done ctx, select would pick either
		return nil
	default:
	}
	select {
	case <-g.ready:
		return nil
	case <-ctx.Done():
		var names []string
		st := g.state.Load()
		for _, b := range g.backends {
			if st.pending[b] {
				names = append(names, b.authority)
			}
		}
		return fmt.Errorf("gateway: no descriptors from %s yet: %w", strings.Join(names, ", "), ctx.Err())
	}
}

// Refresh asks every backend's reflection now and installs the result. It
// is a no-op for backends whose descriptors come from files. A failure
// leaves the current descriptors in place.
func (g *Gateway) Refresh(ctx context.Context) error {
	var errs []error
	for _, b := range g.backends {
		if !b.reflect {
			continue
		}
		files, err := b.reflectFiles(ctx)
		if err == nil {
			err = g.install(b, files)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Table returns the CORS rules in force: derived from the current
// descriptors of every route, or built from [Config.Services].
func (g *Gateway) Table() *interceptor.Table {
	return g.state.Load().table
}

// Files returns the descriptors in force of the first backend (the only one
// in the single-backend form), nil before they load.
func (g *Gateway) Files() *protoregistry.Files {
	return g.backends[0].files.Load()
}

// Resolution is where a procedure goes: see [Gateway.Resolve].
type Resolution struct {
	// Route is the name of the route that claims the procedure's service,
	// or "" for a service no route claims (served from the one backend that
	// has it).
	Route string
	// Backend is the backend's name.
	Backend string
	// Policy is the route's CORS policy, nil for none.
	Policy *interceptor.Policy
	// Table holds the CORS rules of the route's services.
	Table *interceptor.Table
}

// Resolve tells where the routing table in force sends a procedure
// ("/pkg.Service/Method"), and under which CORS policy; false when it is not
// routed.
func (g *Gateway) Resolve(procedure string) (Resolution, bool) {
	rt := g.state.Load().routes[procedure]
	if rt == nil {
		return Resolution{}, false
	}
	res := Resolution{Backend: rt.backend.name, Policy: rt.rule.policy, Table: rt.table}
	if rt.rule.patterns != nil {
		res.Route = rt.rule.name
	}
	return res, true
}

// Close stops the background reflection and closes idle backend
// connections. Calls in flight are not interrupted; stop the http.Server
// first. WebSocket streams, which http.Server.Shutdown does not wait for
// (their connections are hijacked), are canceled: each ends with CANCELED
// in its trailer frame. With [Config.Clients], the gateway's hold on its
// backends' clients ends: those no other gateway holds are closed. Calls
// after the first are no-ops.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() {
		g.cancel()
		g.running.Wait()
		for _, b := range g.backends {
			if g.clients != nil {
				g.clients.release(b.client)
				continue
			}
			b.client.CloseIdleConnections()
		}
	})
	return nil
}

func (g *Gateway) markReady() {
	g.readyOnce.Do(func() { close(g.ready) })
}

// install makes files the descriptors of b and swaps in the routing table
// that follows, unless they did not change. A table the descriptors do not
// allow is refused (a *RoutingError), and reported once per change.
func (g *Gateway) install(b *backend, files *protoregistry.Files) error {
	digest := digestFiles(files)
	g.mu.Lock()
	defer g.mu.Unlock()
	if rerr := b.routingErr.Load(); rerr != nil {
		if rerr.digest == digest && rerr.generation == g.generation {
			return rerr
		}
	} else if b.loaded() && b.digest == digest {
		return nil
	}
	st, rerr, err := g.build(b, files)
	if err != nil {
		return err
	}
	if rerr != nil {
		rerr.digest, rerr.generation = digest, g.generation
		prev := b.routingErr.Swap(rerr)
		if prev != nil && prev.digest == digest && prev.Error() == rerr.Error() {
			return rerr // the same refusal, reported already
		}
		g.metrics.routingError(b.name)
		g.log.Error("gateway: routing table refused; the last good one keeps serving",
			"backend", b.name, "key", rerr.Key, "error", rerr.Err)
		return rerr
	}
	b.files.Store(files)
	b.digest = digest
	b.routingErr.Store(nil)
	g.generation++
	g.state.Store(st)
	if st.loaded {
		g.markReady()
	}
	g.log.Info("gateway: descriptors installed", "backend", b.name, "address", b.authority, "procedures", len(st.routes))
	for _, other := range g.backends {
		if other != b && other.routingErr.Load() != nil {
			other.kickRefresh() // its descriptors may fit now
		}
	}
	return nil
}

// isOperatorService reports services that the gateway routes for non-browser
// tools but never opens to browsers: server reflection and health.
func isOperatorService(name protoreflect.FullName) bool {
	switch name {
	case "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "grpc.health.v1.Health":
		return true
	}
	return false
}

func (g *Gateway) addRoutes(st *state, sd protoreflect.ServiceDescriptor, r *rule, types *dynamicpb.Types) {
	b := r.backend
	mds := sd.Methods()
	for i := range mds.Len() {
		md := mds.Get(i)
		path := "/" + string(sd.FullName()) + "/" + string(md.Name())
		rt := &route{
			path:    path,
			url:     &url.URL{Scheme: b.scheme, Host: b.authority, Path: path},
			input:   md.Input(),
			output:  md.Output(),
			backend: b,
			rule:    r,
			types:   types,
		}
		switch {
		case md.IsStreamingClient() && md.IsStreamingServer():
			rt.streamType = connect.StreamTypeBidi
		case md.IsStreamingClient():
			rt.streamType = connect.StreamTypeClient
		case md.IsStreamingServer():
			rt.streamType = connect.StreamTypeServer
		default:
			rt.streamType = connect.StreamTypeUnary
		}
		if opts, ok := md.Options().(*descriptorpb.MethodOptions); ok {
			rt.noSideEffects = opts.GetIdempotencyLevel() == descriptorpb.MethodOptions_NO_SIDE_EFFECTS
		}
		rt.metrics = g.metrics.forRoute(path, b.name)
		if g.tracer != nil {
			rt.trace = newRouteTrace(path, r)
		}
		st.routes[path] = rt
	}
}

// digestFiles fingerprints a descriptor set so that an unchanged refresh
// keeps the state (and its caches) in place.
func digestFiles(files *protoregistry.Files) [sha256.Size]byte {
	var names []string
	files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		names = append(names, fd.Path())
		return true
	})
	slices.Sort(names)
	h := sha256.New()
	opts := proto.MarshalOptions{Deterministic: true}
	for _, name := range names {
		fd, err := files.FindFileByPath(name)
		if err != nil {
			continue
		}
		b, err := opts.Marshal(protodesc.ToFileDescriptorProto(fd))
		if err != nil {
			continue
		}
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
