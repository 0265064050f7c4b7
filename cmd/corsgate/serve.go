package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/corsgate/corsgate/gateway"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/cliflags"
	"github.com/corsgate/corsgate/internal/config"
)

func init() { register(newServeCmd) }

// flagBackendInsecure turns off the verification of the backend's
// certificate.
const flagBackendInsecure = "backend-insecure-skip-verify"

// flagGRPCListen is the address of the gRPC-only listener.
const flagGRPCListen = "grpc-listen"

const (
	defaultServeListen   = "127.0.0.1:8080"
	defaultShutdownGrace = 15 * time.Second
	// serveReadHeaderTimeout bounds how long a client may take to send its
	// request headers; bodies and responses have no timeout, streams last.
	serveReadHeaderTimeout = 10 * time.Second
	// serveMaxHeaderBytes bounds a request's headers.
	serveMaxHeaderBytes = 64 << 10
	// serveIdleTimeout closes keep-alive connections left idle.
	serveIdleTimeout = 2 * time.Minute
	// serveDrainTimeout is how long, after the grace, the canceled calls get
	// to write their final status before the connections are closed.
	serveDrainTimeout = time.Second
)

// serveConfig holds the values of corsgate serve's flags, after --config.
type serveConfig struct {
	cors              cliflags.CORS
	listen            string
	backend           string
	backendTLS        bool
	backendCA         string
	backendServerName string
	backendInsecure   bool
	tlsCert           string
	tlsKey            string
	descriptors       string
	configPath        string
	maxMessageSize    int
	maxRequestBuffer  int64
	metricsListen     string
	grpcListen        string
	shutdownGrace     time.Duration
	backendCert       string
	backendKey        string
	clientCA          string
	clientAuth        string
	websockets        websocketFlags
	accessLog         accessLogFlags
	// services are the config file's per-procedure rules, nil without.
	services []interceptor.Service
	// file is the config file, nil without; its backends and routes make
	// a routed gateway.
	file *config.File
	// cmdLine are the flags given on the command line, which a reload
	// applies again over the file.
	cmdLine cmdLine
	// watch reloads on changes of the config and TLS files.
	watch bool
}

func newServeCmd() *cobra.Command {
	var cfg serveConfig
	cmd := &cobra.Command{
		Use:   "serve --backend HOST:PORT",
		Short: "Serve gRPC-Web and Connect to browsers in front of a gRPC backend",
		Long: `Serve gRPC-Web (binary and text), Connect (unary, GET, streams) and gRPC on
--listen, translated to gRPC for --backend, with CORS decided per procedure from
the backend's descriptors: --descriptors (a buf image or FileDescriptorSet), or
else the backend's server reflection, refreshed every minute.

--listen speaks HTTP/1.1 and HTTP/2 without TLS (h2c), or HTTP/1.1 and HTTP/2
over TLS with --tls-cert and --tls-key. The backend is reached over h2c, or TLS
with an https:// --backend, --backend-tls, --backend-ca or --backend-server-name;
the backend's certificate is always verified, unless
--backend-insecure-skip-verify (test setups only) turns that off with a warning.
Only procedures in the descriptors are served; others get UNIMPLEMENTED.

GET /healthz answers 200 when the backend is healthy (grpc.health.v1 when it
has it), and grpc.health.v1.Health is served too. --metrics-listen serves
Prometheus metrics on /metrics. On SIGINT or SIGTERM the gateway stops
accepting, lets calls finish for --shutdown-grace, then cancels the rest.

--config FILE reads a YAML file whose keys are these flags' names, plus an
optional services: list of per-procedure CORS rules; flags given on the
command line win. In place of --backend, its backends: section names several
backends (addresses, TLS, descriptors each) and its routes: section sends
services to them, each route with CORS settings of its own (see README).

--grpc-listen ADDR also serves gRPC (only gRPC) on a listener of its own,
through grpc-go's HTTP/2 server, which costs less per call than --listen's; the
same routes, limits, metrics and tracing apply, and --tls-cert, --tls-key and
--client-ca too. gRPC-Web and Connect stay on --listen.

--client-ca verifies client certificates on the TLS listener (--client-auth
require, the default, or verify-if-given); --backend-cert and --backend-key
present one to the backend (mutual TLS).`,
		Example: `  corsgate serve --backend 127.0.0.1:9090 --allow-origin https://app.example.com
  corsgate serve --config corsgate.yaml
  corsgate serve --backend https://api.internal:443 --descriptors image.binpb \
    --tls-cert cert.pem --tls-key key.pem --listen :8443 --metrics-listen 127.0.0.1:9100`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.cmdLine = commandLine(cmd.Flags())
			if err := cfg.applyConfigFile(cmd.Flags()); err != nil {
				return err
			}
			level := new(slog.LevelVar)
			if err := cliflags.SetLevel(level, cfg.cors.LogLevel); err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			cfg.accessLog.out = cmd.OutOrStdout()
			return runServe(cmd.Context(), &cfg, log, level, cmd.OutOrStdout())
		},
	}
	cfg.register(cmd.Flags())
	return cmd
}

// register defines corsgate serve's flags on fs, bound to c.
func (c *serveConfig) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.listen, "listen", defaultServeListen, "address to serve on (host:port)")
	fs.StringVar(&c.backend, "backend", "", `gRPC backend: "host:port" or "http://host:port" (h2c), "https://host:port" (TLS); required`)
	fs.BoolVar(&c.backendTLS, "backend-tls", false, "use TLS to the backend even for host:port")
	fs.StringVar(&c.backendCA, "backend-ca", "", "PEM file of CAs that verify the backend (implies TLS); default: the system's")
	fs.StringVar(&c.backendServerName, "backend-server-name", "", "name to verify in the backend's certificate (implies TLS); default: the backend's host")
	fs.BoolVar(&c.backendInsecure, flagBackendInsecure, false, "use TLS to the backend WITHOUT verifying its certificate (implies TLS; test setups only; logs a warning)")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "PEM certificate to serve TLS with (with --tls-key)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&c.descriptors, "descriptors", "", "buf image or binary FileDescriptorSet of the backend's services; default: server reflection")
	fs.StringVar(&c.configPath, "config", "", "YAML config file; keys are these flags' names, flags given here win; reloaded on SIGHUP and, with --watch, when it changes")
	fs.BoolVar(&c.watch, "watch", true, "reload when --config or the TLS certificate, key or client CA files change (SIGHUP reloads either way)")
	fs.IntVar(&c.maxMessageSize, "max-message-size", gateway.DefaultMaxMessageSize, "largest message in bytes, either direction; larger ones fail with RESOURCE_EXHAUSTED")
	fs.Int64Var(&c.maxRequestBuffer, "max-request-buffer", gateway.DefaultMaxRequestBuffer, "most request bytes buffered at once over all calls; past it calls fail with RESOURCE_EXHAUSTED (at least --max-message-size + 5)")
	fs.StringVar(&c.metricsListen, "metrics-listen", "", "address to serve Prometheus /metrics on (host:port); default: none")
	fs.StringVar(&c.grpcListen, flagGRPCListen, "", "also serve gRPC only on this address (host:port) with grpc-go's HTTP/2 server, faster for gRPC clients; TLS flags apply; default: none (gRPC on --listen)")
	fs.DurationVar(&c.shutdownGrace, "shutdown-grace", defaultShutdownGrace, "at shutdown, how long calls in flight may take before they are canceled")
	fs.StringVar(&c.backendCert, "backend-cert", "", "PEM client certificate to present to the backend, mutual TLS (with --backend-key; implies TLS)")
	fs.StringVar(&c.backendKey, "backend-key", "", "PEM private key of --backend-cert")
	fs.StringVar(&c.clientCA, "client-ca", "", "PEM file of CAs that verify client certificates on --listen (needs --tls-cert)")
	fs.StringVar(&c.clientAuth, "client-auth", "", "with --client-ca: require (the default) or verify-if-given")
	c.websockets.register(fs)
	c.accessLog.register(fs)
	c.cors.Register(fs)
}

// applyConfigFile loads --config, if given, into the flags not given on the
// command line.
func (c *serveConfig) applyConfigFile(fs *pflag.FlagSet) error {
	if c.configPath == "" {
		return nil
	}
	file, err := config.Load(c.configPath)
	if err != nil {
		return &cliflags.UsageError{Err: err}
	}
	values := file.Values()
	delete(values, "config")
	if err := cliflags.ApplyUnchanged(fs, values); err != nil {
		return fmt.Errorf("%s: %w", c.configPath, err)
	}
	if file.Has("backends") {
		c.file = file
	}
	if file.Has("services") {
		c.services = file.Services
		if c.services == nil {
			c.services = []interceptor.Service{}
		}
	}
	return nil
}

// serveServer is a configured gateway with its HTTP servers, not yet
// listening. Its handler serves the gateway of the config in force, which
// a reload (see serve_reload.go) swaps.
type serveServer struct {
	log     *slog.Logger
	level   *slog.LevelVar // the log level, set again by reloads
	handler *swapHandler
	srv     *http.Server
	metrics *http.Server // nil without --metrics-listen
	grpc    *grpc.Server // nil without --grpc-listen
	useTLS  bool
	tracing *serveTracing // nil: tracing off
	// gwTracing is what every generation's gateway traces with: the
	// OTEL_* environment is read once, at start.
	gwTracing *gateway.Tracing
	// stop cancels the handlers' base context: the end of the grace.
	stop context.CancelFunc

	// gwMetrics are the gateway metrics every generation shares, nil
	// without --metrics-listen; reloads counts reloads by result.
	gwMetrics *gateway.Metrics
	reloads   *prometheus.CounterVec
	// clients are the backend clients that generations share.
	clients *gateway.Clients
	// tlsConf is the listener's TLS config in force, nil without TLS.
	tlsConf atomic.Pointer[tls.Config]

	mu  sync.Mutex   // serializes reloads
	cfg *serveConfig // the config in force, under mu
}

// heapAllocsMetrics adds runtime/metrics' heap allocation counters to the Go
// collector's defaults: go_gc_heap_allocs_bytes_total and
// go_gc_heap_allocs_objects_total, from which the bench computes the bytes
// and objects allocated per call.
var heapAllocsMetrics = collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/gc/heap/allocs:(bytes|objects)$`)}

// newServeServer validates cfg and builds the gateway and its servers. Every
// refused value is a [cliflags.UsageError] naming its flag. level is the
// level of log that reloads set, nil to leave it.
func newServeServer(cfg *serveConfig, log *slog.Logger, level *slog.LevelVar) (*serveServer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &serveServer{cfg: cfg, log: log, level: level, useTLS: cfg.tlsCert != "", clients: gateway.NewClients()}
	if cfg.metricsListen != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(heapAllocsMetrics)),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		var err error
		if s.gwMetrics, err = gateway.NewMetrics(reg); err != nil {
			return nil, err
		}
		if s.reloads, err = newReloadMetric(reg); err != nil {
			return nil, err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		s.mountDebugPolicy(mux)
		s.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: serveReadHeaderTimeout}
	}
	var tc *tls.Config
	if s.useTLS {
		var err error
		if tc, err = cfg.listenerTLS(); err != nil {
			return nil, err
		}
		s.tlsConf.Store(tc)
	}
	var err error
	if s.tracing, s.gwTracing, err = newServeTracing(context.Background(), log); err != nil {
		return nil, err
	}
	gw, err := cfg.newGateway(log, s.gwMetrics, s.clients, s.gwTracing)
	if err != nil {
		s.tracing.shutdown(context.Background(), log)
		return nil, err
	}
	s.handler = newSwapHandler(gw)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if s.useTLS {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true)
	}
	baseCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.srv = &http.Server{
		Handler:           s.handler,
		Protocols:         &protocols,
		ReadHeaderTimeout: serveReadHeaderTimeout,
		MaxHeaderBytes:    serveMaxHeaderBytes,
		IdleTimeout:       serveIdleTimeout,
		// No WriteTimeout: it would cut streams.
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		BaseContext: func(net.Listener) context.Context { return baseCtx },
	}
	if s.useTLS {
		// Each handshake takes the config in force: a reload (or a
		// rotation of the certificate files) reaches new connections
		// without a restart.
		s.srv.TLSConfig = &tls.Config{
			MinVersion: tls.VersionTLS12,
			GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
				return s.tlsConf.Load(), nil
			},
		}
	}
	if cfg.grpcListen != "" {
		s.grpc = gateway.NewGRPCServer(s.handler.enter, s.grpcOptions()...)
	}
	return s, nil
}

// gateway returns the gateway in force.
func (s *serveServer) gateway() *gateway.Gateway { return s.handler.current().gw }

// newGateway builds the gateway of c, its backends' clients taken from
// clients.
func (c *serveConfig) newGateway(log *slog.Logger, metrics *gateway.Metrics, clients *gateway.Clients, tracing *gateway.Tracing) (*gateway.Gateway, error) {
	gwCfg := gateway.Config{
		AccessLog:        c.accessLog.logger(),
		Services:         c.services,
		MaxMessageSize:   c.maxMessageSize,
		MaxRequestBuffer: c.maxRequestBuffer,
		Logger:           log,
		Metrics:          metrics,
		WebSockets:       c.websockets.config(),
		Clients:          clients,
		Tracing:          tracing,
	}
	var err error
	if c.file != nil {
		err = c.routedConfig(&gwCfg, log, metrics)
	} else {
		err = c.singleConfig(&gwCfg, log, metrics)
	}
	if err != nil {
		return nil, err
	}
	gw, err := gateway.New(gwCfg)
	if err != nil {
		var re *gateway.RoutingError
		if errors.As(err, &re) {
			return nil, cliflags.Usagef("%s: %w", re.Key, re.Err)
		}
		var ce *gateway.ConfigError
		if errors.As(err, &ce) {
			return nil, cliflags.Usagef("%s: %w", configKey(ce.Field), ce.Err)
		}
		return nil, err
	}
	return gw, nil
}

// listenerTLS reads the listener's certificate, key and client CAs: the
// config each TLS handshake on --listen uses.
func (c *serveConfig) listenerTLS() (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
	if err != nil {
		return nil, cliflags.Usagef("--tls-cert/--tls-key: %w", err)
	}
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		// The config replaces the server's, ALPN included.
		NextProtos: []string{"h2", "http/1.1"},
	}
	if c.clientCA != "" {
		pool, err := loadCAs("--client-ca", c.clientCA)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
		if c.clientAuth == "verify-if-given" {
			tc.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return tc, nil
}

// grpcOptions are the --grpc-listen server's settings, those of --listen's
// http.Server: the same bounds on the handshake, the request headers and
// idle connections, and the same TLS.
func (s *serveServer) grpcOptions() []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.ConnectionTimeout(serveReadHeaderTimeout),
		grpc.MaxHeaderListSize(serveMaxHeaderBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: serveIdleTimeout}),
	}
	if s.useTLS {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.srv.TLSConfig)))
	}
	return opts
}

// configKey names the flag or config key behind a gateway.Config field.
func configKey(field string) string {
	switch field {
	case "Backend":
		return "--backend"
	case "MaxMessageSize":
		return "--max-message-size"
	case "MaxRequestBuffer":
		return "--max-request-buffer"
	case "Files":
		return "--descriptors"
	case "Services":
		return "services"
	case "WebSockets.MaxStreams":
		return "--" + flagWebSocketMaxStreams
	}
	return field
}

func (c *serveConfig) validate() error {
	switch {
	case c.backend == "" && c.file == nil:
		return cliflags.Usagef("--backend is required (the gRPC server, host:port), or a --config with backends")
	case c.backend != "" && c.file != nil:
		return cliflags.Usagef("--backend with the backends of --config %s: give one", c.configPath)
	case c.file != nil && (c.backendTLS || c.backendCA != "" || c.backendServerName != "" || c.backendInsecure || c.backendCert != "" || c.descriptors != ""):
		return cliflags.Usagef("--backend-* and --descriptors flags with the backends of --config %s: set them per backend", c.configPath)
	case (c.backendCert == "") != (c.backendKey == ""):
		return cliflags.Usagef("--backend-cert and --backend-key go together")
	case c.clientCA != "" && c.tlsCert == "":
		return cliflags.Usagef("--client-ca needs --tls-cert: client certificates come with TLS")
	case c.clientAuth != "" && c.clientCA == "":
		return cliflags.Usagef("--client-auth needs --client-ca")
	case (c.tlsCert == "") != (c.tlsKey == ""):
		return cliflags.Usagef("--tls-cert and --tls-key go together")
	case c.maxMessageSize <= 0 || c.maxMessageSize > config.MaxMessageSize:
		return cliflags.Usagef("--max-message-size %d: must be between 1 and %d", c.maxMessageSize, config.MaxMessageSize)
	case c.maxRequestBuffer <= 0 || c.maxRequestBuffer > config.MaxRequestBuffer:
		return cliflags.Usagef("--max-request-buffer %d: must be between 1 and %d", c.maxRequestBuffer, int64(config.MaxRequestBuffer))
	case c.shutdownGrace < 0 || c.shutdownGrace > config.MaxShutdownGrace:
		return cliflags.Usagef("--shutdown-grace %v: must be between 0 and %v", c.shutdownGrace, config.MaxShutdownGrace)
	}
	if c.clientAuth != "" {
		if err := config.CheckClientAuth(c.clientAuth); err != nil {
			return cliflags.Usagef("--client-auth %w", err)
		}
	}
	if err := c.websockets.validate(); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(c.listen); err != nil {
		return cliflags.Usagef("--listen %q: %w", c.listen, err)
	}
	if c.metricsListen != "" {
		if _, _, err := net.SplitHostPort(c.metricsListen); err != nil {
			return cliflags.Usagef("--metrics-listen %q: %w", c.metricsListen, err)
		}
	}
	if c.grpcListen != "" {
		_, port, err := net.SplitHostPort(c.grpcListen)
		switch {
		case err != nil:
			return cliflags.Usagef("--%s %q: %w", flagGRPCListen, c.grpcListen, err)
		case port != "0" && (c.grpcListen == c.listen || c.grpcListen == c.metricsListen):
			return cliflags.Usagef("--%s %q is the address of another listener: give it a port of its own", flagGRPCListen, c.grpcListen)
		}
	}
	return nil
}

// Serve serves on ln (the metrics on metricsLn and gRPC on grpcLn, when not
// nil) until ctx is done, reloading the config on SIGHUP and when --config
// or the TLS files change (see [serveServer.reload]), then shuts down: it
// stops accepting, lets calls in flight finish for the shutdown grace,
// cancels the rest, and closes the gateways. It returns nil after a
// shutdown caused by ctx.
func (s *serveServer) Serve(ctx context.Context, ln, metricsLn, grpcLn net.Listener) error {
	defer s.stop()
	// Before the first request is served: a SIGHUP from then on reloads.
	hup, stopHUP := notifyReloads()
	defer stopHUP()
	errc := make(chan error, 3)
	go func() {
		var err error
		if s.useTLS {
			err = s.srv.ServeTLS(ln, "", "")
		} else {
			err = s.srv.Serve(ln)
		}
		errc <- err
	}()
	if s.metrics != nil && metricsLn != nil {
		go func() { errc <- s.metrics.Serve(metricsLn) }()
	}
	reloadCtx, stopReloads := context.WithCancel(ctx)
	reloading := make(chan struct{})
	go func() {
		defer close(reloading)
		s.watchReloads(reloadCtx, hup)
	}()
	grpcStopped := make(chan struct{}) // closed when GracefulStop returns
	if s.grpc != nil && grpcLn != nil {
		go func() { errc <- s.grpc.Serve(grpcLn) }()
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	stopReloads()
	<-reloading
	grace := s.config().shutdownGrace
	s.log.Info("corsgate serve: shutting down", "grace", grace)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if s.metrics != nil {
		_ = s.metrics.Shutdown(shutdownCtx)
	}
	if s.grpc != nil {
		go func() {
			s.grpc.GracefulStop()
			close(grpcStopped)
		}()
	}
	if err := s.srv.Shutdown(shutdownCtx); err != nil {
		s.log.Warn("corsgate serve: grace expired; canceling the calls still open")
		s.stop()
		// The canceled handlers write their final status (CANCELED) and
		// return; give them a moment before the connections close under
		// them, so that every stream ends with a status, not a cut.
		drainCtx, cancelDrain := context.WithTimeout(context.Background(), serveDrainTimeout)
		defer cancelDrain()
		if err := s.srv.Shutdown(drainCtx); err != nil {
			_ = s.srv.Close()
		}
	}
	if s.grpc != nil {
		select {
		case <-grpcStopped:
		case <-shutdownCtx.Done():
			// The grace is over: grpc-go cancels the calls still open and
			// closes their connections.
			s.grpc.Stop()
			<-grpcStopped
		}
	}
	s.handler.closeAll()
	flushCtx, cancelFlush := context.WithTimeout(context.Background(), tracingFlushTimeout)
	defer cancelFlush()
	s.tracing.shutdown(flushCtx, s.log)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) && !errors.Is(serveErr, grpc.ErrServerStopped) {
		return serveErr
	}
	return nil
}

// config returns the config in force.
func (s *serveServer) config() *serveConfig {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// runServe builds the server, listens, prints the gateway's URL and serves
// until ctx is done. level is log's level, which reloads set.
func runServe(ctx context.Context, cfg *serveConfig, log *slog.Logger, level *slog.LevelVar, stdout io.Writer) error {
	s, err := newServeServer(cfg, log, level)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		s.handler.closeAll()
		return fmt.Errorf("--listen: %w", err)
	}
	var metricsLn, grpcLn net.Listener
	if cfg.metricsListen != "" {
		if metricsLn, err = net.Listen("tcp", cfg.metricsListen); err != nil {
			_ = ln.Close()
			s.handler.closeAll()
			return fmt.Errorf("--metrics-listen: %w", err)
		}
	}
	if cfg.grpcListen != "" {
		if grpcLn, err = net.Listen("tcp", cfg.grpcListen); err != nil {
			_ = ln.Close()
			if metricsLn != nil {
				_ = metricsLn.Close()
			}
			s.handler.closeAll()
			return fmt.Errorf("--%s: %w", flagGRPCListen, err)
		}
	}
	scheme := "http"
	if s.useTLS {
		scheme = "https"
	}
	if _, err := fmt.Fprintf(stdout, "Gateway: %s://%s\n", scheme, ln.Addr()); err != nil {
		return err
	}
	if metricsLn != nil {
		if _, err := fmt.Fprintf(stdout, "Metrics: http://%s/metrics\n", metricsLn.Addr()); err != nil {
			return err
		}
	}
	if grpcLn != nil {
		if _, err := fmt.Fprintf(stdout, "gRPC: %s\n", grpcLn.Addr()); err != nil {
			return err
		}
	}
	if cfg.file != nil {
		log.Info("corsgate serve: serving", "listen", ln.Addr().String(), "backends", len(cfg.file.Backends), "routes", len(cfg.file.Routes))
	} else {
		log.Info("corsgate serve: serving", "listen", ln.Addr().String(), "backend", cfg.backend, "descriptors", descriptorSource(cfg))
	}
	return s.Serve(ctx, ln, metricsLn, grpcLn)
}

func descriptorSource(cfg *serveConfig) string {
	if cfg.descriptors != "" {
		return cfg.descriptors
	}
	return "server reflection"
}
