package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/balancer"
	"github.com/corsgate/corsgate/internal/h2client"
)

// DefaultBackendName is the name of the one backend of the single-backend
// form ([Config.Backend]): its label in metrics, logs and /healthz.
const DefaultBackendName = "default"

// dnsScheme starts a backend address resolved by DNS: "dns:///host:port".
const dnsScheme = "dns:///"

// Backend is one named gRPC backend of a routed gateway ([Config.Backends]).
type Backend struct {
	// Name names the backend in [Route.Backend], metrics, logs and /healthz.
	// Required; letters, digits, '.', '_' and '-', at most 64 bytes.
	Name string
	// Addresses are the backend's replicas: "host:port", "http://host:port"
	// (h2c) or "https://host:port" (TLS), all of one scheme, or one
	// "dns:///host:port" target, re-resolved every 30 s and when a
	// connection fails. At least one is required. With more than one
	// replica, calls go to the ready replica with the fewest calls in
	// flight, failed replicas are ejected and probed again with backoff,
	// replicas whose grpc.health.v1 says NOT_SERVING get no new calls, and
	// a call that never reached a replica is retried once on another (see
	// internal/balancer).
	Addresses []string
	// TLS, when not nil, makes the gateway speak TLS to the backend, as
	// [Config.BackendTLS] does; its Certificates are the client certificate
	// for mutual TLS.
	TLS *tls.Config
	// Files are the backend's descriptors; nil asks its server reflection,
	// as [Config.Files] says.
	Files *protoregistry.Files
	// Policy decides CORS for the services of this backend that no route
	// claims. Nil means [Config.Policy].
	Policy *interceptor.Policy
	// ResolveInterval is how often a "dns:///host:port" address is
	// resolved again; the default (zero) is 30 s.
	ResolveInterval time.Duration
}

// backendClient is how the gateway reaches one backend: the calls through
// Call, and server reflection and health checks through RoundTrip. Its
// methods have the contract of [h2client.Transport]'s. A backend with one
// address is an *h2client.Transport; a balancer over replicas may be
// another implementation. It must be safe for concurrent use.
type backendClient interface {
	// Call sends req under ctx and returns once the response headers
	// arrived, or with whole once the response ended.
	Call(ctx context.Context, req *http.Request, whole bool) (*http.Response, error)
	// RoundTrip is Call under req's context, without whole.
	RoundTrip(*http.Request) (*http.Response, error)
	// CloseIdleConnections closes the connections that carry no call.
	CloseIdleConnections()
	// Close closes every connection; calls after it fail.
	Close() error
}

// replicaCaller is a backendClient over several replicas that can tell
// which one took a call, for the access log; a [balancer.Pool] is one.
type replicaCaller interface {
	// CallReplica is Call, and returns the address of the replica that
	// took the call, "" when none did.
	CallReplica(ctx context.Context, req *http.Request, whole bool) (*http.Response, string, error)
}

// h2Backend is a backendClient with one address: the gateway's HTTP/2
// client alone, the cheapest path.
type h2Backend struct{ *h2client.Transport }

func (b h2Backend) Close() error {
	b.Transport.Close()
	return nil
}

// newBackendClient is the client of one backend: its HTTP/2 client for a
// single "host:port", a [balancer.Pool] over the replicas for several
// addresses or a dns:/// target.
func (g *Gateway) newBackendClient(b Backend, authority string, tlsConf *tls.Config) (backendClient, error) {
	if len(b.Addresses) == 1 && !strings.HasPrefix(b.Addresses[0], dnsScheme) {
		t, err := h2client.New(h2client.Config{Authority: authority, TLS: tlsConf})
		if err != nil {
			return nil, err
		}
		return h2Backend{t}, nil
	}
	addrs := make([]string, len(b.Addresses))
	for i, addr := range b.Addresses {
		if strings.HasPrefix(addr, dnsScheme) {
			addrs[i] = addr
			continue
		}
		_, a, _, err := parseAddress(addr)
		if err != nil {
			return nil, err
		}
		addrs[i] = a
	}
	return balancer.New(balancer.Config{
		Name:            b.Name,
		Addresses:       addrs,
		TLS:             tlsConf,
		Resolver:        g.resolver,
		ResolveInterval: b.ResolveInterval,
		HealthCheck:     true,
		Logger:          g.log,
		Observe:         g.metrics.replicaObserver(),
	})
}

// backend is one backend at run time: its client, its descriptors and, in
// reflection mode, its refresher.
type backend struct {
	g         *Gateway
	name      string
	scheme    string
	authority string
	baseURL   string
	client    backendClient
	http      *http.Client // over client: reflection and health
	policy    *interceptor.Policy
	reflect   bool
	// implicit is the rule of the services no route claims.
	implicit *rule

	// files and digest are the descriptors in force, nil before the first
	// load; written under g.mu.
	files  atomic.Pointer[protoregistry.Files]
	digest [sha256.Size]byte
	// routingErr is the last refusal of a routing table with this backend's
	// new descriptors, nil when they are in force.
	routingErr atomic.Pointer[RoutingError]

	kick     chan struct{} // asks the refresher to reflect now
	lastKick atomic.Int64  // unix nanoseconds of the last kick from a request
}

// newBackend validates one backend's addresses and builds its client.
// field names the backend in errors ("Backend", "Backends[1]").
func (g *Gateway) newBackend(b Backend, field string) (*backend, error) {
	if len(b.Addresses) == 0 {
		return nil, &ConfigError{Field: field + ".Addresses", Err: errors.New("no address; give at least one host:port")}
	}
	var scheme, authority string
	var useTLS bool
	for i, addr := range b.Addresses {
		s, a, t, err := parseAddress(addr)
		if err != nil {
			if field == "Backend" {
				return nil, &ConfigError{Field: field, Err: err}
			}
			return nil, &ConfigError{Field: fmt.Sprintf("%s.Addresses[%d]", field, i), Err: err}
		}
		if i == 0 {
			scheme, authority, useTLS = s, a, t
		} else if s != scheme || strings.HasPrefix(addr, dnsScheme) || strings.HasPrefix(b.Addresses[0], dnsScheme) {
			return nil, &ConfigError{Field: fmt.Sprintf("%s.Addresses[%d]", field, i),
				Err: fmt.Errorf("%q: give one dns:/// target, or host:port addresses of one scheme", addr)}
		}
	}
	if b.TLS != nil {
		useTLS = true
	}
	if useTLS {
		scheme = "https"
	}
	tlsConf := b.TLS
	if useTLS && tlsConf == nil {
		tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	dial := func() (backendClient, error) { return g.newBackendClient(b, authority, tlsConf) }
	var client backendClient
	var err error
	if g.clients != nil {
		client, err = g.clients.acquire(b, b.TLS, dial)
	} else {
		client, err = dial()
	}
	if err != nil {
		return nil, &ConfigError{Field: field, Err: err}
	}
	be := &backend{
		g:         g,
		name:      b.Name,
		scheme:    scheme,
		authority: authority,
		baseURL:   scheme + "://" + authority,
		client:    client,
		policy:    b.Policy,
		reflect:   b.Files == nil,
		kick:      make(chan struct{}, 1),
	}
	if be.policy == nil {
		be.policy = g.policy
	}
	be.http = &http.Client{Transport: roundTripper{be.client}}
	return be, nil
}

// roundTripper hides every method of a backendClient but RoundTrip, so that
// net/http's client does not take it for more than an [http.RoundTripper].
type roundTripper struct{ c backendClient }

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return rt.c.RoundTrip(r) }

// parseAddress reads one backend address: "host:port", "http://host:port",
// "https://host:port" or "dns:///host:port".
func parseAddress(addr string) (scheme, authority string, useTLS bool, err error) {
	if rest, ok := strings.CutPrefix(addr, dnsScheme); ok {
		if _, port, err := net.SplitHostPort(rest); err != nil || port == "" {
			return "", "", false, fmt.Errorf("%q: give dns:///host:port", addr)
		}
		return "http", rest, false, nil
	}
	if addr == "" {
		return "", "", false, errors.New(`empty; give "host:port", "http://host:port" or "https://host:port"`)
	}
	scheme = "http"
	authority = addr
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return "", "", false, fmt.Errorf("%q: %w", addr, err)
		}
		switch u.Scheme {
		case "http", "h2c":
		case "https":
			useTLS = true
		default:
			return "", "", false, fmt.Errorf("%q has scheme %q; use http:// (h2c), https:// or dns:///", addr, u.Scheme)
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
			return "", "", false, fmt.Errorf("%q has a path or query; give only scheme://host:port", addr)
		}
		authority = u.Host
		if useTLS {
			scheme = "https"
		}
	}
	if _, port, err := net.SplitHostPort(authority); err != nil || port == "" {
		return "", "", false, fmt.Errorf("%q has no port; give host:port", addr)
	}
	return scheme, authority, useTLS, nil
}

// validBackendName reports a name fit for a metric label and a config key.
func validBackendName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// loaded reports whether the backend has descriptors in force.
func (b *backend) loaded() bool { return b.files.Load() != nil }

// refresher loads the backend's descriptors by reflection: quickly retried
// until the first success, then every interval and whenever kicked.
func (b *backend) refresher(done func()) {
	defer done()
	g := b.g
	backoff := 50 * time.Millisecond
	const maxBackoff = 5 * time.Second
	var timer *time.Timer
	for {
		err := b.refreshOnce()
		var wait time.Duration
		switch {
		case err == nil:
			backoff = 50 * time.Millisecond
			wait = g.interval
		case g.ctx.Err() != nil:
			return
		default:
			if b.loaded() {
				g.log.Warn("gateway: reflection refresh failed; keeping the last descriptors", "backend", b.name, "address", b.authority, "error", err)
			} else {
				g.log.Debug("gateway: waiting for the backend's reflection", "backend", b.name, "address", b.authority, "error", err)
			}
			wait = backoff
			backoff = min(2*backoff, maxBackoff)
		}
		var tick <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			tick = timer.C
		}
		select {
		case <-g.ctx.Done():
			return
		case <-b.kick:
		case <-tick:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

func (b *backend) refreshOnce() error {
	ctx, cancel := context.WithTimeout(b.g.ctx, 10*time.Second)
	defer cancel()
	files, err := b.reflectFiles(ctx)
	if err != nil {
		return err
	}
	return b.g.install(b, files)
}

// kickRefresh asks the refresher to reflect soon, at most once a second:
// called when a request names an unknown procedure or the backend is
// unreachable, since the backend may have restarted with other services.
func (b *backend) kickRefresh() {
	if !b.reflect {
		return
	}
	now := time.Now().UnixNano()
	last := b.lastKick.Load()
	if now-last < int64(time.Second) || !b.lastKick.CompareAndSwap(last, now) {
		return
	}
	select {
	case b.kick <- struct{}{}:
	default:
	}
}
