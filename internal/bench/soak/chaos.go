package main

import (
	"context"
	"fmt"
	"time"
)

// outage is one kill of the backend and the calls that failed with
// unavailable because of it.
type outage struct {
	killed, up time.Time // SIGKILL sent; the new backend listening
	cut        int       // calls in flight at the kill
	fails      int       // calls started after the kill
	lastFail   time.Time // the start of the last of those
	lastCall   string    // that call: kind and message
}

// noteUnavailable files a call that failed with unavailable under the last
// kill before its end.
func (s *soak) noteUnavailable(start, end time.Time, what string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.outages) - 1; i >= 0; i-- {
		o := &s.outages[i]
		if end.Before(o.killed) {
			continue
		}
		if start.Before(o.killed) {
			o.cut++
			return
		}
		o.fails++
		if start.After(o.lastFail) {
			o.lastFail, o.lastCall = start, what
		}
		return
	}
	s.unfiled++
	if s.unfiledCall == "" {
		s.unfiledCall = what
	}
}

// chaos kills the backend with SIGKILL every cfg.killEvery and restarts it
// on the same port after cfg.down, until ctx ends; a restart in progress
// completes first. A restart that fails ends the load (stop) and the run.
//
// Hooks for what corsgate serve does not have yet:
//   - replicas: with routing over several backends, start cfg.replicas of
//     them and kill one at a time, so that the others carry the load;
//   - reloadConfig: with config reload, reload every cfg.reloadEvery.
func (s *soak) chaos(ctx context.Context, stop context.CancelFunc) {
	var kill, reload <-chan time.Time
	if s.cfg.killEvery > 0 {
		t := time.NewTicker(s.cfg.killEvery)
		defer t.Stop()
		kill = t.C
	}
	if reloadConfig != nil && s.cfg.reloadEvery > 0 {
		t := time.NewTicker(s.cfg.reloadEvery)
		defer t.Stop()
		reload = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-kill:
			s.mu.Lock()
			s.outages = append(s.outages, outage{killed: time.Now()})
			s.mu.Unlock()
			err := s.backend.kill()
			if err == nil {
				s.log.Info("backend killed", "signal", "SIGKILL")
				time.Sleep(s.cfg.down)
				err = s.backend.start(context.WithoutCancel(ctx))
				s.mu.Lock()
				s.outages[len(s.outages)-1].up = time.Now()
				s.mu.Unlock()
			}
			if err != nil {
				err = fmt.Errorf("chaos: %w", err)
				s.fatal.Store(&err)
				stop()
				return
			}
		case <-reload:
			if err := reloadConfig(ctx, s.gateway); err != nil {
				s.calls.invariant(vReload, err.Error())
			}
		}
	}
}

// reloadConfig is the config-reload hook of chaos: nil until corsgate serve
// can reload its config (a signal or a watched file). Not exercised yet.
var reloadConfig func(ctx context.Context, g *gateway) error
