package gateway

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/balancer"
)

// Metrics are the gateway's Prometheus metrics:
//
//	corsgate_requests_total{procedure,protocol,code,backend}        calls by outcome
//	corsgate_request_duration_seconds{procedure,protocol,backend}   call latency
//	corsgate_cors_preflights_total{result,reason,backend}            preflights allowed or refused, and why
//	corsgate_cors_requests_total{result,reason,backend}              cross-origin actual requests
//	corsgate_backend_errors_total{backend}                           backend unreachable or broken
//	corsgate_routing_errors_total{backend}                           routing tables refused (see [RoutingError])
//	corsgate_backend_replica_transitions_total{backend,state}        replica state changes; state="ejected" counts ejections
//
// procedure is a routed "/pkg.Service/Method" or "unknown"; protocol is
// grpc_web, grpc_web_text, connect or grpc; code is the gRPC code in
// snake case ("ok", "unavailable"); backend is a [Backend.Name] (in the
// single-backend form [DefaultBackendName]), or [NoBackend] for requests
// no route claims. A nil *Metrics records nothing.
type Metrics struct {
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	preflights    *prometheus.CounterVec
	crossOrigin   *prometheus.CounterVec
	backendErrors *prometheus.CounterVec
	routingErrors *prometheus.CounterVec
	replicas      *prometheus.CounterVec
	// def is the observer of ObserveVerdict.
	def *verdictObserver
}

// NoBackend is the backend label of requests that no route claims.
const NoBackend = "none"

// verdictObserver counts the CORS verdicts of one backend's routes.
type verdictObserver struct {
	m       *Metrics
	backend string
	// verdicts caches the series by preflight, allowed and reason, so
	// that counting a verdict neither hashes labels nor allocates.
	verdicts [2][2][numReasons]atomic.Pointer[prometheus.Counter]
}

// numReasons bounds the interceptor.Reason values that get their own cached
// series; others are counted through the vectors.
const numReasons = 8

// NewMetrics registers the gateway's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corsgate_requests_total",
			Help: "RPCs served by the gateway, by procedure, client protocol and gRPC code.",
		}, []string{"procedure", "protocol", "code", "backend"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "corsgate_request_duration_seconds",
			Help:    "Time from the request's arrival to the end of its response, by procedure and client protocol.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"procedure", "protocol", "backend"}),
		preflights: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corsgate_cors_preflights_total",
			Help: "CORS preflights, by result (allowed, refused) and reason.",
		}, []string{"result", "reason", "backend"}),
		crossOrigin: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corsgate_cors_requests_total",
			Help: "Cross-origin actual requests, by result (allowed, refused) and reason.",
		}, []string{"result", "reason", "backend"}),
		backendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corsgate_backend_errors_total",
			Help: "Calls that failed because the backend was unreachable or broke the exchange, by backend.",
		}, []string{"backend"}),
		routingErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corsgate_routing_errors_total",
			Help: "Routing tables refused after new descriptors of a backend, by backend; the last good table kept serving.",
		}, []string{"backend"}),
		replicas: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "corsgate_backend_replica_transitions_total",
			Help: "Changes of a backend replica's state (ready, ejected, not-serving, draining, none), by backend and the state entered; state=\"ejected\" counts ejections.",
		}, []string{"backend", "state"}),
	}
	m.def = &verdictObserver{m: m, backend: DefaultBackendName}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.preflights, m.crossOrigin, m.backendErrors, m.routingErrors, m.replicas} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("gateway: metrics already registered: %w", err)
			}
			return nil, fmt.Errorf("gateway: register metrics: %w", err)
		}
	}
	return m, nil
}

// ObserveVerdict counts a CORS verdict of the single backend
// ([DefaultBackendName]). Pass it to the policy with
// interceptor.WithObserver(m.ObserveVerdict).
func (m *Metrics) ObserveVerdict(v interceptor.Verdict) {
	if m == nil {
		return
	}
	m.def.observe(v)
}

// VerdictObserver returns the function that counts the CORS verdicts of
// the routes of backend (a [Backend.Name], or [NoBackend] for the policy of
// requests no route claims): pass it to each route's policy with
// interceptor.WithObserver. It is nil for a nil *Metrics.
func (m *Metrics) VerdictObserver(backend string) func(interceptor.Verdict) {
	if m == nil {
		return nil
	}
	if backend == DefaultBackendName {
		return m.def.observe
	}
	return (&verdictObserver{m: m, backend: backend}).observe
}

func (o *verdictObserver) observe(v interceptor.Verdict) {
	m := o.m
	var slot *atomic.Pointer[prometheus.Counter]
	if int(v.Reason) < numReasons {
		slot = &o.verdicts[b2i(v.Preflight)][b2i(v.Allowed)][v.Reason]
		if c := slot.Load(); c != nil {
			(*c).Inc()
			return
		}
	}
	result := "refused"
	if v.Allowed {
		result = "allowed"
	}
	vec := m.crossOrigin
	if v.Preflight {
		vec = m.preflights
	}
	c := vec.WithLabelValues(result, v.Reason.String(), o.backend)
	c.Inc()
	if slot != nil {
		slot.Store(&c)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

const numProtocols = 4

// protocolIndex numbers the protocol labels for the per-route caches.
func protocolIndex(name string) int {
	switch name {
	case "grpc_web":
		return 0
	case "grpc_web_text":
		return 1
	case "connect":
		return 2
	default:
		return 3
	}
}

// routeMetrics caches the series of one procedure so that recording a call
// neither hashes labels nor allocates.
type routeMetrics struct {
	m         *Metrics
	procedure string
	backend   string
	counters  [numProtocols][connect.CodeUnauthenticated + 1]atomic.Pointer[prometheus.Counter]
	latency   [numProtocols]atomic.Pointer[prometheus.Observer]
}

func (m *Metrics) forRoute(procedure, backend string) *routeMetrics {
	if m == nil {
		return nil
	}
	return &routeMetrics{m: m, procedure: procedure, backend: backend}
}

func codeLabel(code connect.Code) string {
	if code == 0 {
		return "ok"
	}
	return code.String()
}

func (r *routeMetrics) observe(protocol string, code connect.Code, d time.Duration) {
	if r == nil {
		return
	}
	if code > connect.CodeUnauthenticated {
		code = connect.CodeUnknown
	}
	p := protocolIndex(protocol)
	c := r.counters[p][code].Load()
	if c == nil {
		counter := r.m.requests.WithLabelValues(r.procedure, protocol, codeLabel(code), r.backend)
		c = &counter
		r.counters[p][code].Store(c)
	}
	(*c).Inc()
	o := r.latency[p].Load()
	if o == nil {
		obs := r.m.latency.WithLabelValues(r.procedure, protocol, r.backend)
		o = &obs
		r.latency[p].Store(o)
	}
	(*o).Observe(d.Seconds())
}

func (m *Metrics) observeUnrouted(protocol string, code connect.Code) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues("unknown", protocol, codeLabel(code), NoBackend).Inc()
}

func (m *Metrics) backendError(backend string) {
	if m == nil {
		return
	}
	m.backendErrors.WithLabelValues(backend).Inc()
}

func (m *Metrics) routingError(backend string) {
	if m == nil {
		return
	}
	m.routingErrors.WithLabelValues(backend).Inc()
}

// addBackend creates the series of backend's errors at zero, so that they
// are exported before the first error.
func (m *Metrics) addBackend(backend string) {
	if m == nil {
		return
	}
	m.backendErrors.WithLabelValues(backend)
	m.routingErrors.WithLabelValues(backend)
}

// replicaObserver counts the state changes of a backend's replicas; nil
// without metrics.
func (m *Metrics) replicaObserver() func(balancer.ReplicaEvent) {
	if m == nil {
		return nil
	}
	return func(ev balancer.ReplicaEvent) {
		m.replicas.WithLabelValues(ev.Backend, ev.To.String()).Inc()
	}
}
