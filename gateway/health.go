package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// healthTimeout bounds a backend health check made for /healthz or for
// grpc.health.v1 callers without a deadline.
const healthTimeout = 3 * time.Second

// CheckBackend reports whether the backend is usable: nil when it answers
// grpc.health.v1.Health/Check for the whole server with SERVING, or when it
// has no health service but answers gRPC at all. In reflection mode the
// gateway must also have loaded descriptors.
func (g *Gateway) CheckBackend(ctx context.Context) error {
	if !g.state.Load().loaded {
		return errNoDescriptors
	}
	st, err := g.backendHealth(ctx, "")
	if err != nil {
		return err
	}
	if st != grpchealth.StatusServing {
		return fmt.Errorf("backend %s reports %s", g.authority, st)
	}
	return nil
}

// backendHealth asks the backend's grpc.health.v1 about service. A backend
// without the health service counts as SERVING for the whole server.
func (g *Gateway) backendHealth(ctx context.Context, service string) (grpchealth.Status, error) {
	client := grpchealth.NewClient(g.client, g.baseURL, connect.WithGRPC())
	resp, err := client.Check(ctx, &grpchealth.CheckRequest{Service: service})
	if err != nil {
		if connect.CodeOf(err) == connect.CodeUnimplemented && service == "" {
			return grpchealth.StatusServing, nil
		}
		return grpchealth.StatusUnknown, fmt.Errorf("backend %s health: %w", g.authority, err)
	}
	return resp.Status, nil
}

// serveHealthz answers /healthz: 200 "ok" when the backend is usable, 503
// with the reason otherwise.
func (g *Gateway) serveHealthz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), healthTimeout)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := g.CheckBackend(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "unhealthy: %v\n", err)
		return
	}
	fmt.Fprintln(w, "ok")
}

// newHealthHandler serves grpc.health.v1.Health itself (gRPC, gRPC-Web and
// Connect): the whole server ("") is SERVING when the backend is usable;
// a named service is what the backend says of it, or, for a backend without
// a health service, SERVING when the service is routed.
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
	st, err := h.g.backendHealth(ctx, req.Service)
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
	st := g.state.Load()
	if st.files == nil {
		return false
	}
	_, err := st.files.FindDescriptorByName(protoreflect.FullName(service))
	return err == nil
}
