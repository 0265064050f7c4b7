// Package gateway is corsgate's standalone gateway: an [http.Handler] that
// puts a browser-ready front on any gRPC server.
//
// It accepts gRPC-Web (binary application/grpc-web[+proto|+json] and text
// application/grpc-web-text, base64), Connect (unary POST, unary GET for
// methods marked NO_SIDE_EFFECTS, and every streaming kind; bidi needs
// HTTP/2) and gRPC itself, and speaks gRPC to one backend over h2c or TLS
// through a single long-lived HTTP/2 connection pool. Messages are moved
// frame by frame without decoding them; only the JSON codec is transcoded to
// and from the binary form the backend expects, using the descriptors.
//
// Only procedures present in the backend's descriptors are routed; they come
// from a file (see [LoadDescriptorFile]) or from the backend's server
// reflection, refreshed in the background. CORS is decided by an
// [interceptor.Policy] from the same descriptors (or from explicit
// [interceptor.Service] rules), rebuilt and swapped atomically whenever the
// descriptors change; CORS headers the backend sets are removed.
//
// The gateway also answers /healthz and grpc.health.v1.Health itself.
//
// # Serving
//
// Serve it with an [http.Server] that enables HTTP/1.1 and unencrypted
// HTTP/2 (or TLS), sets ReadHeaderTimeout and MaxHeaderBytes, and has no
// WriteTimeout: a write timeout cuts long streams.
package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
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
	"github.com/corsgate/corsgate/internal/h2client"
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

// Config configures a [Gateway]. Only Backend is required.
type Config struct {
	// Backend is the gRPC server: "host:port" or "http://host:port" for
	// plaintext HTTP/2 (h2c), "https://host:port" for TLS.
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
	// ReflectionInterval is how often reflection is asked again. The default
	// (zero) is one minute; a negative value never refreshes after the first
	// success. It is unused when Files is set.
	ReflectionInterval time.Duration
	// Policy decides CORS. Nil means no CORS headers at all, so browsers on
	// other origins are refused.
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
	// Logger receives the gateway's logs. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics, when not nil, counts calls, latencies and backend errors.
	Metrics *Metrics
	// WebSockets, when not nil, also serves improbable-eng/grpc-web's
	// WebSocket transport (every stream type, client and bidi streams
	// included) behind the Policy's Origin check; see [WebSocketConfig].
	// Nil: upgrades are not served.
	WebSockets *WebSocketConfig
}

// Gateway serves gRPC-Web, Connect and gRPC clients from a gRPC backend. It is
// safe for concurrent use. Create it with [New]; stop it with [Gateway.Close].
type Gateway struct {
	log       *slog.Logger
	metrics   *Metrics
	policy    *interceptor.Policy
	services  []interceptor.Service
	maxMsg    int
	maxResp   int // bound of a response message the gateway must hold whole
	interval  time.Duration
	stall     time.Duration // 0: no progress deadline
	reflect   bool
	scheme    string
	authority string
	baseURL   string
	backend   *h2client.Transport // the calls' transport
	transport *http.Transport     // net/http's, for reflection and health, dialing through backend
	client    *http.Client        // over transport

	state     atomic.Pointer[state]
	ready     chan struct{} // closed once descriptors are loaded
	readyOnce sync.Once
	kick      chan struct{} // asks the refresher to reflect now
	lastKick  atomic.Int64  // unix nanoseconds of the last kick from a request
	health    http.Handler
	healthPfx string
	ws        *webSockets // nil: WebSockets off

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// state is everything that changes with the descriptors, swapped as a whole.
type state struct {
	loaded  bool
	files   *protoregistry.Files
	types   *dynamicpb.Types
	routes  map[string]*route
	table   *interceptor.Table
	handler http.Handler // CORS policy around the RPC handler
	digest  [sha256.Size]byte
}

// route is one routable procedure, precomputed.
type route struct {
	path          string // "/pkg.Service/Method"
	url           *url.URL
	streamType    connect.StreamType
	noSideEffects bool
	input, output protoreflect.MessageDescriptor
	metrics       *routeMetrics
}

// ConfigError is the error [New] returns for a bad [Config] field.
type ConfigError struct {
	// Field is the name of the Config field at fault, such as "Backend".
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
	scheme, authority, useTLS, err := parseBackend(cfg.Backend)
	if err != nil {
		return nil, &ConfigError{Field: "Backend", Err: err}
	}
	if cfg.BackendTLS != nil {
		useTLS = true
	}
	if useTLS {
		scheme = "https"
	}
	g := &Gateway{
		log:       cfg.Logger,
		metrics:   cfg.Metrics,
		policy:    cfg.Policy,
		services:  cfg.Services,
		maxMsg:    cfg.MaxMessageSize,
		interval:  cfg.ReflectionInterval,
		reflect:   cfg.Files == nil,
		scheme:    scheme,
		authority: authority,
		baseURL:   scheme + "://" + authority,
		ready:     make(chan struct{}),
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.maxMsg == 0 {
		g.maxMsg = DefaultMaxMessageSize
	}
	g.maxResp = max(g.maxMsg, maxBufferedResponse)
	if g.interval == 0 {
		g.interval = DefaultReflectionInterval
	}
	switch {
	case cfg.StallTimeout == 0:
		g.stall = DefaultStallTimeout
	case cfg.StallTimeout > 0:
		g.stall = cfg.StallTimeout
	}
	h2cfg := h2client.Config{Authority: authority, TLS: cfg.BackendTLS}
	if useTLS && h2cfg.TLS == nil {
		h2cfg.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if g.backend, err = h2client.New(h2cfg); err != nil {
		return nil, &ConfigError{Field: "Backend", Err: err}
	}
	g.transport = newTransport(useTLS, g.backend)
	g.client = &http.Client{Transport: g.transport}
	g.healthPfx, g.health = g.newHealthHandler()
	if err := g.initWebSockets(cfg.WebSockets, cfg.Policy); err != nil {
		return nil, err
	}

	empty, err := g.newState(nil)
	if err != nil {
		return nil, &ConfigError{Field: "Services", Err: err}
	}
	g.state.Store(empty)
	g.ctx, g.cancel = context.WithCancel(context.Background())
	if !g.reflect {
		st, err := g.newState(cfg.Files)
		if err != nil {
			return nil, &ConfigError{Field: "Files", Err: err}
		}
		g.state.Store(st)
		g.markReady()
		close(g.done)
		return g, nil
	}
	go g.refresher()
	return g, nil
}

func parseBackend(backend string) (scheme, authority string, useTLS bool, err error) {
	if backend == "" {
		return "", "", false, errors.New(`empty; give "host:port", "http://host:port" or "https://host:port"`)
	}
	scheme = "http"
	authority = backend
	if strings.Contains(backend, "://") {
		u, err := url.Parse(backend)
		if err != nil {
			return "", "", false, fmt.Errorf("%q: %w", backend, err)
		}
		switch u.Scheme {
		case "http", "h2c":
		case "https":
			useTLS = true
		default:
			return "", "", false, fmt.Errorf("%q has scheme %q; use http:// (h2c) or https://", backend, u.Scheme)
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
			return "", "", false, fmt.Errorf("%q has a path or query; give only scheme://host:port", backend)
		}
		authority = u.Host
	}
	if _, port, err := net.SplitHostPort(authority); err != nil || port == "" {
		return "", "", false, fmt.Errorf("%q has no port; give host:port", backend)
	}
	return scheme, authority, useTLS, nil
}

// newTransport is net/http's client to the backend, used by reflection and
// the health check (calls go through backend): HTTP/2 only, over h2c or
// TLS, idle connections pinged so that a dead backend is noticed. It dials
// through backend, so TCP, TLS and ALPN are the calls' own, and its windows
// are the calls' defaults: a stream's unread bytes pin at most
// h2client.DefaultStreamWindow, and the connection window is large.
func newTransport(useTLS bool, backend *h2client.Transport) *http.Transport {
	var protocols http.Protocols
	if useTLS {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	return &http.Transport{
		Protocols:           &protocols,
		ForceAttemptHTTP2:   true,
		DisableCompression:  true, // message compression is gRPC's, not HTTP's
		DialContext:         backend.Dial,
		DialTLSContext:      backend.Dial,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     5 * time.Minute,
		HTTP2: &http.HTTP2Config{
			MaxReceiveBufferPerConnection: h2client.DefaultConnWindow,
			MaxReceiveBufferPerStream:     h2client.DefaultStreamWindow,
			SendPingTimeout:               30 * time.Second,
			PingTimeout:                   15 * time.Second,
		},
	}
}

// ServeHTTP serves one request: a CORS preflight, an RPC in any of the
// accepted protocols, /healthz or grpc.health.v1.Health.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	g.state.Load().handler.ServeHTTP(w, r)
}

// Ready waits until the gateway has descriptors to route by, or ctx is done.
// With [Config.Files] it returns nil at once.
func (g *Gateway) Ready(ctx context.Context) error {
	select {
	case <-g.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("gateway: no descriptors from %s yet: %w", g.authority, ctx.Err())
	}
}

// Refresh asks the backend's reflection now and installs the result. It is a
// no-op without reflection (when [Config.Files] was given). A failure leaves
// the current descriptors in place.
func (g *Gateway) Refresh(ctx context.Context) error {
	if !g.reflect {
		return nil
	}
	files, err := g.reflectFiles(ctx)
	if err != nil {
		return err
	}
	return g.install(files)
}

// Table returns the CORS table in force: derived from the current
// descriptors, or built from [Config.Services].
func (g *Gateway) Table() *interceptor.Table {
	return g.state.Load().table
}

// Files returns the descriptors in force, nil before the first load.
func (g *Gateway) Files() *protoregistry.Files {
	return g.state.Load().files
}

// Close stops the background reflection and closes idle backend
// connections. Calls in flight are not interrupted; stop the http.Server
// first. WebSocket streams, which http.Server.Shutdown does not wait for
// (their connections are hijacked), are canceled: each ends with CANCELED
// in its trailer frame.
func (g *Gateway) Close() error {
	g.cancel()
	<-g.done
	g.backend.CloseIdleConnections()
	g.transport.CloseIdleConnections()
	return nil
}

func (g *Gateway) markReady() {
	g.readyOnce.Do(func() { close(g.ready) })
}

// install builds a new state from files and swaps it in, unless the
// descriptors did not change.
func (g *Gateway) install(files *protoregistry.Files) error {
	st, err := g.newState(files)
	if err != nil {
		return err
	}
	if old := g.state.Load(); old.loaded && old.digest == st.digest {
		return nil
	}
	g.state.Store(st)
	g.markReady()
	g.log.Info("gateway: descriptors installed", "backend", g.authority, "procedures", len(st.routes))
	return nil
}

// newState precomputes routes, the CORS table and the handler for files (nil
// for the empty state before the first load).
func (g *Gateway) newState(files *protoregistry.Files) (*state, error) {
	st := &state{loaded: files != nil, files: files, routes: map[string]*route{}}
	var services []interceptor.Service
	if files != nil {
		st.types = dynamicpb.NewTypes(files)
		st.digest = digestFiles(files)
		var err error
		files.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
			sds := fd.Services()
			for i := range sds.Len() {
				sd := sds.Get(i)
				g.addRoutes(st, sd)
				if g.services != nil || isOperatorService(sd.FullName()) {
					continue
				}
				var svc interceptor.Service
				svc, err = interceptor.ServiceOf(sd)
				if err != nil {
					err = fmt.Errorf("gateway: CORS rules of %s: %w", sd.FullName(), err)
					return false
				}
				services = append(services, svc)
			}
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	if g.services != nil {
		services = g.services
	}
	table, err := interceptor.NewTable(services...)
	if err != nil {
		return nil, fmt.Errorf("gateway: CORS table: %w", err)
	}
	st.table = table
	var inner http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.serveRPC(st, w, r)
	})
	if g.policy != nil {
		rpc := inner
		inner = g.policy.Handler(table, rpc)
		if files == nil && g.reflect && g.services == nil {
			inner = &provisional{g: g, fallback: inner, rpc: rpc}
		}
	}
	st.handler = inner
	return st, nil
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

func (g *Gateway) addRoutes(st *state, sd protoreflect.ServiceDescriptor) {
	mds := sd.Methods()
	for i := range mds.Len() {
		md := mds.Get(i)
		path := "/" + string(sd.FullName()) + "/" + string(md.Name())
		rt := &route{
			path:   path,
			url:    &url.URL{Scheme: g.scheme, Host: g.authority, Path: path},
			input:  md.Input(),
			output: md.Output(),
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
		rt.metrics = g.metrics.forRoute(path)
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
