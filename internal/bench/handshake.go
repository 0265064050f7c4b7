package main

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// The handshake case measures what a browser's first visit costs a target:
// every call opens a new TCP connection and makes a full TLS handshake (the
// client keeps no session tickets, so nothing resumes), sends one Greet and
// closes. Reported per target: calls/s and the target's CPU per call, which
// is mostly the handshake's.

// freshConns sends every request on a new transport, so over a new
// connection (HTTP/1.1 and HTTP/2 alike), closed once the response body is;
// dials counts the connections.
type freshConns struct {
	p     protocol
	roots *x509.CertPool
	dials *atomic.Int64
}

var handshakeDialer = &net.Dialer{Timeout: 10 * time.Second}

func (f freshConns) RoundTrip(req *http.Request) (*http.Response, error) {
	tr := newTransport(f.p, 1, f.roots)
	tr.DisableKeepAlives = true
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		f.dials.Add(1)
		return handshakeDialer.DialContext(ctx, network, addr)
	}
	res, err := tr.RoundTrip(req)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	res.Body = closeConns{res.Body, tr}
	return res, nil
}

// closeConns closes its transport's connections with the body.
type closeConns struct {
	io.ReadCloser
	tr *http.Transport
}

func (c closeConns) Close() error {
	err := c.ReadCloser.Close()
	c.tr.CloseIdleConnections()
	return err
}

// handshakeResult is one handshake cell over the rounds.
type handshakeResult struct {
	unaryResult
	conns int64 // connections the client opened in the measured windows
}

// runHandshakeCell measures t speaking p with conc callers whose every call
// opens a new connection: warm-up, then cfg.duration, reading the target's
// CPU around the measured window. It adds to res.
func runHandshakeCell(ctx context.Context, t *target, p protocol, conc int, cfg config, res *handshakeResult) error {
	var dials atomic.Int64
	hc := &http.Client{Transport: checkedProto{next: freshConns{p: p, roots: t.roots, dials: &dials}, p: p}}
	ep := t.at(p)
	client := newGreetClient(hc, ep.addr, p)
	pid := ep.proc.pid()
	if cfg.warmup > 0 {
		drive(ctx, client, conc, cfg.warmup, false)
	}
	dials0 := dials.Load()
	cpu0, err := procCPU(pid)
	if err != nil {
		return err
	}
	run := drive(ctx, client, conc, cfg.duration, true)
	cpu1, err := procCPU(pid)
	if err != nil {
		return err
	}
	res.conns += dials.Load() - dials0
	res.calls += run.calls
	res.errors += run.errors
	if res.firstErr == "" && run.firstErr != nil {
		res.firstErr = oneLine(run.firstErr.Error())
	}
	res.elapsed += run.elapsed
	res.cpu += cpu1 - cpu0
	res.rates = append(res.rates, float64(run.calls)/run.elapsed.Seconds())
	res.latency = append(res.latency, run.latency...)
	return ctx.Err()
}
