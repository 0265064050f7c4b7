package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/corsgate/corsgate/internal/balancer"
)

// healthTimeout bounds a backend health check made for /healthz or for
// grpc.health.v1 callers without a deadline.
const healthTimeout = 3 * time.Second

// CheckBackend reports whether every backend is usable: nil when each
// answers grpc.health.v1.Health/Check for the whole server with SERVING, or
// has no health service but answers gRPC at all. In reflection mode the
// gateway must also have loaded each backend's descriptors. The error names
// the backends at fault.
func (g *Gateway) CheckBackend(ctx context.Context) error {
	var errs []error
	for i, err := range g.checkBackends(ctx) {
		if err != nil {
			if len(g.backends) > 1 {
				err = fmt.Errorf("backend %s: %w", g.backends[i].name, err)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkBackends checks every backend at once; the errors are in the order
// of g.backends.
func (g *Gateway) checkBackends(ctx context.Context) []error {
	errs := make([]error, len(g.backends))
	if len(g.backends) == 1 {
		errs[0] = g.backends[0].check(ctx)
		return errs
	}
	var wg sync.WaitGroup
	for i, b := range g.backends {
		wg.Go(func() { errs[i] = b.check(ctx) })
	}
	wg.Wait()
	return errs
}

// check reports whether the backend is usable.
func (b *backend) check(ctx context.Context) error {
	if !b.loaded() {
		return b.noDescriptors()
	}
	st, err := b.health(ctx, "")
	if err != nil {
		return err
	}
	if st != grpchealth.StatusServing {
		return fmt.Errorf("backend %s reports %s", b.authority, st)
	}
	return nil
}

// health asks the backend's grpc.health.v1 about service. A backend
// without the health service counts as SERVING for the whole server.
func (b *backend) health(ctx context.Context, service string) (grpchealth.Status, error) {
	client := grpchealth.NewClient(b.http, b.baseURL, connect.WithGRPC())
	resp, err := client.Check(ctx, &grpchealth.CheckRequest{Service: service})
	if err != nil {
		if connect.CodeOf(err) == connect.CodeUnimplemented && service == "" {
			return grpchealth.StatusServing, nil
		}
		return grpchealth.StatusUnknown, fmt.Errorf("backend %s health: %w", b.authority, err)
	}
	return resp.Status, nil
}

// serveHealthz answers /healthz: 200 "ok" when every backend is usable, 503
// with the reasons otherwise. With several backends, one line per backend
// follows, and a routing table refused after new descriptors is reported
// (without failing the check: the last good table serves).
func (g *Gateway) serveHealthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	errs := g.checkBackends(ctx)
	var detail strings.Builder
	failed := false
	for i, b := range g.backends {
		err := errs[i]
		failed = failed || err != nil
		if len(g.backends) > 1 {
			if err != nil {
				fmt.Fprintf(&detail, "backend %s: unhealthy: %v\n", b.name, err)
			} else {
				fmt.Fprintf(&detail, "backend %s: ok\n", b.name)
			}
		}
		if pool, ok := b.client.(*balancer.Pool); ok {
			ready, all := 0, 0
			for _, r := range pool.Replicas() {
				all++
				if r.State == balancer.StateReady {
					ready++
				}
			}
			fmt.Fprintf(&detail, "backend %s: %d of %d replicas ready\n", b.name, ready, all)
		}
		if rerr := b.routingErr.Load(); rerr != nil {
			fmt.Fprintf(&detail, "backend %s: routing table refused, the last good one serves: %v\n", b.name, rerr)
		}
	}
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
		if len(g.backends) == 1 {
			fmt.Fprintf(w, "unhealthy: %v\n", errs[0])
		} else {
			fmt.Fprintln(w, "unhealthy")
		}
	} else {
		fmt.Fprintln(w, "ok")
	}
	fmt.Fprint(w, detail.String())
}

// newHealthHandler serves grpc.health.v1.Health itself (gRPC, gRPC-Web and
// Connect): the whole server ("") is SERVING when every backend is usable;
// a named service is what its backend says of it, or, for a backend
// without a health service, SERVING when the service is routed.
func (g *Gateway) newHealthHandler() (string, http.Handler) {
	return grpchealth.NewHandler(healthChecker{g})
}

type healthChecker struct{ g *Gateway }

func (h healthChecker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, healthTimeout)
		defer cancel()
	}
	if req.Service == "" {
		if err := h.g.CheckBackend(ctx); err != nil {
			return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
		}
		return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
	}
	b := h.g.state.Load().services[req.Service]
	if b == nil {
		if len(h.g.backends) > 1 {
			return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %s", req.Service))
		}
		b = h.g.backends[0]
	}
	st, err := b.health(ctx, req.Service)
	if err == nil {
		return &grpchealth.CheckResponse{Status: st}, nil
	}
	var cerr *connect.Error
	if errors.As(err, &cerr) && cerr.Code() == connect.CodeUnimplemented {
		if h.g.serves(req.Service) {
			return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
		}
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %s", req.Service))
	}
	if errors.As(err, &cerr) && cerr.Code() == connect.CodeNotFound {
		return nil, cerr
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
}

// serves reports whether the gateway routes the service.
func (g *Gateway) serves(service string) bool {
	return g.state.Load().services[service] != nil
}
