package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"

	"github.com/corsgate/corsgate/gateway"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/cliflags"
)

// singleConfig fills gw for --backend: one backend, every service it has.
func (c *serveConfig) singleConfig(gw *gateway.Config, log *slog.Logger, metrics *gateway.Metrics) error {
	tc, err := backendTLS(backendTLSSettings{
		tls: c.backendTLS, ca: c.backendCA, serverName: c.backendServerName, insecure: c.backendInsecure,
		cert: c.backendCert, key: c.backendKey,
	}, func(key string) string { return "--backend-" + key })
	if err != nil {
		return err
	}
	if c.backendInsecure {
		log.Warn("corsgate serve: backend certificate verification is OFF (--" + flagBackendInsecure + "); anyone on the path to the backend can read and change calls")
	}
	gw.Backend, gw.BackendTLS = c.backend, tc
	if c.descriptors != "" {
		if gw.Files, err = gateway.LoadDescriptorFile(c.descriptors); err != nil {
			return cliflags.Usagef("--descriptors: %w", err)
		}
	}
	var opts []interceptor.Option
	if metrics != nil {
		opts = append(opts, interceptor.WithObserver(metrics.ObserveVerdict))
	}
	gw.Policy, err = c.cors.Policy(log, opts...)
	return err
}

// routedConfig fills gw from the config file's backends and routes: the
// backends in name order, each route's policy the defaults (the CORS flags
// and keys) with the route's own keys in place.
func (c *serveConfig) routedConfig(gw *gateway.Config, log *slog.Logger, metrics *gateway.Metrics) error {
	var err error
	if gw.Policy, err = c.cors.Policy(log, interceptor.WithObserver(metrics.VerdictObserver(gateway.NoBackend))); err != nil {
		return err
	}
	for _, name := range c.file.BackendNames() {
		bf := c.file.Backends[name]
		prefix := "backends." + name
		tc, err := backendTLS(backendTLSSettings{
			tls: bf.TLS, ca: bf.CA, serverName: bf.ServerName, insecure: bf.InsecureSkipVerify, cert: bf.Cert, key: bf.Key,
		}, func(key string) string { return prefix + "." + key })
		if err != nil {
			return err
		}
		if bf.InsecureSkipVerify {
			log.Warn("corsgate serve: backend certificate verification is OFF (" + prefix + ".insecure-skip-verify); anyone on the path to the backend can read and change calls")
		}
		b := gateway.Backend{Name: name, Addresses: bf.Addresses, TLS: tc}
		if bf.Descriptors != "" {
			if b.Files, err = gateway.LoadDescriptorFile(bf.Descriptors); err != nil {
				return cliflags.Usagef("%s.descriptors: %w", prefix, err)
			}
		}
		if b.Policy, err = c.cors.Policy(log, interceptor.WithObserver(metrics.VerdictObserver(name))); err != nil {
			return err
		}
		gw.Backends = append(gw.Backends, b)
	}
	for i, rf := range c.file.Routes {
		name := fmt.Sprintf("routes[%d]", i)
		policy, err := c.cors.RoutePolicy(name, rf.Overrides(), interceptor.WithLogger(log),
			interceptor.WithObserver(metrics.VerdictObserver(rf.Backend)))
		if err != nil {
			return err
		}
		gw.Routes = append(gw.Routes, gateway.Route{Services: rf.Services, Backend: rf.Backend, Policy: policy, Name: name})
	}
	return nil
}

// backendTLSSettings are the TLS settings of one backend, from flags or
// from its backends entry.
type backendTLSSettings struct {
	tls                       bool
	ca, serverName, cert, key string
	insecure                  bool
}

// backendTLS is the TLS configuration to a backend, nil for h2c (or for an
// https:// backend verified with the system's roots). name says a
// setting's flag or key ("ca" → "--backend-ca").
func backendTLS(s backendTLSSettings, name func(string) string) (*tls.Config, error) {
	if !s.tls && s.ca == "" && s.serverName == "" && !s.insecure && s.cert == "" {
		return nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.serverName}
	if s.insecure {
		if s.ca != "" {
			return nil, cliflags.Usagef("%s with %s: the CA would not be used; drop one", name("insecure-skip-verify"), name("ca"))
		}
		conf.InsecureSkipVerify = true //nolint:gosec // asked for explicitly, and logged
	}
	if s.ca != "" {
		pool, err := loadCAs(name("ca"), s.ca)
		if err != nil {
			return nil, err
		}
		conf.RootCAs = pool
	}
	if s.cert != "" {
		cert, err := tls.LoadX509KeyPair(s.cert, s.key)
		if err != nil {
			return nil, cliflags.Usagef("%s/%s: %w", name("cert"), name("key"), err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}

// loadCAs reads a PEM file of CA certificates; what names the setting.
func loadCAs(what, path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, cliflags.Usagef("%s: %w", what, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, cliflags.Usagef("%s %q: no PEM certificate in it", what, path)
	}
	return pool, nil
}
