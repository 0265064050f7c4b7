package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/corsgate/corsgate/gateway"
	"github.com/corsgate/corsgate/internal/cliflags"
	"github.com/corsgate/corsgate/internal/config"
)

const (
	// reloadDebounce is how long the watched files must stay quiet after
	// a change before the config is reloaded: an editor's or
	// cert-manager's writes come in bursts.
	reloadDebounce = 200 * time.Millisecond
	// reloadReadyTimeout bounds how long a reload waits for the new
	// gateway's descriptors (server reflection) before it is refused.
	reloadReadyTimeout = 10 * time.Second
)

// notifyReloads starts taking SIGHUP from the default action (which ends
// the process) for watchReloads; stop ends that.
func notifyReloads() (hup chan os.Signal, stop func()) {
	hup = make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	return hup, func() { signal.Stop(hup) }
}

// watchReloads reloads the config on each SIGHUP from hup and, with
// --watch, when a watched file changes, until ctx is done. SIGINT and
// SIGTERM are not touched: they end the process through ctx, as before.
func (s *serveServer) watchReloads(ctx context.Context, hup <-chan os.Signal) {
	fw, err := newFileWatcher()
	if err == nil {
		err = fw.watch(s.config())
	}
	if err != nil {
		s.log.Warn("corsgate serve: not watching the config and TLS files; reload with SIGHUP", "error", err)
	}
	defer fw.close()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	for {
		var reason string
		select {
		case <-ctx.Done():
			return
		case <-hup:
			reason = "SIGHUP"
		case ev := <-fw.events():
			if fw.relevant(ev) {
				s.log.Debug("corsgate serve: watched file changed", "file", ev.Name, "op", ev.Op.String())
				debounce.Reset(reloadDebounce)
			}
			continue
		case err := <-fw.errors():
			s.log.Warn("corsgate serve: watching the config files", "error", err)
			continue
		case <-debounce.C:
			reason = "file change"
		}
		_ = s.reload(ctx, reason)
		if err := fw.watch(s.config()); err != nil {
			s.log.Warn("corsgate serve: watching the config and TLS files", "error", err)
		}
	}
}

// reload builds everything again from the command line and the --config
// file, validated in full, and swaps it in: the CORS policies, backends
// and routes (a new gateway; backends configured alike keep their
// clients), the listener's certificate, key and client CAs, the log level
// and the shutdown grace. A config that fails anywhere is refused and the
// one in force keeps serving; so is a change that needs a restart
// (--listen, --metrics-listen, TLS on or off). The outcome is logged,
// counted in corsgate_config_reload_total and, when refused, reported by
// /healthz.
func (s *serveServer) reload(ctx context.Context, reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.swapIn(ctx); err != nil {
		s.handler.refused.Store(&reloadRefusal{err: err, at: time.Now()})
		if s.reloads != nil {
			s.reloads.WithLabelValues("refused").Inc()
		}
		s.log.Error("corsgate serve: config reload refused; the config in force keeps serving",
			"reason", reason, "key", errorKey(err), "error", err)
		return err
	}
	s.handler.refused.Store(nil)
	if s.reloads != nil {
		s.reloads.WithLabelValues("ok").Inc()
	}
	s.log.Info("corsgate serve: config reloaded", "reason", reason)
	return nil
}

// swapIn builds the new config's gateway and TLS config and swaps them in;
// nothing changes unless every step succeeds. Called under s.mu.
func (s *serveServer) swapIn(ctx context.Context) error {
	next, err := s.cfg.reread()
	if err != nil {
		return err
	}
	if err := restartNeeded(s.cfg, next); err != nil {
		return err
	}
	var tc *tls.Config
	if next.tlsCert != "" {
		if tc, err = next.listenerTLS(); err != nil {
			return err
		}
	}
	gw, err := next.newGateway(s.log, s.gwMetrics, s.clients, s.gwTracing)
	if err != nil {
		return err
	}
	// A gateway in reflection mode answers UNAVAILABLE until its
	// descriptors load: wait for them, unless the gateway in force has
	// none either.
	if s.gateway().Ready(canceled) == nil {
		readyCtx, cancel := context.WithTimeout(ctx, reloadReadyTimeout)
		err := gw.Ready(readyCtx)
		cancel()
		if err != nil {
			_ = gw.Close()
			return err
		}
	}
	if tc != nil {
		s.tlsConf.Store(tc)
	}
	if s.level != nil {
		_ = cliflags.SetLevel(s.level, next.cors.LogLevel) // parsed already
	}
	s.handler.swap(gw, s.log)
	s.cfg = next
	return nil
}

// canceled is a done context: Ready(canceled) tells without waiting.
var canceled = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// restartNeeded refuses the changes a reload cannot apply without cutting
// connections.
func restartNeeded(cur, next *serveConfig) error {
	switch {
	case next.listen != cur.listen:
		return cliflags.Usagef("--listen changed from %q to %q: that needs a restart; nothing was reloaded", cur.listen, next.listen)
	case next.metricsListen != cur.metricsListen:
		return cliflags.Usagef("--metrics-listen changed from %q to %q: that needs a restart; nothing was reloaded", cur.metricsListen, next.metricsListen)
	case next.grpcListen != cur.grpcListen:
		return cliflags.Usagef("--%s changed from %q to %q: that needs a restart; nothing was reloaded", flagGRPCListen, cur.grpcListen, next.grpcListen)
	case cur.grpcListen != "" && next.maxMessageSize > cur.maxMessageSize:
		// The gRPC server's receive limit is set when it starts.
		return cliflags.Usagef("--max-message-size raised from %d to %d with --%s: that needs a restart; nothing was reloaded", cur.maxMessageSize, next.maxMessageSize, flagGRPCListen)
	case (next.tlsCert == "") != (cur.tlsCert == ""):
		return cliflags.Usagef("--tls-cert: turning TLS on or off needs a restart; nothing was reloaded")
	}
	return nil
}

// errorKey is the flag or config key a refusal names, "" when none is
// known.
func errorKey(err error) string {
	var ke *config.KeyError
	if errors.As(err, &ke) {
		return ke.Key
	}
	msg := err.Error()
	if i := strings.IndexByte(msg, ':'); i > 0 {
		if key, _, _ := strings.Cut(msg[:i], " "); strings.HasPrefix(key, "--") || strings.HasPrefix(key, "backends.") || strings.HasPrefix(key, "routes[") {
			return key
		}
	}
	return ""
}

// cmdLine are the flags given on the command line, kept so that a reload
// applies them over the file again: they win, as at startup.
type cmdLine []cmdFlag

type cmdFlag struct {
	name   string
	values []string
	list   bool
}

// commandLine records the flags of fs set on the command line.
func commandLine(fs *pflag.FlagSet) cmdLine {
	var out cmdLine
	fs.Visit(func(f *pflag.Flag) {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			out = append(out, cmdFlag{name: f.Name, values: sv.GetSlice(), list: true})
			return
		}
		out = append(out, cmdFlag{name: f.Name, values: []string{f.Value.String()}})
	})
	return out
}

// reread builds c again, as at startup: the flags' defaults, the --config
// file as it is now, and the command line's flags over it; validated.
func (c *serveConfig) reread() (*serveConfig, error) {
	next := &serveConfig{cmdLine: c.cmdLine}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	next.register(fs)
	next.accessLog.out = c.accessLog.out // where the process writes, not config
	for _, f := range c.cmdLine {
		fl := fs.Lookup(f.name)
		if fl == nil {
			continue // cobra's own, such as --help
		}
		var err error
		if sv, ok := fl.Value.(pflag.SliceValue); ok && f.list {
			err = sv.Replace(f.values)
		} else if len(f.values) == 1 {
			err = fl.Value.Set(f.values[0])
		}
		if err != nil {
			return nil, cliflags.Usagef("--%s: %w", f.name, err)
		}
		fl.Changed = true
	}
	if err := next.applyConfigFile(fs); err != nil {
		return nil, err
	}
	if err := next.validate(); err != nil {
		return nil, err
	}
	return next, nil
}

// newReloadMetric registers corsgate_config_reload_total{result}, with
// both results at zero.
func newReloadMetric(reg prometheus.Registerer) (*prometheus.CounterVec, error) {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "corsgate_config_reload_total",
		Help: "Config reloads (SIGHUP, a change of --config or of the TLS files), by result: ok, or refused (the config in force kept serving).",
	}, []string{"result"})
	if err := reg.Register(c); err != nil {
		return nil, fmt.Errorf("corsgate serve: register reload metric: %w", err)
	}
	c.WithLabelValues("ok")
	c.WithLabelValues("refused")
	return c, nil
}

// reloadRefusal is the last reload's error, for /healthz.
type reloadRefusal struct {
	err error
	at  time.Time
}

// generation is one gateway and the requests it serves. A retired
// generation gets no new request; once its last one ends it is drained and
// its gateway closed.
type generation struct {
	gw       *gateway.Gateway
	inflight atomic.Int64
	retired  atomic.Bool
	once     sync.Once
	drained  chan struct{}
}

// enter counts a request in, false when the generation is retired.
func (g *generation) enter() bool {
	g.inflight.Add(1)
	if g.retired.Load() {
		g.leave()
		return false
	}
	return true
}

func (g *generation) leave() {
	if g.inflight.Add(-1) == 0 && g.retired.Load() {
		g.once.Do(func() { close(g.drained) })
	}
}

func (g *generation) retire() {
	g.retired.Store(true)
	if g.inflight.Load() == 0 {
		g.once.Do(func() { close(g.drained) })
	}
}

// swapHandler serves every request with the generation in force when it
// arrived, to its end: a reload swaps the generation for new requests and
// leaves the calls in flight, streams and WebSockets included, on the old
// one, which is closed once they all ended.
type swapHandler struct {
	cur     atomic.Pointer[generation]
	refused atomic.Pointer[reloadRefusal] // the last reload's refusal, nil after a success

	mu        sync.Mutex
	live      []*generation // not closed yet, under mu
	closing   chan struct{} // closed by closeAll
	closeOnce sync.Once
	draining  sync.WaitGroup
}

func newSwapHandler(gw *gateway.Gateway) *swapHandler {
	h := &swapHandler{closing: make(chan struct{})}
	g := &generation{gw: gw, drained: make(chan struct{})}
	h.cur.Store(g)
	h.live = []*generation{g}
	return h
}

// current returns the generation in force.
func (h *swapHandler) current() *generation { return h.cur.Load() }

// enter returns the gateway in force for a request that starts, and the
// function to call when it ends.
func (h *swapHandler) enter() (*gateway.Gateway, func()) {
	g := h.cur.Load()
	for !g.enter() {
		g = h.cur.Load() // retired between the load and the count: a newer one is in force
	}
	return g.gw, g.leave
}

func (h *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	gw, leave := h.enter()
	defer leave()
	gw.ServeHTTP(w, r)
	if r.URL.Path == "/healthz" {
		if ref := h.refused.Load(); ref != nil {
			fmt.Fprintf(w, "config: reload refused at %s, the previous config serves: %v\n", ref.at.UTC().Format(time.RFC3339), ref.err)
		}
	}
}

// swap puts gw in force and closes the gateway it replaces once that one's
// requests ended (or at closeAll).
func (h *swapHandler) swap(gw *gateway.Gateway, log *slog.Logger) {
	next := &generation{gw: gw, drained: make(chan struct{})}
	h.mu.Lock()
	h.live = append(h.live, next)
	h.mu.Unlock()
	old := h.cur.Swap(next)
	old.retire()
	h.draining.Add(1)
	go func() {
		defer h.draining.Done()
		select {
		case <-old.drained:
			log.Debug("corsgate serve: the previous config's calls ended; closing its gateway")
		case <-h.closing:
		}
		h.close(old)
	}()
}

// close closes g's gateway, releasing the backend clients no other
// generation uses.
func (h *swapHandler) close(g *generation) {
	_ = g.gw.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, l := range h.live {
		if l == g {
			h.live = append(h.live[:i], h.live[i+1:]...)
			break
		}
	}
}

// closeAll closes every generation's gateway, at shutdown once the server
// stopped.
func (h *swapHandler) closeAll() {
	h.closeOnce.Do(func() {
		close(h.closing)
		h.draining.Wait()
		h.mu.Lock()
		live := append([]*generation(nil), h.live...)
		h.mu.Unlock()
		for _, g := range live {
			h.close(g)
		}
	})
}
