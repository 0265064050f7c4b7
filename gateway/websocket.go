package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/coder/websocket"

	"github.com/corsgate/corsgate/interceptor"
)

// The WebSocket transport of improbable-eng/grpc-web (its Go server
// go/grpcweb/websocket_wrapper.go, its client ts/src/transports/websocket),
// the one way a browser can stream a request body to a gRPC service:
//
//   - the upgrade asks for the subprotocol "grpc-websockets", on the
//     procedure's path;
//   - the client's first message is the request headers, "name: value\r\n"
//     lines (content-type application/grpc-web+proto, x-grpc-web, and the
//     call's metadata);
//   - every later client message starts with a control byte: 0x00 is
//     followed by gRPC-Web frame bytes, 0x01 alone says the client is done
//     sending;
//   - the server sends the response headers as a frame flagged 0x80 (the
//     trailer frame's shape), then the gRPC-Web frames, then the trailer
//     frame, and closes the socket; the client ends the call at the close.
//
// The gateway serves it by making the stream an ordinary gRPC-Web call: the
// header message becomes the request's headers, the client's data bytes its
// body, and the response writer turns what the gRPC-Web protocol writes into
// binary messages. Every call path of the gateway (deadlines, size limits,
// errors with details, the progress deadline) is the gRPC-Web one.
//
// WebSockets are not covered by CORS: the upgrade is checked here, before it
// happens, by the policy's [interceptor.UpgradeGuard]. This file holds the
// upgrade; websocket_stream.go one stream; websocket_header.go the header
// message.

// Defaults of [WebSocketConfig].
const (
	// DefaultWebSocketPingInterval is the default of
	// [WebSocketConfig.PingInterval]: half of the 60 s idle timeout common
	// to load balancers.
	DefaultWebSocketPingInterval = 30 * time.Second
	// DefaultMaxWebSocketStreams is the default of
	// [WebSocketConfig.MaxStreams].
	DefaultMaxWebSocketStreams = 4096
)

// webSocketSubprotocol is the subprotocol of improbable's transport.
const webSocketSubprotocol = "grpc-websockets"

// WebSocketConfig turns on improbable-eng/grpc-web's WebSocket transport
// (see [Config.WebSockets]).
type WebSocketConfig struct {
	// AllowMissingOrigin lets upgrades without an Origin header through:
	// they come from clients that are not browsers (browsers always send
	// Origin with a WebSocket upgrade). Default false: refused.
	AllowMissingOrigin bool
	// PingInterval is how often an open stream is pinged: it keeps idle
	// streams alive through load balancers, and a peer that does not answer
	// within the interval has its stream cut. The default (zero) is
	// [DefaultWebSocketPingInterval]; a negative value never pings.
	PingInterval time.Duration
	// MaxStreams bounds the WebSocket streams open at once; an upgrade
	// beyond it is answered 503 before upgrading. The default (zero) is
	// [DefaultMaxWebSocketStreams]; negative is refused.
	MaxStreams int
}

// webSockets is the gateway's WebSocket transport, nil when off.
type webSockets struct {
	policy       *interceptor.Policy
	allowMissing bool
	ping         time.Duration // 0: no pings
	max          int64
	active       atomic.Int64
	guard        atomic.Pointer[upgradeGuard]
}

// upgradeGuard is the guard of one state, rebuilt when the state changes.
type upgradeGuard struct {
	st    *state
	guard *interceptor.UpgradeGuard
}

// initWebSockets validates cfg (nil: off) and sets the transport up.
func (g *Gateway) initWebSockets(cfg *WebSocketConfig, policy *interceptor.Policy) error {
	if cfg == nil {
		return nil
	}
	if cfg.MaxStreams < 0 {
		return &ConfigError{Field: "WebSockets.MaxStreams", Err: fmt.Errorf("%d is negative; use 0 for the default of %d", cfg.MaxStreams, DefaultMaxWebSocketStreams)}
	}
	ws := &webSockets{policy: policy, allowMissing: cfg.AllowMissingOrigin, max: int64(cfg.MaxStreams)}
	if ws.max == 0 {
		ws.max = DefaultMaxWebSocketStreams
	}
	switch {
	case cfg.PingInterval == 0:
		ws.ping = DefaultWebSocketPingInterval
	case cfg.PingInterval > 0:
		ws.ping = cfg.PingInterval
	}
	if ws.policy == nil {
		// No policy: no origin is allowed, as no CORS header is sent.
		p, err := interceptor.New()
		if err != nil {
			return &ConfigError{Field: "Policy", Err: err}
		}
		ws.policy = p
	}
	g.ws = ws
	return nil
}

// guardFor returns the upgrade guard of st.
func (ws *webSockets) guardFor(st *state) *interceptor.UpgradeGuard {
	if c := ws.guard.Load(); c != nil && c.st == st {
		return c.guard
	}
	c := &upgradeGuard{st: st, guard: ws.policy.Upgrades(st.table)}
	ws.guard.Store(c)
	return c.guard
}

// WebSocketStreams returns how many WebSocket streams are open.
func (g *Gateway) WebSocketStreams() int {
	if g.ws == nil {
		return 0
	}
	return int(g.ws.active.Load())
}

// isWebSocketUpgrade reports an HTTP/1.1 WebSocket upgrade request.
func isWebSocketUpgrade(r *http.Request) bool {
	return r.Method == http.MethodGet && headerHasToken(r.Header["Connection"], "upgrade") &&
		headerHasToken(r.Header["Upgrade"], "websocket")
}

// headerHasToken reports whether the comma-separated lines hold token, in
// any case.
func headerHasToken(lines []string, token string) bool {
	for _, line := range lines {
		for line != "" {
			var item string
			item, line, _ = strings.Cut(line, ",")
			if strings.EqualFold(strings.TrimSpace(item), token) {
				return true
			}
		}
	}
	return false
}

// serveWebSocket checks an upgrade request, upgrades it and serves its one
// call. Every refusal comes before the upgrade, as a plain HTTP answer.
func (g *Gateway) serveWebSocket(w http.ResponseWriter, r *http.Request) {
	ws := g.ws
	st := g.state.Load()
	if !st.loaded {
		http.Error(w, errNoDescriptors.Error(), http.StatusServiceUnavailable)
		return
	}
	// The route's policy decides, as it does CORS; a path no route has
	// is refused by the default policy's guard (unknown procedure).
	guard, policy := ws.guardFor(st), ws.policy
	if rt := st.routes[r.URL.Path]; rt != nil && rt.upgrade != nil {
		guard = rt.upgrade
		if rt.rule != nil && rt.rule.policy != nil {
			policy = rt.rule.policy
		}
	}
	v := guard.Check(r, ws.allowMissing)
	var rec *accessRecord
	if g.alog != nil {
		rec = recordOf(r)
		rec.upgrade(&v)
	}
	if !v.Allowed {
		g.metrics.observeUnrouted("grpc_websocket", connect.CodePermissionDenied)
		http.Error(w, "corsgate: websocket upgrade refused (check: "+v.Reason.String()+")", http.StatusForbidden)
		return
	}
	if !headerHasToken(r.Header["Sec-Websocket-Protocol"], webSocketSubprotocol) {
		guard.LogRefusal(r.Context(), "subprotocol", v.Origin, r.URL.Path, "the upgrade does not offer "+webSocketSubprotocol)
		http.Error(w, "corsgate: websocket upgrade refused: subprotocol "+webSocketSubprotocol+" required", http.StatusBadRequest)
		return
	}
	if n := ws.active.Add(1); n > ws.max {
		ws.active.Add(-1)
		guard.LogRefusal(r.Context(), "streams", v.Origin, r.URL.Path, strconv.FormatInt(ws.max, 10)+" websocket streams open")
		w.Header().Set("Retry-After", "1")
		http.Error(w, "corsgate: too many websocket streams", http.StatusServiceUnavailable)
		return
	}
	defer ws.active.Add(-1)
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols: []string{webSocketSubprotocol},
		// The Origin was checked above, by the policy.
		InsecureSkipVerify: true,
		// Messages are gRPC frames, compressed by gRPC when at all.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		g.log.Debug("gateway: websocket upgrade failed", "path", r.URL.Path, "error", err)
		return
	}
	// One message carries at most one frame of the largest size, after its
	// control byte; the size check itself is the frame scanner's, which
	// answers RESOURCE_EXHAUSTED before this limit cuts the socket.
	conn.SetReadLimit(int64(max(g.maxMsg, maxHeaderMessage)) + headerLen + 1)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(g.ctx, cancel) // Gateway.Close ends the streams
	defer stop()
	s := &wsStream{g: g, st: st, conn: conn, r: r, verdict: &v, guard: guard, policy: policy, ctx: ctx, cancel: cancel, rec: rec}
	s.serve()
}

// errWebSocketGone is the read error of a body whose stream ended.
var errWebSocketGone = errors.New("websocket stream ended")
