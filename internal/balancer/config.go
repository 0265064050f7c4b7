package balancer

import (
	"cmp"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/corsgate/corsgate/internal/h2client"
)

// Default values of [Config].
const (
	// DefaultResolveInterval is the default [Config.ResolveInterval].
	DefaultResolveInterval = 30 * time.Second
	// DefaultHealthInterval is the default [Config.HealthInterval].
	DefaultHealthInterval = 5 * time.Second
	// DefaultRetryBase is the default [Config.RetryBase].
	DefaultRetryBase = 250 * time.Millisecond
	// DefaultRetryMax is the default [Config.RetryMax]: short, so that a
	// restarted replica is back within seconds; a probe is one connection.
	DefaultRetryMax = 3 * time.Second
)

// dnsScheme prefixes an address that is resolved to replicas.
const dnsScheme = "dns:///"

// Resolver looks up the addresses of a host; [*net.Resolver] is one.
type Resolver interface {
	// LookupHost returns the host's IPv4 and IPv6 addresses.
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// Config configures a [Pool]. The zero value of every field but Addresses
// is its default.
type Config struct {
	// Name names the backend in logs and events.
	Name string
	// Addresses are the replicas: "host:port" each, or exactly one
	// "dns:///host:port", whose A and AAAA records are the replicas (see
	// the package doc). A "host:port" with a host name is one replica,
	// dialed by name. Required.
	Addresses []string
	// TLS, when not nil, makes connections TLS with ALPN h2 (see
	// [h2client.Config.TLS]); for a dns:/// name whose TLS has no
	// ServerName, the name is the server name. Nil means h2c.
	TLS *tls.Config
	// Resolver resolves a dns:/// name; nil means [net.DefaultResolver].
	Resolver Resolver
	// ResolveInterval is how often a dns:/// name is resolved again; the
	// default (zero) is [DefaultResolveInterval]. It does not apply to
	// "host:port" addresses.
	ResolveInterval time.Duration
	// HealthCheck makes the pool ask each replica's grpc.health.v1 every
	// HealthInterval (default [DefaultHealthInterval]) about HealthService
	// ("" is the whole server): a replica that answers other than SERVING
	// takes no new calls. Without it, only failed connections eject.
	HealthCheck    bool
	HealthService  string
	HealthInterval time.Duration
	// RetryBase and RetryMax bound the backoff before an ejected replica
	// is probed again: the first wait is RetryBase, each next one twice
	// the last, up to RetryMax, every one jittered by ±20 %. The defaults
	// (zero) are [DefaultRetryBase] and [DefaultRetryMax].
	RetryBase, RetryMax time.Duration
	// Transport is the template of every replica's [h2client.Config]
	// (windows, pings, DialContext); its Authority and TLS are ignored:
	// each replica's Authority is its address, TLS is the TLS above.
	Transport h2client.Config
	// Logger gets replica state changes and resolution failures; nil
	// means [slog.Default].
	Logger *slog.Logger
	// Observe, when not nil, is told of every change of a replica's
	// state, for metrics. It is called with the replica's lock held, in
	// the order of the changes, from calls and from the pool's own
	// goroutines: it must be quick, safe for concurrent use, and must not
	// call the pool's methods other than [Pool.Replicas].
	Observe func(ReplicaEvent)
}

// State is a replica's state.
type State int32

// The states of a replica.
const (
	// StateNone is the state of a replica not in the pool: the From of a
	// replica's first event and the To of its last.
	StateNone State = iota
	// StateReady is a replica that takes calls.
	StateReady
	// StateEjected is a replica that could not be connected to, or failed
	// a health check; it is probed after a backoff.
	StateEjected
	// StateNotServing is a replica whose grpc.health.v1 answered other
	// than SERVING.
	StateNotServing
	// StateDraining is a replica no longer resolved: it takes no new
	// call and is removed once its calls ended.
	StateDraining
)

func (s State) String() string {
	switch s {
	case StateNone:
		return "none"
	case StateReady:
		return "ready"
	case StateEjected:
		return "ejected"
	case StateNotServing:
		return "not-serving"
	case StateDraining:
		return "draining"
	}
	return fmt.Sprintf("State(%d)", int32(s))
}

// ReplicaEvent is a change of a replica's state, told to [Config.Observe].
type ReplicaEvent struct {
	// Backend is [Config.Name].
	Backend string
	// Address is the replica's "host:port".
	Address string
	// From and To are the states before and after; To is [StateEjected]
	// for an ejection.
	From, To State
	// Err is why, for an ejection; nil otherwise.
	Err error
}

// ReplicaStatus is what [Pool.Replicas] says of a replica.
type ReplicaStatus struct {
	// Address is the replica's "host:port".
	Address string
	// State is its state now.
	State State
	// Outstanding is how many calls are on it now.
	Outstanding int
	// Calls is how many calls it was given.
	Calls uint64
	// Ejections is how often it was ejected.
	Ejections uint64
}

// target is a validated Config.Addresses.
type target struct {
	static []string // the replicas, or nil for a name
	host   string   // the dns:/// name's host
	port   string
}

func parseTarget(addrs []string) (target, error) {
	if len(addrs) == 0 {
		return target{}, fmt.Errorf("balancer: Config.Addresses is empty: give host:port replicas or one %shost:port", dnsScheme)
	}
	if rest, ok := strings.CutPrefix(addrs[0], dnsScheme); ok {
		if len(addrs) > 1 {
			return target{}, fmt.Errorf("balancer: Config.Addresses %q: a %s name must be the only address", addrs, dnsScheme)
		}
		host, port, err := net.SplitHostPort(rest)
		if err != nil || host == "" || port == "" {
			return target{}, fmt.Errorf("balancer: Config.Addresses %q: give %shost:port", addrs[0], dnsScheme)
		}
		return target{host: host, port: port}, nil
	}
	seen := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		if strings.Contains(a, "://") {
			return target{}, fmt.Errorf("balancer: Config.Addresses %q: give host:port, or %shost:port as the only address", a, dnsScheme)
		}
		if host, port, err := net.SplitHostPort(a); err != nil || host == "" || port == "" {
			return target{}, fmt.Errorf("balancer: Config.Addresses %q: give host:port", a)
		}
		if seen[a] {
			return target{}, fmt.Errorf("balancer: Config.Addresses lists %q twice", a)
		}
		seen[a] = true
	}
	return target{static: append([]string(nil), addrs...)}, nil
}

// settings is a validated Config with its defaults.
type settings struct {
	name            string
	target          target
	tls             *tls.Config
	resolver        Resolver
	resolveInterval time.Duration
	health          bool
	healthService   string
	healthInterval  time.Duration
	retryBase       time.Duration
	retryMax        time.Duration
	transport       h2client.Config
	log             *slog.Logger
	observe         func(ReplicaEvent)
}

func newSettings(cfg Config) (*settings, error) {
	tgt, err := parseTarget(cfg.Addresses)
	if err != nil {
		return nil, err
	}
	s := &settings{
		name:            cfg.Name,
		target:          tgt,
		tls:             cfg.TLS,
		resolver:        cfg.Resolver,
		resolveInterval: cmp.Or(cfg.ResolveInterval, DefaultResolveInterval),
		health:          cfg.HealthCheck,
		healthService:   cfg.HealthService,
		healthInterval:  cmp.Or(cfg.HealthInterval, DefaultHealthInterval),
		retryBase:       cmp.Or(cfg.RetryBase, DefaultRetryBase),
		retryMax:        cmp.Or(cfg.RetryMax, DefaultRetryMax),
		transport:       cfg.Transport,
		log:             cfg.Logger,
		observe:         cfg.Observe,
	}
	switch {
	case s.resolveInterval < 0:
		return nil, fmt.Errorf("balancer: Config.ResolveInterval %v: give a positive duration, or 0 for %v", cfg.ResolveInterval, DefaultResolveInterval)
	case s.healthInterval < 0:
		return nil, fmt.Errorf("balancer: Config.HealthInterval %v: give a positive duration, or 0 for %v", cfg.HealthInterval, DefaultHealthInterval)
	case s.retryBase < 0 || s.retryMax < s.retryBase:
		return nil, fmt.Errorf("balancer: Config.RetryBase %v, RetryMax %v: give 0 < RetryBase <= RetryMax, or 0 for %v and %v", cfg.RetryBase, cfg.RetryMax, DefaultRetryBase, DefaultRetryMax)
	}
	if s.resolver == nil {
		s.resolver = net.DefaultResolver
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.tls != nil && tgt.static == nil && s.tls.ServerName == "" && net.ParseIP(tgt.host) == nil {
		s.tls = s.tls.Clone()
		s.tls.ServerName = tgt.host
	}
	// The template is checked once here; each replica's config differs
	// only in its Authority.
	probe := s.transportConfig(net.JoinHostPort("127.0.0.1", "1"))
	t, err := h2client.New(probe)
	if err != nil {
		return nil, fmt.Errorf("balancer: Config.Transport: %w", err)
	}
	t.Close()
	return s, nil
}

func (s *settings) transportConfig(addr string) h2client.Config {
	c := s.transport
	c.Authority = addr
	c.TLS = s.tls
	return c
}
