package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"go.opentelemetry.io/otel/trace"

	"github.com/corsgate/corsgate/internal/wire"
)

// protocol is one wire format the gateway accepts from clients. There is
// one implementation per file: protocol_grpcweb.go (binary and text),
// protocol_connect.go (unary POST, GET, streaming) and protocol_grpc.go
// (pass-through).
//
// For every call the gateway detects the protocol, finds the route, then:
//  1. prepare checks the client request and completes the backend request:
//     it sets the protocol headers (Content-Type, Grpc-Encoding,
//     Grpc-Accept-Encoding) and the body, a stream of gRPC frames read
//     lazily from the client; metadata, TE and Grpc-Timeout are already set;
//  2. the backend request goes out through the shared transport;
//  3. respond translates the backend's gRPC response (headers, frames,
//     trailers) to the client as it arrives and returns the call's final
//     status;
//  4. whenever the call fails before respond has written anything,
//     [call.writeError] answers in the client's protocol through
//     [wire.WriteError], the writer the CORS policy's strict mode uses too.
//
// The deadline header is read by [wire.Timeout]. Implementations hold no
// per-call state; that lives in [call].
type protocol interface {
	// name is the protocol's label in metrics and logs.
	name() string
	prepare(c *call, out *http.Request) *rpcStatus
	respond(c *call, resp *http.Response) *rpcStatus
}

// call is the state of one RPC through the gateway.
type call struct {
	g     *Gateway
	st    *state
	w     http.ResponseWriter
	r     *http.Request
	ctx   context.Context
	route *route
	proto protocol
	// class is the request's protocol as [wire.Classify] read it.
	class wire.Class
	// codec is the client's codec: "proto" or "json".
	codec string
	// body, when the request streams through unbuffered, checks its frames.
	body requestBody
	// watched is the client's body under the progress deadline, once
	// prepare has read from it.
	watched *bodyWatch
	// share is the call's part of the gateway's request buffer budget.
	share share
	// cut reports an HTTP/1.1 request body the gateway stopped reading
	// before its end (see duplex.go).
	cut atomic.Bool
	// cutMu orders cutBody, which may run on the transport's goroutine,
	// before the end of the handler (ended, under cutMu): after it, the
	// response writer is no longer the call's.
	cutMu sync.Mutex
	ended bool
	// wrote reports that response headers went to the client.
	wrote bool
	// sw is w with a progress deadline, when the gateway has one.
	sw    stallWriter
	start time.Time
	// deadline is the client's deadline, zero without one.
	deadline time.Time
	// span is the call's server span, nil when tracing is off.
	span trace.Span
	// ws is the writer of a call carried by a WebSocket stream, nil for
	// HTTP.
	ws *wsResponse
	// rec is the call's access log record, nil without an access log.
	rec *accessRecord
	// out is the backend request; its Header comes from
	// backendHeaderPool. reqBuf, when not nil, holds the request body
	// (from reqBufPool). Both go back to their pools in recycle. sent
	// reports that out was handed to the backend client.
	out    http.Request
	reqBuf *[]byte
	sent   bool
}

// backendHeaderPool holds the header maps of backend requests, empty.
var backendHeaderPool = sync.Pool{New: func() any { return make(http.Header, 16) }}

// streamHeaderHint is the size hint of a server stream's backend header
// map: the protocol's few headers and some metadata.
const streamHeaderHint = 8

// maxPooledHeader is the most keys a header map may have had to go back to
// backendHeaderPool: a map keeps the room it grew to.
const maxPooledHeader = 32

// recycle hands the backend request's header map and body buffer back to
// their pools, once the backend client is done with them: it never was
// called, or its call returned and the response body was closed while the
// call's context was not done (the client's Close waits for the request
// body's sender then, and only then).
func (c *call) recycle() {
	if c.sent && c.ctx.Err() != nil {
		return // left to the garbage collector
	}
	if c.reqBuf != nil {
		reqBufPool.Put(c.reqBuf)
		c.reqBuf = nil
	}
	if h := c.out.Header; h != nil {
		c.out.Header = nil
		if len(h) <= maxPooledHeader {
			clear(h)
			backendHeaderPool.Put(h)
		}
	}
}

// okStatus is the status of a successful call.
var okStatus = &rpcStatus{}

// serveRPC serves a request the CORS policy let through.
func (g *Gateway) serveRPC(st *state, w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p, class, codec, refusal := detect(r)
	if refusal != 0 {
		writeHTTPRefusal(w, refusal)
		return
	}
	c := &call{g: g, st: st, w: w, r: r, ctx: r.Context(), proto: p, class: class, codec: codec}
	c.ws, _ = w.(*wsResponse)
	if g.alog != nil {
		c.rec = recordOf(r)
	}
	if g.budget.limit > 0 {
		c.share.b = &g.budget
	}
	if g.stall > 0 {
		c.sw = stallWriter{ResponseWriter: w, stall: g.stall}
		c.w = &c.sw
	}
	rt := st.routes[r.URL.Path]
	if rt == nil {
		if b := g.pendingBackend(st, r.URL.Path); b != nil {
			c.finish(start, nil, errorf(connect.CodeUnavailable, b.noDescriptors().Error()))
			return
		}
		g.kickRefresh(r.URL.Path)
		missing := errorf(connect.CodeUnimplemented, "procedure "+r.URL.Path+" is not served by the backend")
		missing.HTTPStatus = http.StatusNotFound
		c.finish(start, nil, missing)
		return
	}
	c.route = rt
	c.start = start
	if rt.trace != nil {
		c.startSpan()
	}
	c.finish(start, rt, c.run())
}

// abort breaks the client's response after part of a message went out, when
// no final status can be written any more: the client sees a broken stream.
func (c *call) abort(st *rpcStatus) {
	c.route.metrics.observe(c.proto.name(), st.Code, time.Since(c.start))
	c.endSpan(st)
	if c.rec != nil {
		c.rec.end(c, c.route, st)
	}
	panic(http.ErrAbortHandler)
}

// run carries out the call and returns its final status. A status returned
// before anything was written is written by finish.
func (c *call) run() *rpcStatus {
	r := c.r
	if len(r.Header["Content-Type"]) > 1 {
		// The gateway classified the first; the backend must not see another.
		return errorf(connect.CodeInvalidArgument, "more than one content-type value: send one")
	}
	d, hasTimeout, bad := wire.Timeout(r, c.class.Protocol)
	if bad != nil {
		return bad
	}
	if hasTimeout {
		// The backend gets the deadline and normally answers
		// DEADLINE_EXCEEDED itself. The gateway's own timer is a safety net
		// for backends that ignore deadlines; it fires a little later, when
		// the client, which has the same deadline, has given up: answering
		// at the very moment the client's own timer fires races it.
		c.deadline = time.Now().Add(d)
		var cancel context.CancelFunc
		c.ctx, cancel = context.WithDeadline(c.ctx, c.deadline.Add(deadlineGrace))
		defer cancel()
	}
	// Deferred before the response body's Close, so run after it.
	defer c.recycle()
	out := &c.out
	*out = http.Request{
		Method:     http.MethodPost,
		URL:        c.route.url,
		Host:       c.route.backend.authority,
		Proto:      "HTTP/2.0",
		ProtoMajor: 2,
	}
	if c.route.streamType&connect.StreamTypeServer == 0 {
		out.Header = backendHeaderPool.Get().(http.Header) //nolint:errcheck // the pool holds only http.Header
	} else {
		// A server stream's map lives as long as the stream: one of the
		// usual size, not a pooled one with room for sixteen.
		out.Header = make(http.Header, streamHeaderHint)
	}
	copyRequestMetadata(out.Header, r.Header)
	if c.span != nil {
		c.injectTrace(out.Header)
	}
	out.Header["Te"] = teTrailers
	if hasTimeout {
		out.Header["Grpc-Timeout"] = []string{wire.EncodeGRPCTimeout(d)}
	}
	if st := c.proto.prepare(c, out); st != nil {
		return st
	}
	if r.ProtoMajor == 1 && c.route.streamType&connect.StreamTypeClient != 0 {
		// Let the response start while the request still streams in.
		_ = http.NewResponseController(c.w).EnableFullDuplex()
	}
	whole := c.route.streamType&connect.StreamTypeServer == 0
	var resp *http.Response
	var err error
	c.sent = true
	if c.rec != nil {
		resp, err = c.callBackend(out, whole)
	} else {
		resp, err = c.route.backend.client.Call(c.ctx, out, whole)
	}
	if err != nil {
		return c.failure(err)
	}
	defer resp.Body.Close()
	return c.proto.respond(c, resp)
}

// failure turns an error of the backend exchange into a status: the request
// body's own refusal (a message too large) first, then deadline and
// cancellation, else the backend is unavailable.
func (c *call) failure(err error) *rpcStatus {
	if st := c.watched.status(); st != nil {
		return st
	}
	if c.body != nil {
		if st := c.body.status(); st != nil {
			return st
		}
	}
	ctx := c.ctx
	if c.cut.Load() {
		// The backend ended the call first and the gateway then cut the
		// client's body (see duplex.go), which cancels the request's
		// context: that cancellation is the gateway's own, not the client's.
		ctx = context.WithoutCancel(ctx)
		if errors.Is(err, context.Canceled) {
			err = errors.New("the backend ended the call before the request stream")
		}
	}
	st := statusFromError(ctx, c.deadline, err)
	if st.Code == connect.CodeUnavailable {
		c.g.metrics.backendError(c.route.backend.name)
		c.route.backend.kickRefresh()
		c.g.log.Debug("gateway: backend call failed", "backend", c.route.backend.name, "procedure", c.r.URL.Path, "error", err)
	}
	return st
}

// finish writes st when nothing was written yet, and records the call.
func (c *call) finish(start time.Time, rt *route, st *rpcStatus) {
	c.watched.stop()
	defer c.share.release()
	c.closeCutConn()
	c.cutMu.Lock()
	c.ended = true
	c.cutMu.Unlock()
	if st == nil {
		st = errorf(connect.CodeInternal, "no status")
	}
	if st != okStatus && st.Code != 0 && !c.wrote {
		c.writeError(st, nil)
	}
	c.endSpan(st)
	if rt != nil {
		rt.metrics.observe(c.proto.name(), st.Code, time.Since(start))
	} else {
		c.g.metrics.observeUnrouted(c.proto.name(), st.Code)
	}
	if c.rec != nil {
		c.rec.end(c, rt, st)
	}
}

// writeError answers st, with md (trailers, or the headers of a
// trailers-only backend answer) as its metadata, in the client's protocol.
// A status that refuses the request at the HTTP level (405 or 415 for a
// method or content type that does not fit the procedure) gets a bare HTTP
// answer instead.
func (c *call) writeError(st *rpcStatus, md http.Header) {
	c.wrote = true
	if isHTTPRefusal(st) {
		writeHTTPRefusal(c.w, st.HTTPStatus)
		return
	}
	wire.WriteError(c.w, c.class, st, md)
}

// detect picks the protocol from [wire.Classify]. A refusal is an HTTP
// status (405 or 415) for requests no RPC client would send, or with a codec
// the gateway does not translate (gRPC-Web text: proto only).
func detect(r *http.Request) (p protocol, class wire.Class, codec string, refusal int) {
	class = wire.Classify(r)
	switch class.Protocol {
	case wire.ProtocolConnectGet:
		return connectGet{}, class, "", 0
	case wire.ProtocolUnknown:
		if r.Method != http.MethodPost {
			return nil, class, "", http.StatusMethodNotAllowed
		}
		return nil, class, "", http.StatusUnsupportedMediaType
	case wire.ProtocolGRPCWebText:
		if class.Codec == wire.CodecProto {
			return grpcWeb{text: true}, class, class.Codec, 0
		}
	case wire.ProtocolGRPCWeb:
		if wire.KnownCodec(class.Codec) {
			return grpcWeb{}, class, class.Codec, 0
		}
	case wire.ProtocolGRPC:
		if wire.KnownCodec(class.Codec) {
			return grpcPass{}, class, "", 0
		}
	case wire.ProtocolConnectStream:
		if wire.KnownCodec(class.Codec) {
			return connectStream{}, class, class.Codec, 0
		}
	case wire.ProtocolConnect:
		if wire.KnownCodec(class.Codec) {
			return connectUnary{}, class, class.Codec, 0
		}
	}
	return nil, class, "", http.StatusUnsupportedMediaType
}

// writeHTTPRefusal answers a request that is not an RPC the gateway knows.
func writeHTTPRefusal(w http.ResponseWriter, status int) {
	h := w.Header()
	switch status {
	case http.StatusMethodNotAllowed:
		h.Set("Allow", "GET, POST")
	case http.StatusUnsupportedMediaType:
		h.Set("Accept-Post", "application/grpc-web, application/grpc-web+proto, application/grpc-web+json, "+
			"application/grpc-web-text, application/grpc-web-text+proto, application/grpc, application/grpc+proto, "+
			"application/proto, application/json, application/connect+proto, application/connect+json")
	}
	http.Error(w, http.StatusText(status), status)
}

var teTrailers = []string{"trailers"}

// copyRequestMetadata copies the client's metadata to the backend request:
// everything but hop-by-hop headers, the headers of the client's protocol
// (rewritten by each protocol) and CORS request headers.
func copyRequestMetadata(dst, src http.Header) {
	var extraHop []string
	if conn := src["Connection"]; len(conn) > 0 {
		for _, v := range conn {
			for _, name := range strings.Split(v, ",") {
				if name = strings.TrimSpace(name); name != "" {
					extraHop = append(extraHop, http.CanonicalHeaderKey(name))
				}
			}
		}
	}
	for k, v := range src {
		if skipRequestHeader(k) {
			continue
		}
		if len(extraHop) > 0 && containsString(extraHop, k) {
			continue
		}
		dst[k] = v
	}
}

func skipRequestHeader(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Upgrade", "Te", "Trailer", "Transfer-Encoding",
		"Proxy-Authorization", "Proxy-Authenticate", "Http2-Settings", "Host", "Content-Length",
		"Content-Type", "Content-Encoding", "Accept-Encoding", "X-Grpc-Web",
		"Connect-Protocol-Version", "Connect-Timeout-Ms", "Connect-Content-Encoding", "Connect-Accept-Encoding",
		"Grpc-Timeout", "Grpc-Encoding", "Grpc-Accept-Encoding", "Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin":
		return true
	}
	return strings.HasPrefix(k, "Access-Control-")
}

// copyResponseMetadata copies the backend's response metadata to the client:
// everything but the gRPC protocol's headers, hop-by-hop headers and CORS
// headers (the gateway's policy alone decides CORS).
func copyResponseMetadata(dst, src http.Header) {
	for k, v := range src {
		if wire.IsReservedHeader(k) || strings.HasPrefix(k, "Access-Control-") {
			continue
		}
		if k == "Vary" {
			// Keep the policy's Vary: Origin.
			dst[k] = append(dst[k], v...)
			continue
		}
		dst[k] = v
	}
}

func containsString(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// statusFromReadError maps a failure to read the client's body.
func statusFromReadError(err error) *rpcStatus {
	var st *rpcStatus
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &st):
		return st
	case errors.As(err, &mbe):
		return errorf(connect.CodeResourceExhausted, err.Error())
	case errors.Is(err, context.Canceled):
		return errorf(connect.CodeCanceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return errorf(connect.CodeDeadlineExceeded, "deadline exceeded")
	}
	return errorf(connect.CodeInvalidArgument, "reading request: "+err.Error())
}

// flush sends what was written to the client. The writer's own Flush is
// used when it has one (the CORS policy's writer does), without the
// allocation of an http.ResponseController per flush.
func (c *call) flush() {
	if f, ok := c.w.(http.Flusher); ok {
		f.Flush()
		return
	}
	_ = http.NewResponseController(c.w).Flush()
}

// responseContentTypeOK reports whether the backend answered with gRPC.
func responseContentTypeOK(resp *http.Response) bool {
	ct := resp.Header["Content-Type"]
	return len(ct) > 0 && strings.HasPrefix(ct[0], "application/grpc")
}

// backendHTTPError is the status of a backend answer that is not gRPC.
func backendHTTPError(resp *http.Response) *rpcStatus {
	if resp.StatusCode != http.StatusOK {
		return errorf(wire.CodeForHTTP(resp.StatusCode), "backend answered HTTP "+strconv.Itoa(resp.StatusCode))
	}
	return errorf(connect.CodeInternal, "backend answered with content type "+strconv.Quote(resp.Header.Get("Content-Type")))
}

// finalStatus reads the status at the end of a backend response: from the
// trailers, or from the headers of a trailers-only response.
func finalStatus(resp *http.Response) *rpcStatus {
	if v := resp.Trailer["Grpc-Status"]; len(v) == 1 && v[0] == "0" {
		if m := resp.Trailer["Grpc-Message"]; len(m) == 0 || len(m) == 1 && m[0] == "" {
			return okStatus // the common case (grpc-go sends an empty message), without an allocation
		}
	}
	if st, ok := wire.StatusFromHeader(resp.Trailer); ok {
		return &st
	}
	if st, ok := wire.StatusFromHeader(resp.Header); ok {
		return &st
	}
	return errorf(connect.CodeInternal, "backend sent no grpc-status")
}

// trailersOnly reports a backend response that is only a status (an error
// answered at once): its headers are the trailers.
func trailersOnly(resp *http.Response) bool {
	_, ok := resp.Header["Grpc-Status"]
	return ok
}
