package gateway_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/gateway"
)

// withWebSockets turns the WebSocket transport on.
func withWebSockets(ws gateway.WebSocketConfig) gatewayOption {
	return func(c *gateway.Config) { c.WebSockets = &ws }
}

// wsClient speaks improbable-eng/grpc-web's WebSocket transport as its
// TypeScript client does (ts/src/transports/websocket/websocket.ts).
type wsClient struct {
	tb   testing.TB
	conn *websocket.Conn
	ctx  context.Context
	buf  []byte // response bytes not yet parsed into frames
}

// wsResult is what the client read of one stream.
type wsResult struct {
	headers  map[string]string // the first 0x80 frame
	trailers map[string]string // the second 0x80 frame
	messages [][]byte
	closed   websocket.StatusCode
}

// status is the call's grpc-status: from the trailers, else from headers
// (a trailers-only answer), as the client reads it.
func (r wsResult) status() string {
	if r.trailers != nil {
		return r.trailers["grpc-status"]
	}
	return r.headers["grpc-status"]
}

func (r wsResult) message() string {
	if r.trailers != nil {
		return r.trailers["grpc-message"]
	}
	return r.headers["grpc-message"]
}

// dialWS opens a stream to path with the Origin origin ("" for none) and
// sends the header message: the protocol's lines and md.
func dialWS(tb testing.TB, ctx context.Context, baseURL, path, origin string, md map[string]string) (*wsClient, *http.Response, error) {
	tb.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	var lines strings.Builder
	for k, v := range md {
		fmt.Fprintf(&lines, "%s: %s\r\n", k, v)
	}
	c, resp, err := dialRaw(tb, ctx, baseURL, path, h, lines.String())
	return c, resp, err
}

// dialWithHeader is dialWS with the upgrade's headers h and extra lines for
// the header message.
func dialWithHeader(tb testing.TB, ctx context.Context, baseURL, path string, h http.Header, lines string) (*wsClient, error) {
	tb.Helper()
	c, _, err := dialRaw(tb, ctx, baseURL, path, h, lines)
	return c, err
}

func dialRaw(tb testing.TB, ctx context.Context, baseURL, path string, h http.Header, lines string) (*wsClient, *http.Response, error) {
	tb.Helper()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(baseURL, "http")+path, &websocket.DialOptions{
		Subprotocols: []string{"grpc-websockets"},
		HTTPHeader:   h,
	})
	if err != nil {
		return nil, resp, err
	}
	conn.SetReadLimit(64 << 20)
	c := &wsClient{tb: tb, conn: conn, ctx: ctx}
	tb.Cleanup(func() { _ = conn.CloseNow() })
	msg := "content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n" + lines
	if err := conn.Write(ctx, websocket.MessageBinary, []byte(msg)); err != nil {
		return nil, resp, err
	}
	return c, resp, nil
}

// send sends one message: 0x00 and a gRPC-Web frame.
func (c *wsClient) send(m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		c.tb.Fatal(err)
	}
	return c.sendRaw(append([]byte{0}, encodeFrame(0, b)...))
}

func (c *wsClient) sendRaw(b []byte) error {
	return c.conn.Write(c.ctx, websocket.MessageBinary, b)
}

// finish sends 0x01: the client is done sending.
func (c *wsClient) finish() error { return c.sendRaw([]byte{1}) }

// next reads until one frame is complete; io.EOF when the socket closed.
func (c *wsClient) next() (flags byte, payload []byte, err error) {
	for {
		if len(c.buf) >= 5 {
			n := int(binary.BigEndian.Uint32(c.buf[1:5]))
			if len(c.buf) >= 5+n {
				flags, payload = c.buf[0], bytes.Clone(c.buf[5:5+n])
				c.buf = c.buf[5+n:]
				return flags, payload, nil
			}
		}
		typ, b, err := c.conn.Read(c.ctx)
		if err != nil {
			return 0, nil, err
		}
		if typ != websocket.MessageBinary {
			return 0, nil, errors.New("text message from the server")
		}
		c.buf = append(c.buf, b...)
	}
}

// readAll reads the whole response until the server closes.
func (c *wsClient) readAll() (wsResult, error) {
	var r wsResult
	for {
		flags, payload, err := c.next()
		if err != nil {
			r.closed = websocket.CloseStatus(err)
			if r.closed == -1 {
				return r, err
			}
			if len(c.buf) != 0 {
				return r, fmt.Errorf("%d bytes after the last frame", len(c.buf))
			}
			return r, nil
		}
		if flags&0x80 == 0 {
			r.messages = append(r.messages, payload)
			continue
		}
		md := parseLines(payload)
		switch {
		case r.headers == nil:
			r.headers = md
		case r.trailers == nil:
			r.trailers = md
		default:
			return r, errors.New("a third 0x80 frame")
		}
	}
}

func parseLines(b []byte) map[string]string {
	md := map[string]string{}
	for _, line := range strings.Split(string(b), "\r\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			if md[k] != "" {
				v = md[k] + ", " + v
			}
			md[k] = v
		}
	}
	return md
}

// wsCall makes one whole call: headers, messages, 0x01, then reads all.
func wsCall(tb testing.TB, baseURL, path string, md map[string]string, msgs ...proto.Message) wsResult {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := dialWS(tb, ctx, baseURL, path, testOrigin, md)
	if err != nil {
		tb.Fatal(err)
	}
	for _, m := range msgs {
		if err := c.send(m); err != nil {
			tb.Fatal(err)
		}
	}
	if err := c.finish(); err != nil {
		tb.Fatal(err)
	}
	r, err := c.readAll()
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// unmarshal decodes every message of r into new values of T.
func unmarshalAll[T any, P interface {
	*T
	proto.Message
}](tb testing.TB, r wsResult) []P {
	tb.Helper()
	var out []P
	for _, b := range r.messages {
		m := P(new(T))
		if err := proto.Unmarshal(b, m); err != nil {
			tb.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// startWSGateway starts a gateway with WebSockets in front of backend and
// waits for its descriptors.
func startWSGateway(tb testing.TB, backend string, ws gateway.WebSocketConfig, opts ...gatewayOption) (*gateway.Gateway, string) {
	tb.Helper()
	g, url := startGateway(tb, backend, append([]gatewayOption{withWebSockets(ws)}, opts...)...)
	waitReady(tb, g)
	return g, url
}
