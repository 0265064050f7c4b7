package balancer

import (
	"context"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/corsgate/corsgate/internal/h2client"
)

// healthTimeout bounds one health check or probe.
const healthTimeout = 5 * time.Second

// replica is one address of the backend, with its own Transport.
type replica struct {
	p      *Pool
	addr   string
	t      *h2client.Transport
	health *grpchealth.Client // nil without HealthCheck

	state       atomic.Int32 // a State; written under mu
	outstanding atomic.Int64
	calls       atomic.Uint64
	ejections   atomic.Uint64

	mu       sync.Mutex
	fails    int       // failed probes since the ejection
	retryAt  time.Time // when an ejected replica is probed
	finished bool      // drained and closed
	kick     chan struct{}
}

func newReplica(p *Pool, addr string) (*replica, error) {
	t, err := h2client.New(p.s.transportConfig(addr))
	if err != nil {
		return nil, err
	}
	r := &replica{p: p, addr: addr, t: t, kick: make(chan struct{}, 1)}
	if p.s.health {
		scheme := "http://"
		if p.s.tls != nil {
			scheme = "https://"
		}
		r.health = grpchealth.NewClient(&http.Client{Transport: t}, scheme+addr, connect.WithGRPC())
	}
	return r, nil
}

// setState changes the state and tells Observe; it returns the state
// before.
func (r *replica) setState(to State, err error) State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.setStateLocked(to, err)
}

func (r *replica) setStateLocked(to State, err error) State {
	from := State(r.state.Load())
	if from == to {
		return from
	}
	r.state.Store(int32(to))
	s := r.p.s
	switch to {
	case StateEjected:
		s.log.Warn("balancer: replica ejected", "backend", s.name, "address", r.addr, "err", err)
	case StateNotServing:
		s.log.Warn("balancer: replica not serving", "backend", s.name, "address", r.addr)
	default:
		s.log.Info("balancer: replica "+to.String(), "backend", s.name, "address", r.addr, "was", from.String())
	}
	if s.observe != nil {
		s.observe(ReplicaEvent{Backend: s.name, Address: r.addr, From: from, To: to, Err: err})
	}
	return from
}

// poke wakes the replica's goroutine.
func (r *replica) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// eject takes a ready or not-serving replica out of the picks until a
// probe succeeds.
func (r *replica) eject(err error) {
	r.mu.Lock()
	switch State(r.state.Load()) {
	case StateReady, StateNotServing:
		r.fails = 0
		r.retryAt = time.Now().Add(r.p.s.backoff(0))
		r.ejections.Add(1)
		r.setStateLocked(StateEjected, err)
		r.mu.Unlock()
		r.poke()
		return
	}
	r.mu.Unlock()
}

// drain takes the replica out of the pool: it takes no new call, and its
// Transport is closed once its calls ended.
func (r *replica) drain() {
	r.setState(StateDraining, nil)
	r.poke()
	if r.outstanding.Load() == 0 {
		r.finish()
	}
}

// done ends a call on the replica.
func (r *replica) done() {
	if r.outstanding.Add(-1) == 0 && r.state.Load() == int32(StateDraining) {
		r.finish()
	}
}

// finish closes a drained replica, once.
func (r *replica) finish() {
	r.mu.Lock()
	if r.finished {
		r.mu.Unlock()
		return
	}
	r.finished = true
	r.mu.Unlock()
	r.t.Close()
	r.p.remove(r)
	r.setState(StateNone, nil)
}

// run probes the replica while ejected and, with HealthCheck, checks its
// health while in the pool; it ends when the replica drains or the pool
// closes.
func (r *replica) run() {
	defer r.p.wg.Done()
	s := r.p.s
	timer := time.NewTimer(0)
	defer timer.Stop()
	var due time.Time // of the next health check; zero without HealthCheck
	if s.health {
		due = time.Now()
	}
	for {
		r.mu.Lock()
		st := State(r.state.Load())
		wake := due
		if st == StateEjected {
			wake = r.retryAt
		}
		r.mu.Unlock()
		if st == StateDraining || st == StateNone {
			return
		}
		var tick <-chan time.Time
		if !wake.IsZero() {
			timer.Reset(time.Until(wake))
			tick = timer.C
		}
		select {
		case <-r.p.ctx.Done():
			return
		case <-r.kick:
			continue
		case <-tick:
		}
		serving, err := r.check()
		if r.p.ctx.Err() != nil {
			return
		}
		if s.health {
			due = time.Now().Add(s.healthInterval)
		}
		r.mu.Lock()
		switch st = State(r.state.Load()); {
		case st == StateEjected && err != nil:
			r.fails++
			r.retryAt = time.Now().Add(s.backoff(r.fails))
			s.log.Debug("balancer: probe failed", "backend", s.name, "address", r.addr, "err", err)
		case st == StateDraining || st == StateNone:
		case err != nil:
			r.ejections.Add(1)
			r.fails = 0
			r.retryAt = time.Now().Add(s.backoff(0))
			r.setStateLocked(StateEjected, err)
		case serving:
			r.setStateLocked(StateReady, nil)
		default:
			r.setStateLocked(StateNotServing, nil)
		}
		r.mu.Unlock()
	}
}

// check asks the replica's grpc.health.v1 or, without HealthCheck, opens a
// connection to it. An error means the replica is to be ejected.
func (r *replica) check() (serving bool, err error) {
	ctx, cancel := context.WithTimeout(r.p.ctx, healthTimeout)
	defer cancel()
	if r.health == nil {
		return true, r.t.Connect(ctx)
	}
	resp, err := r.health.Check(ctx, &grpchealth.CheckRequest{Service: r.p.s.healthService})
	switch code := connect.CodeOf(err); {
	case err == nil:
		return resp.Status == grpchealth.StatusServing, nil
	case code == connect.CodeUnimplemented && r.p.s.healthService == "":
		return true, nil // no health service: serving if it answers gRPC at all
	case code == connect.CodeNotFound, code == connect.CodeUnimplemented:
		return false, nil
	default:
		return false, err
	}
}

// backoff is the wait before probe n+1 of an ejected replica: RetryBase
// doubled n times, at most RetryMax, jittered by ±20 %.
func (s *settings) backoff(n int) time.Duration {
	d := s.retryBase
	for range n {
		if d >= s.retryMax {
			break
		}
		d *= 2
	}
	d = min(d, s.retryMax)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
