package gateway

import (
	"context"
	"errors"
	"time"

	"connectrpc.com/connect"

	"github.com/corsgate/corsgate/internal/wire"
)

// rpcStatus is the gateway's name for [wire.Status], the outcome of a call
// in gRPC terms: what the backend put in its grpc-status, grpc-message and
// grpc-status-details-bin trailers, or what the gateway decided itself.
type rpcStatus = wire.Status

// errorf makes a gateway-made status.
func errorf(code connect.Code, msg string) *rpcStatus {
	return wire.NewStatus(code, msg)
}

// deadlineSlack is how close to the client's deadline a call that fails
// counts as having run out of time: the backend enforces the same deadline,
// and may reset the stream rather than answer.
const deadlineSlack = 20 * time.Millisecond

// deadlineGrace is how long after the client's deadline the gateway stops
// waiting for the backend (see call.run).
const deadlineGrace = 100 * time.Millisecond

// statusFromError maps an error of the backend round trip or of copying a
// body to a status. deadline is the client's, zero without one.
func statusFromError(ctx context.Context, deadline time.Time, err error) *rpcStatus {
	var st *rpcStatus
	switch {
	case errors.As(err, &st):
		return st
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded),
		!deadline.IsZero() && time.Until(deadline) < deadlineSlack:
		return errorf(connect.CodeDeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return errorf(connect.CodeCanceled, "request canceled")
	default:
		return errorf(connect.CodeUnavailable, "backend unavailable: "+err.Error())
	}
}
