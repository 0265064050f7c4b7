package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/corsgate/corsgate/gateway"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/cliflags"
	"github.com/corsgate/corsgate/internal/config"
)

// routedTable resolves --procedure through the routing table of a config
// with backends, built by the gateway's code as corsgate serve builds it,
// and returns the CORS rules and the policy of its route, with a source
// line naming the route, the backend and the route's settings.
func (f *explainFlags) routedTable(ctx context.Context, file *config.File, log *slog.Logger) (*interceptor.Table, string, *interceptor.Policy, error) {
	g, err := f.routedGateway(ctx, file, log)
	if err != nil {
		return nil, "", nil, err
	}
	defer g.Close()
	res, ok := g.Resolve(f.procedure)
	if !ok {
		return nil, "", nil, fmt.Errorf("%s is not routed by %s: no backend serves it (UNIMPLEMENTED)", f.procedure, f.configPath)
	}
	settings := f.cors
	route := "no route (the one backend that has the service)"
	if res.Route != "" {
		route = res.Route
		for i, rf := range file.Routes {
			if fmt.Sprintf("routes[%d]", i) == res.Route { // the names routedConfig gives
				settings = settings.With(rf.Overrides())
				route += " (services " + strings.Join(rf.Services, ", ") + ")"
			}
		}
	}
	source := fmt.Sprintf("%s\nroute: %s\nbackend: %s\npolicy: %s", "routing table of "+f.configPath, route, res.Backend, describePolicy(settings))
	return res.Table, source, res.Policy, nil
}

// routedGateway builds the gateway of a config with backends, as corsgate
// serve builds it, and waits for every backend's descriptors. The caller
// closes it.
func (f *explainFlags) routedGateway(ctx context.Context, file *config.File, log *slog.Logger) (*gateway.Gateway, error) {
	sc := &serveConfig{cors: f.cors, file: file, configPath: f.configPath}
	var gw gateway.Config
	if err := sc.routedConfig(&gw, log, nil); err != nil {
		return nil, err
	}
	gw.Services, gw.Logger, gw.ReflectionInterval = file.Services, log, -1
	g, err := gateway.New(gw)
	if err != nil {
		var re *gateway.RoutingError
		if errors.As(err, &re) {
			return nil, cliflags.Usagef("config %s: %s: %w", f.configPath, re.Key, re.Err)
		}
		return nil, &cliflags.UsageError{Err: fmt.Errorf("config %s: %w", f.configPath, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if err := g.Ready(ctx); err != nil {
		_ = g.Close()
		return nil, fmt.Errorf("descriptors of the backends of %s: %w", f.configPath, err)
	}
	return g, nil
}

// describePolicy says a route's CORS settings in config-key terms.
func describePolicy(c cliflags.CORS) string {
	list := func(v []string) string {
		if len(v) == 0 {
			return "[]"
		}
		return "[" + strings.Join(v, ", ") + "]"
	}
	return fmt.Sprintf("allow-origin %s, allow-credentials %v, allow-header %s, expose-header %s, max-age %v, strict %v, private-network %v",
		list(c.AllowOrigins), c.AllowCredentials, list(c.AllowHeaders), list(c.ExposeHeaders), c.MaxAge, c.Strict, c.PrivateNetwork)
}
