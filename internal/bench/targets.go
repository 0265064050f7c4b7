package main

import (
	"context"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/corsgate/corsgate/internal/testutil"
)

// Target names, as the -targets flag takes them.
const (
	targetCorsgate     = "corsgate"
	targetGRPCWebProxy = "grpcwebproxy"
	targetRevProxy     = "revproxy"
	targetDirect       = "direct"
	targetNative       = "native"
	targetFloor        = "floor"
	targetHop          = "hop"
	targetGRPCProxy    = "grpcproxy"
)

// candidates lists, per target, the protocols it is meant to speak; the
// readiness probe keeps those that answer. grpcwebproxy understands gRPC-Web
// only (HTTP/1.1, and HTTP/1.1 or HTTP/2 over TLS); the reverse proxy and
// grpc-go only gRPC over h2c; the floor gRPC-Web over HTTP/1.1 and HTTP/2
// over TLS. The hop is not called by clients (see floor.go). The first
// candidate of each listener (plain, TLS) must answer.
var candidates = map[string][]string{
	targetCorsgate: {protoGRPCWebH1, protoConnectH1, protoGRPCH2C, protoConnectH2C, protoGRPCWebH2C,
		protoGRPCWebH1TLS, protoConnectH1TLS, protoGRPCWebH2TLS, protoConnectH2TLS, protoGRPCH2TLS},
	targetGRPCWebProxy: {protoGRPCWebH1, protoGRPCWebH1TLS, protoGRPCWebH2TLS},
	targetRevProxy:     {protoGRPCH2C},
	targetDirect: {protoGRPCWebH1, protoConnectH1, protoGRPCH2C, protoConnectH2C, protoGRPCWebH2C,
		protoGRPCWebH1TLS, protoConnectH1TLS, protoGRPCWebH2TLS, protoConnectH2TLS, protoGRPCH2TLS},
	targetNative:    {protoGRPCH2C},
	targetFloor:     {protoGRPCWebH1, protoGRPCWebH2TLS},
	targetGRPCProxy: {protoGRPCH2C},
}

// streams reports whether a target serves streams (the streaming and memory
// cases): the floor answers everything with one canned message, and the hop
// is not called.
func streams(name string) bool { return name != targetFloor && name != targetHop }

// describe says, per target, which process the CPU and memory columns are
// about.
var describe = map[string]string{
	targetCorsgate:     "`corsgate serve` (built from ./cmd/corsgate) in front of the grpc-go backend, one process for plain TCP and one with --tls-cert; figures are the gateway process",
	targetGRPCWebProxy: "improbable-eng grpcwebproxy " + grpcwebproxyVersion + " in front of the grpc-go backend, its HTTP and TLS servers in one process; figures are the proxy process",
	targetRevProxy:     "httputil.ReverseProxy over h2c passing gRPC to the grpc-go backend; figures are the proxy process",
	targetDirect:       "connect-go handler serving the service itself (no gateway, no backend), plain TCP and TLS in one process; figures are that server, service work included",
	targetNative:       "the grpc-go backend called directly; figures are the backend, service work included",
	targetFloor:        "net/http server answering every request, after reading its body, with a canned gRPC-Web answer (the headers, the 1 KiB message, grpc-status 0) and no backend, plain TCP and TLS in one process; figures are that server",
	targetGRPCProxy:    "the gRPC pass-through floor: a transparent gRPC proxy on grpc-go alone (its server transport, a raw codec keeping each message in the buffers it arrived in, an unknown-service handler, one grpc-go client connection to the backend) with no routing, limits or metrics; figures are the proxy process",
	targetHop:          "the backend hop alone: a process calling the grpc-go backend through the gateway's HTTP/2 client (internal/h2client) as the gateway does, driven by the bench; figures are the calling process",
}

// endpoint is one listener of a target and the process behind it.
type endpoint struct {
	addr        string // host:port the clients call
	grpcAddr    string // corsgate's --grpc-listen, "" when none
	proc        *proc  // the measured process
	allocs      allocReader
	allocsLabel string
}

// target is one started thing the clients call.
type target struct {
	name      string
	plain     *endpoint // plain TCP: HTTP/1.1 and h2c
	tls       *endpoint // TLS; nil when the target has none
	roots     *x509.CertPool
	ok        map[string]bool
	notes     map[string]string // protocol → why it is not measured
	heap      func(ctx context.Context) (uint64, error)
	heapLabel string
	desc      string  // for the report: what runs and which process is measured
	owned     []*proc // the processes that are this target's to stop (native shares the backend)
}

func (t *target) stop() {
	for _, p := range t.owned {
		p.stop()
	}
}

// at returns the endpoint that serves p.
func (t *target) at(p protocol) *endpoint {
	if p.name == protoGRPCListen && t.plain != nil && t.plain.grpcAddr != "" {
		ep := *t.plain
		ep.addr = ep.grpcAddr
		return &ep
	}
	if p.transport.tls() {
		return t.tls
	}
	return t.plain
}

// speaks reports whether the target answered p in the probe.
func (t *target) speaks(p string) bool { return t.ok[p] }

// naReason says why p is not measured on t.
func (t *target) naReason(p string) string {
	if r, ok := t.notes[p]; ok {
		return r
	}
	return "not spoken"
}

// childEndpoints are the endpoints of one of the bench's own children.
func childEndpoints(p *proc, a childAddrs) (plain, tls *endpoint) {
	allocs, label := expvarAllocs(a.Debug), "runtime/metrics (expvar)"
	plain = &endpoint{addr: a.Addr, proc: p, allocs: allocs, allocsLabel: label}
	if a.TLS != "" {
		tls = &endpoint{addr: a.TLS, proc: p, allocs: allocs, allocsLabel: label}
	}
	return plain, tls
}

// startTarget starts name in front of the backend and probes its protocols.
func startTarget(ctx context.Context, name string, backend *proc, backendAddrs childAddrs, cfg config, cert benchCert, tmp string, log *slog.Logger) (*target, error) {
	t := &target{name: name, ok: map[string]bool{}, notes: map[string]string{}, desc: describe[name], roots: cert.pool}
	switch name {
	case targetNative:
		t.plain, _ = childEndpoints(backend, backendAddrs)
		t.heap, t.heapLabel = expvarHeap(backendAddrs.Debug), "runtime.MemStats.HeapInuse (expvar)"
	case targetDirect, targetRevProxy, targetFloor, targetHop, targetGRPCProxy:
		role := map[string]string{targetDirect: roleDirect, targetRevProxy: roleRevProxy, targetFloor: roleFloor, targetHop: roleHop, targetGRPCProxy: roleGRPCProxy}[name]
		p, a, err := startChild(ctx, role, append(cert.env(), childBackendEnv+"="+backendAddrs.Addr)...)
		if err != nil {
			return nil, err
		}
		t.owned = append(t.owned, p)
		t.plain, t.tls = childEndpoints(p, a)
		t.heap, t.heapLabel = expvarHeap(a.Debug), "runtime.MemStats.HeapInuse (expvar)"
	case targetGRPCWebProxy:
		if err := startGRPCWebProxy(ctx, t, cfg, backendAddrs.Addr, cert, log); err != nil {
			return nil, err
		}
	case targetCorsgate:
		if err := startCorsgate(ctx, t, cfg, backendAddrs.Addr, cert, tmp, log); err != nil {
			t.stop()
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown target %q", name)
	}
	if err := t.probe(ctx); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

// probe waits until each endpoint answers its first candidate protocol (30 s
// at most), then tries the others once each and notes the failures. The hop
// is probed with one call to the backend.
func (t *target) probe(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	retry := func(try func() error) error {
		for {
			err := try()
			if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
				return err
			}
			for _, p := range t.owned {
				if exit := p.exited(); exit != nil {
					return exit
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if t.name == targetHop {
		err := retry(func() error {
			_, err := testutil.HTTPGet(ctx, "http://"+t.plain.addr+"/once")
			return err
		})
		if err != nil {
			return fmt.Errorf("hop: no call to the backend went through: %w\nits last output:\n%s", err, t.plain.proc.output.String())
		}
		return nil
	}
	ready := map[*endpoint]bool{}
	for _, name := range candidates[t.name] {
		p := protocols[name]
		ep := t.at(p)
		if ep == nil {
			t.notes[name] = "no TLS listener"
			continue
		}
		hc := newHTTPClient(p, 1, t.roots)
		c := newGreetClient(hc, ep.addr, p)
		once := func() error {
			callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return greetOnce(callCtx, c)
		}
		var err error
		if ready[ep] {
			err = once()
		} else {
			err = retry(once)
		}
		hc.CloseIdleConnections()
		if err == nil {
			t.ok[name], ready[ep] = true, true
			continue
		}
		if !ready[ep] {
			return fmt.Errorf("%s does not answer %s on %s: %w\nits last output:\n%s", t.name, name, ep.addr, err, ep.proc.output.String())
		}
		t.notes[name] = "probe failed: " + oneLine(err.Error())
	}
	return nil
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
