package balancer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/corsgate/corsgate/internal/h2client"
)

var (
	// ErrNoReplica is wrapped by the error of a call made while no replica
	// is ready (all ejected, not serving, or none resolved).
	ErrNoReplica = errors.New("no replica ready")
	// ErrClosed is the error of calls after [Pool.Close].
	ErrClosed = errors.New("balancer: pool closed")
)

// Pool holds one backend's replicas and spreads calls over them; see the
// package doc. It is safe for concurrent use.
type Pool struct {
	s            *settings
	errNoReplica error // ErrNoReplica with the backend's name, made once

	live   atomic.Pointer[[]*replica] // the replicas resolved now, by address
	next   atomic.Uint32              // where the next pick's scan starts
	closed atomic.Bool

	mu  sync.Mutex
	all map[*replica]struct{} // live and draining

	resolved   chan struct{} // closed once the first resolution ended
	resolveNow chan struct{} // asks the resolver for a resolution; buffered
	ctx        context.Context
	cancel     context.CancelFunc
	wg         sync.WaitGroup // the pool's goroutines
}

// New validates cfg and returns a pool. It does not dial; a dns:/// name
// is resolved in the background, and calls made before its first answer
// wait for it.
func New(cfg Config) (*Pool, error) {
	s, err := newSettings(cfg)
	if err != nil {
		return nil, err
	}
	p := &Pool{
		s:            s,
		errNoReplica: fmt.Errorf("balancer: backend %q: %w", s.name, ErrNoReplica),
		all:          make(map[*replica]struct{}),
		resolved:     make(chan struct{}),
		resolveNow:   make(chan struct{}, 1),
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.live.Store(&[]*replica{})
	if s.target.static != nil {
		p.update(s.target.static)
		close(p.resolved)
		return p, nil
	}
	p.wg.Add(1)
	go p.resolveLoop()
	return p, nil
}

// RoundTrip is [Pool.Call] under req's context for a response handed over
// at its headers.
func (p *Pool) RoundTrip(req *http.Request) (*http.Response, error) {
	return p.Call(req.Context(), req, false)
}

// Call sends req to a replica as [h2client.Transport.Call] does (whole has
// the same meaning; req's own context is not used, ctx is) and returns its
// response; it closes req.Body. A call the replica did not process is
// retried once on another replica when its body can be replayed (see the
// package doc). The call counts as outstanding on its replica until its
// response body was read to its end or closed.
func (p *Pool) Call(ctx context.Context, req *http.Request, whole bool) (*http.Response, error) {
	resp, _, err := p.call(ctx, req, whole)
	return resp, err
}

// CallReplica is [Pool.Call] that also returns the address of the replica
// that took the call (the second one of a retried call), "" when no replica
// was picked. The gateway's access log names it.
func (p *Pool) CallReplica(ctx context.Context, req *http.Request, whole bool) (*http.Response, string, error) {
	resp, r, err := p.call(ctx, req, whole)
	if r == nil {
		return resp, "", err
	}
	return resp, r.addr, err
}

// call is Call, with the replica that took the call, nil when none.
func (p *Pool) call(ctx context.Context, req *http.Request, whole bool) (*http.Response, *replica, error) {
	select {
	case <-p.resolved:
	default:
		select {
		case <-p.resolved:
		case <-ctx.Done():
			h2client.CloseBody(req)
			return nil, nil, ctx.Err()
		}
	}
	r, err := p.pick(nil)
	if err != nil {
		h2client.CloseBody(req)
		return nil, nil, err
	}
	resp, err := p.callOn(ctx, r, req, whole)
	if err == nil || !h2client.Unprocessed(err) || ctx.Err() != nil {
		return resp, r, err
	}
	again, rerr := h2client.Rewind(req)
	if rerr != nil {
		return nil, r, err
	}
	r2, perr := p.pick(r)
	if perr != nil {
		h2client.CloseBody(again)
		return nil, r, err // the first error says more than "no other replica"
	}
	p.s.log.Debug("balancer: call retried on another replica", "backend", p.s.name,
		"from", r.addr, "to", r2.addr, "err", err)
	resp, err = p.callOn(ctx, r2, again, whole)
	return resp, r2, err
}

// callOn makes the call on r, which pick counted as outstanding.
func (p *Pool) callOn(ctx context.Context, r *replica, req *http.Request, whole bool) (*http.Response, error) {
	r.calls.Add(1)
	resp, err := r.t.Call(ctx, req, whole)
	if err != nil {
		r.done()
		if h2client.DialFailed(err) {
			r.eject(err)
			p.askResolve()
		}
		return nil, err
	}
	resp.Body = &callBody{ReadCloser: resp.Body, r: r}
	return resp, nil
}

// pick returns the ready replica other than not with the fewest
// outstanding calls, ties broken round robin, and counts a call on it.
func (p *Pool) pick(not *replica) (*replica, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	for range 4 {
		list := *p.live.Load()
		n := uint32(len(list))
		if n == 0 {
			break
		}
		start := p.next.Add(1)
		var best *replica
		var least int64
		for i := range n {
			r := list[(start+i)%n]
			if r == not || r.state.Load() != int32(StateReady) {
				continue
			}
			if o := r.outstanding.Load(); best == nil || o < least {
				best, least = r, o
			}
		}
		if best == nil {
			break
		}
		// Counted first, checked after: drain checks the count after it
		// set the state, so one of the two sees the other.
		best.outstanding.Add(1)
		if best.state.Load() != int32(StateDraining) {
			return best, nil
		}
		best.done()
	}
	if p.closed.Load() {
		return nil, ErrClosed
	}
	p.askResolve()
	return nil, p.errNoReplica
}

// Dial opens a connection to a ready replica as its [h2client.Transport]
// does ([h2client.Transport.Dial]), for other HTTP/2 clients of the backend
// (server reflection, say); network and addr are ignored. A replica that
// takes no connection is ejected and another one tried, once. The
// connection is the caller's: the pool does not count it as a call.
func (p *Pool) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	select {
	case <-p.resolved:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var tried *replica
	var first error
	for range 2 {
		r, err := p.pick(tried)
		if err != nil {
			if first != nil {
				return nil, first
			}
			return nil, err
		}
		r.done() // a connection, not a call
		nc, err := r.t.Dial(ctx, network, addr)
		if err == nil {
			return nc, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		r.eject(err)
		p.askResolve()
		tried, first = r, cmp.Or(first, err)
	}
	return nil, first
}

// update makes addrs the live replicas: new ones are added, missing ones
// drained.
func (p *Pool) update(addrs []string) {
	addrs = slices.Clone(addrs)
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	p.mu.Lock()
	if p.closed.Load() {
		p.mu.Unlock()
		return
	}
	old := *p.live.Load()
	live := make([]*replica, 0, len(addrs))
	var added, gone []*replica
	for _, a := range addrs {
		i, found := slices.BinarySearchFunc(old, a, func(r *replica, a string) int { return strings.Compare(r.addr, a) })
		if found {
			live = append(live, old[i])
			continue
		}
		r, err := newReplica(p, a)
		if err != nil {
			p.s.log.Error("balancer: replica not added", "backend", p.s.name, "address", a, "err", err)
			continue
		}
		live = append(live, r)
		added = append(added, r)
		p.all[r] = struct{}{}
		p.wg.Add(1)
	}
	for _, r := range old {
		if _, found := slices.BinarySearch(addrs, r.addr); !found {
			gone = append(gone, r)
		}
	}
	p.live.Store(&live)
	p.mu.Unlock()
	for _, r := range added {
		r.setState(StateReady, nil)
		go r.run()
	}
	for _, r := range gone {
		r.drain()
	}
}

// remove forgets a drained replica.
func (p *Pool) remove(r *replica) {
	p.mu.Lock()
	delete(p.all, r)
	p.mu.Unlock()
}

// askResolve asks for a resolution of a dns:/// name, soon.
func (p *Pool) askResolve() {
	if p.s.target.static != nil {
		return
	}
	select {
	case p.resolveNow <- struct{}{}:
	default:
	}
}

// Replicas returns the state and counters of every replica, draining ones
// included, sorted by address.
func (p *Pool) Replicas() []ReplicaStatus {
	p.mu.Lock()
	list := make([]*replica, 0, len(p.all))
	for r := range p.all {
		list = append(list, r)
	}
	p.mu.Unlock()
	out := make([]ReplicaStatus, len(list))
	for i, r := range list {
		out[i] = ReplicaStatus{
			Address:     r.addr,
			State:       State(r.state.Load()),
			Outstanding: int(r.outstanding.Load()),
			Calls:       r.calls.Load(),
			Ejections:   r.ejections.Load(),
		}
	}
	slices.SortFunc(out, func(a, b ReplicaStatus) int {
		if c := strings.Compare(a.Address, b.Address); c != 0 {
			return c
		}
		return int(a.State - b.State)
	})
	return out
}

// CloseIdleConnections closes every replica's connections that carry no
// call.
func (p *Pool) CloseIdleConnections() {
	p.mu.Lock()
	list := make([]*replica, 0, len(p.all))
	for r := range p.all {
		list = append(list, r)
	}
	p.mu.Unlock()
	for _, r := range list {
		r.t.CloseIdleConnections()
	}
}

// Close closes every replica's connections, failing calls in flight, and
// stops the pool's goroutines before it returns; calls after it fail with
// [ErrClosed]. It returns nil; closing again does nothing.
func (p *Pool) Close() error {
	p.mu.Lock()
	if p.closed.Swap(true) {
		p.mu.Unlock()
		return nil
	}
	list := make([]*replica, 0, len(p.all))
	for r := range p.all {
		list = append(list, r)
	}
	clear(p.all)
	p.live.Store(&[]*replica{})
	p.mu.Unlock()
	p.cancel()
	for _, r := range list {
		r.t.Close()
	}
	p.wg.Wait()
	for _, r := range list {
		r.setState(StateNone, nil)
	}
	return nil
}

// callBody is a response body that ends its call's count on its replica
// when read to its end (or an error) or closed.
type callBody struct {
	io.ReadCloser
	r     *replica
	ended atomic.Bool
}

func (b *callBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.end()
	}
	return n, err
}

func (b *callBody) Close() error {
	err := b.ReadCloser.Close()
	b.end()
	return err
}

// Buffered is the h2client body's: how many bytes Read returns without
// waiting.
func (b *callBody) Buffered() int {
	if bb, ok := b.ReadCloser.(interface{ Buffered() int }); ok {
		return bb.Buffered()
	}
	return 0
}

func (b *callBody) end() {
	if !b.ended.Swap(true) {
		b.r.done()
	}
}
