package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"go.opentelemetry.io/otel/trace"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // clients' gzip messages, as on the HTTP listener
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/internal/rpctrace"
	"github.com/corsgate/corsgate/internal/wire"
)

// Defaults of the server [Gateway.GRPCServer] returns, as net/http's
// HTTP/2 server has them: grpc-go's own defaults are no stream limit and
// 16 MiB of request headers.
const (
	defaultGRPCMaxStreams    = 250
	defaultGRPCMaxHeaderList = 1 << 20
)

// GRPCServer returns a grpc-go server that passes gRPC calls through to the
// backends on grpc-go's own HTTP/2 transport, for clients that speak gRPC
// itself (application/grpc over h2c prior knowledge, or TLS): it costs less
// per call than [Gateway.ServeHTTP]'s gRPC pass-through on net/http's HTTP/2
// server. It answers gRPC only: gRPC-Web and Connect, which browsers and
// connect-go clients send over HTTP/1.1 or HTTP/2 alike, stay on
// ServeHTTP, so serve it on a listener of its own.
//
// Calls go where ServeHTTP sends them: the same routing table, backends
// and descriptors; procedures not routed get UNIMPLEMENTED (UNAVAILABLE
// while their backend's descriptors are pending), and grpc.health.v1.Health
// is the gateway's own. Metadata passes both ways but for hop-by-hop,
// protocol and CORS headers; the deadline (grpc-timeout) and cancellation
// reach the backend; header and trailer metadata, the status and
// grpc-status-details-bin come back. Messages are checked against
// [Config.MaxMessageSize] (RESOURCE_EXHAUSTED) and are forwarded
// uncompressed: a client's gzip messages are decompressed, and answers are
// compressed as the client's request was, as grpc-go does. Each message is
// held whole on its way, so a backend message larger than MaxMessageSize
// and 64 MiB fails the call with RESOURCE_EXHAUSTED. Calls are
// counted in [Metrics] and traced as ServeHTTP's are, with protocol "grpc".
// CORS does not apply: browsers never speak gRPC. [Config.StallTimeout] and
// [Config.BodyTimeout] do not apply either: grpc-go's flow control holds
// a slow client to its stream window.
//
// opts are applied after the gateway's defaults (at most 250 concurrent
// streams per connection and 1 MiB of request headers, as net/http's
// HTTP/2 server has them) and may replace them; the codec, the unknown
// service handler and the receive size limit are the gateway's and must not
// be set. Pass grpc.Creds for TLS. Stop the server (GracefulStop) before
// [Gateway.Close]. Each call returns a new server.
func (g *Gateway) GRPCServer(opts ...grpc.ServerOption) *grpc.Server {
	return NewGRPCServer(func() (*Gateway, func()) { return g, func() {} }, opts...)
}

// NewGRPCServer is [Gateway.GRPCServer] for a gateway that changes, as
// live reload swaps it: each call, health checks included, is served to its
// end by the gateway current returns when it arrives, and current's done
// is called when the call ends. The server's receive size limit is the
// [Config.MaxMessageSize] of the gateway current returns now: a later
// gateway's smaller limit applies to its calls, a larger one needs a new
// server.
func NewGRPCServer(current func() (gw *Gateway, done func()), opts ...grpc.ServerOption) *grpc.Server {
	g, done := current()
	maxMsg := g.maxMsg
	done()
	all := make([]grpc.ServerOption, 0, len(opts)+5)
	all = append(all, grpc.MaxConcurrentStreams(defaultGRPCMaxStreams), grpc.MaxHeaderListSize(defaultGRPCMaxHeaderList))
	all = append(all, opts...)
	all = append(all,
		grpc.ForceServerCodecV2(rawCodec{}),
		grpc.UnknownServiceHandler(func(srv any, ss grpc.ServerStream) error {
			g, done := current()
			defer done()
			return g.serveGRPCStream(srv, ss)
		}),
		grpc.MaxRecvMsgSize(maxMsg),
	)
	s := grpc.NewServer(all...)
	healthpb.RegisterHealthServer(s, grpcHealth{current: current})
	return s
}

// grpcProtocol is the protocol label of calls through GRPCServer: gRPC, as
// for the pass-through of ServeHTTP.
const grpcProtocol = "grpc"

// grpcCall is the state of one call through GRPCServer.
type grpcCall struct {
	g        *Gateway
	rt       *route
	ss       grpc.ServerStream
	ctx      context.Context
	deadline time.Time // the client's, zero without one
	share    share
	body     *streamBody // the client's stream, for client-streaming procedures
	span     trace.Span  // nil when tracing is off
}

// serveGRPCStream is the unknown-service handler of GRPCServer: every call
// but health comes here.
func (g *Gateway) serveGRPCStream(_ any, ss grpc.ServerStream) error {
	start := time.Now()
	path, _ := grpc.MethodFromServerStream(ss)
	st := g.state.Load()
	rt := st.routes[path]
	if rt == nil {
		var refusal *rpcStatus
		if b := g.pendingBackend(st, path); b != nil {
			refusal = errorf(connect.CodeUnavailable, b.noDescriptors().Error())
		} else {
			g.kickRefresh(path)
			refusal = errorf(connect.CodeUnimplemented, "procedure "+path+" is not served by the backend")
		}
		g.metrics.observeUnrouted(grpcProtocol, refusal.Code)
		return grpcError(refusal)
	}
	c := &grpcCall{g: g, rt: rt, ss: ss, ctx: ss.Context()}
	if g.budget.limit > 0 {
		c.share.b = &g.budget
	}
	res := c.run()
	c.share.release()
	rt.metrics.observe(grpcProtocol, res.Code, time.Since(start))
	if c.span != nil {
		finishSpan(c.span, rpctrace.System(wire.ProtocolGRPC), res)
	}
	return grpcError(res)
}

// run carries out the call and returns its final status.
func (c *grpcCall) run() *rpcStatus {
	rt := c.rt
	out := &http.Request{
		Method:     http.MethodPost,
		URL:        rt.url,
		Host:       rt.backend.authority,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
	}
	md, _ := metadata.FromIncomingContext(c.ctx)
	out.Header = make(http.Header, len(md)+3)
	if st := copyIncomingMetadata(out.Header, md); st != nil {
		return st
	}
	out.Header["Te"] = teTrailers
	if d, ok := c.ctx.Deadline(); ok {
		left := time.Until(d)
		if left <= 0 {
			return errorf(connect.CodeDeadlineExceeded, "deadline exceeded")
		}
		c.deadline = d
		out.Header["Grpc-Timeout"] = []string{wire.EncodeGRPCTimeout(left)}
	}
	if rt.trace != nil {
		c.startSpan(out.Header)
	}
	if rt.streamType&connect.StreamTypeClient == 0 {
		frame, st := c.recvOne()
		if st != nil {
			return st
		}
		setBodyBytes(out, frame)
	} else {
		c.body = newStreamBody(c.ss, &c.share, c.g.maxMsg)
		out.Body = c.body
		out.ContentLength = -1
	}
	whole := rt.streamType&connect.StreamTypeServer == 0
	ctx, cancel := c.ctx, context.CancelFunc(nil)
	if c.body != nil {
		// Canceled before the response body is closed: closing waits for
		// the request body's sender, which may wait for a client that
		// waits for the answer.
		ctx, cancel = context.WithCancel(c.ctx)
		defer cancel()
	}
	resp, err := rt.backend.client.Call(ctx, out, whole)
	if err != nil {
		return c.failure(err)
	}
	defer func() {
		if cancel != nil {
			cancel()
		}
		_ = resp.Body.Close()
	}()
	return c.respond(resp, whole)
}

// recvOne reads the one message of a procedure whose client does not
// stream, as a gRPC frame, and checks that no other follows (the
// cardinality check of grpc-go's handlers, in its words).
func (c *grpcCall) recvOne() ([]byte, *rpcStatus) {
	m := recvFrame{max: c.g.maxMsg, share: &c.share}
	if err := c.ss.RecvMsg(&m); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errorf(connect.CodeInternal, "cardinality violation: received no request message from non-client-streaming RPC")
		}
		return nil, statusOf(err)
	}
	if m.refused != nil {
		return nil, m.refused
	}
	switch err := c.ss.RecvMsg(discardFrame{}); {
	case errors.Is(err, io.EOF):
		return m.buf, nil
	case err != nil:
		return nil, statusOf(err)
	}
	return nil, errorf(connect.CodeInternal, "cardinality violation: received multiple request messages for non-client-streaming RPC")
}

// respond passes the backend's answer to the client and returns its status.
func (c *grpcCall) respond(resp *http.Response, whole bool) *rpcStatus {
	if resp.StatusCode != http.StatusOK || !responseContentTypeOK(resp) {
		return backendHTTPError(resp)
	}
	if trailersOnly(resp) {
		if md := outgoingMetadata(resp.Header); md != nil {
			c.ss.SetTrailer(md)
		}
		return finalStatus(resp)
	}
	md := outgoingMetadata(resp.Header)
	if whole {
		// Sent with the message, in the same write.
		if md != nil {
			_ = c.ss.SetHeader(md)
		}
	} else if err := c.ss.SendHeader(md); err != nil {
		return statusOf(err)
	}
	fr := backendFrames{r: resp.Body, max: c.g.maxResp, encoding: headerValue(resp.Header, "Grpc-Encoding")}
	for {
		m, err := fr.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return c.failure(err)
		}
		if err := c.ss.SendMsg(m); err != nil { // SendMsg frees m's buffers
			return statusOf(err)
		}
	}
	if md := outgoingMetadata(resp.Trailer); md != nil {
		c.ss.SetTrailer(md)
	}
	return finalStatus(resp)
}

// failure turns an error of the backend exchange into a status, as
// [call.failure] does: the client stream's own failure first (a message
// too large, a cancellation), then deadline and cancellation, else the
// backend is unavailable.
func (c *grpcCall) failure(err error) *rpcStatus {
	if c.body != nil {
		if st := c.body.status(); st != nil {
			return st
		}
	}
	st := statusFromError(c.ctx, c.deadline, err)
	if st.Code == connect.CodeUnavailable {
		b := c.rt.backend
		c.g.metrics.backendError(b.name)
		b.kickRefresh()
		c.g.log.Debug("gateway: backend call failed", "backend", b.name, "procedure", c.rt.path, "error", err)
	}
	return st
}

// copyIncomingMetadata copies the client's metadata, as grpc-go decoded
// it, to the backend request in HTTP form: what [copyRequestMetadata]
// copies, binary values base64 again, and the client's content type.
func copyIncomingMetadata(dst http.Header, md metadata.MD) *rpcStatus {
	contentType := contentTypeGRPC
	for k, vs := range md {
		switch k {
		case ":authority":
			continue
		case "content-type":
			if len(vs) > 1 {
				return errorf(connect.CodeInvalidArgument, "more than one content-type value: send one")
			}
			contentType = vs
			continue
		}
		name := canonicalMetadataKey(k)
		if skipRequestHeader(name) {
			continue
		}
		if strings.HasSuffix(k, "-bin") {
			enc := make([]string, len(vs))
			for i, v := range vs {
				enc[i] = base64.RawStdEncoding.EncodeToString([]byte(v))
			}
			vs = enc
		}
		dst[name] = vs
	}
	dst["Content-Type"] = contentType
	return nil
}

// commonMetadataKeys maps the metadata keys most calls carry to their
// canonical header form, without an allocation per call.
var commonMetadataKeys = map[string]string{
	"user-agent":           "User-Agent",
	"grpc-accept-encoding": "Grpc-Accept-Encoding",
	"authorization":        "Authorization",
	"origin":               "Origin",
	"traceparent":          "Traceparent",
	"tracestate":           "Tracestate",
	"baggage":              "Baggage",
	"x-request-id":         "X-Request-Id",
}

func canonicalMetadataKey(k string) string {
	if c, ok := commonMetadataKeys[k]; ok {
		return c
	}
	return http.CanonicalHeaderKey(k)
}

// outgoingMetadata is the application metadata of backend response headers
// or trailers ([wire.IsMetadata]) as grpc-go metadata: lowercase keys,
// binary values decoded; nil when there is none.
func outgoingMetadata(h http.Header) metadata.MD {
	var md metadata.MD
	for k, vs := range h {
		if !wire.IsMetadata(k) {
			continue
		}
		key := strings.ToLower(k)
		if strings.HasSuffix(key, "-bin") {
			dec := make([]string, 0, len(vs))
			for _, v := range vs {
				if b, err := decodeBinary(v); err == nil {
					dec = append(dec, string(b))
				}
			}
			vs = dec
		}
		if md == nil {
			md = make(metadata.MD, len(h))
		}
		md[key] = vs
	}
	return md
}

// decodeBinary decodes a binary header value, padded or not.
func decodeBinary(v string) ([]byte, error) {
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
}

func headerValue(h http.Header, k string) string {
	if v := h[k]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// grpcError is the handler's answer for st: nil for OK, else a status error
// that grpc-go writes as grpc-status, grpc-message and, with details,
// grpc-status-details-bin.
func grpcError(st *rpcStatus) error {
	if st == nil {
		return status.Error(codes.Internal, "no status")
	}
	if st.Code == 0 {
		return nil
	}
	if st.DetailsBin != "" {
		if raw, err := decodeBinary(st.DetailsBin); err == nil {
			var pb spb.Status
			if proto.Unmarshal(raw, &pb) == nil {
				pb.Code, pb.Message = int32(st.Code), st.Message
				return status.FromProto(&pb).Err()
			}
		}
	}
	return status.Error(codes.Code(st.Code), st.Message)
}

// statusOf is the status of an error of grpc-go's stream: a status error,
// or a context's.
func statusOf(err error) *rpcStatus {
	s := status.Convert(err)
	if s.Code() == codes.Unknown {
		switch {
		case errors.Is(err, context.Canceled):
			return errorf(connect.CodeCanceled, "request canceled")
		case errors.Is(err, context.DeadlineExceeded):
			return errorf(connect.CodeDeadlineExceeded, "deadline exceeded")
		}
	}
	return errorf(connect.Code(s.Code()), s.Message())
}

// grpcHealth is grpc.health.v1.Health on GRPCServer: the answers of the
// health service ServeHTTP serves.
type grpcHealth struct {
	healthpb.UnimplementedHealthServer
	current func() (*Gateway, func())
}

func (h grpcHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	g, done := h.current()
	defer done()
	res, err := healthChecker{g}.Check(ctx, &grpchealth.CheckRequest{Service: req.GetService()})
	if err != nil {
		var cerr *connect.Error
		if errors.As(err, &cerr) {
			return nil, status.Error(codes.Code(cerr.Code()), cerr.Message())
		}
		return nil, status.Error(codes.Unknown, err.Error())
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_ServingStatus(res.Status)}, nil
}
