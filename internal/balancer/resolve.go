package balancer

import (
	"context"
	"errors"
	"net"
	"time"
)

const (
	// minResolveGap is the least time between two resolutions asked for
	// by failures, which may come in bursts.
	minResolveGap = time.Second
	// resolveTimeout bounds one resolution.
	resolveTimeout = 10 * time.Second
)

// resolveLoop resolves a dns:/// name every ResolveInterval and when
// asked, until the pool closes. A failed resolution is tried again after a
// backoff (at most the interval) and keeps the replicas as they are.
func (p *Pool) resolveLoop() {
	defer p.wg.Done()
	s := p.s
	timer := time.NewTimer(0)
	defer timer.Stop()
	first := true
	fails := 0
	for {
		err := p.resolve()
		if first {
			first = false
			close(p.resolved)
		}
		wait := s.resolveInterval
		if err != nil {
			s.log.Warn("balancer: resolution failed; replicas kept", "backend", s.name, "host", s.target.host, "err", err)
			wait = min(wait, s.backoff(fails))
			fails++
		} else {
			fails = 0
		}
		last := time.Now()
		timer.Reset(wait)
		select {
		case <-p.ctx.Done():
			return
		case <-timer.C:
		case <-p.resolveNow:
			timer.Reset(time.Until(last.Add(minResolveGap)))
			select {
			case <-p.ctx.Done():
				return
			case <-timer.C:
			}
		}
	}
}

var errNoAddress = errors.New("no address")

// resolve looks the name up and updates the replicas.
func (p *Pool) resolve() error {
	ctx, cancel := context.WithTimeout(p.ctx, resolveTimeout)
	defer cancel()
	ips, err := p.s.resolver.LookupHost(ctx, p.s.target.host)
	if err != nil {
		return err
	}
	if len(ips) == 0 {
		return errNoAddress
	}
	addrs := make([]string, len(ips))
	for i, ip := range ips {
		addrs[i] = net.JoinHostPort(ip, p.s.target.port)
	}
	p.update(addrs)
	return nil
}
