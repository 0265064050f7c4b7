package grpcwebserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// dialChat opens improbable's WebSocket transport to Chat with origin.
func dialChat(t *testing.T, ctx context.Context, base, path, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	h := http.Header{}
	if origin != "" {
		h.Set("Origin", origin)
	}
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+path, &websocket.DialOptions{
		Subprotocols: []string{"grpc-websockets"},
		HTTPHeader:   h,
	})
}

// TestWebSocketBidi: a browser on the allowed origin streams Chat both ways
// through improbable's WebSocket support.
func TestWebSocketBidi(t *testing.T) {
	t.Parallel()
	base := start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, _, err := dialChat(t, ctx, base, "/greet.v1.GreetService/Chat", appOrigin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageBinary, []byte("content-type: application/grpc-web+proto\r\nx-grpc-web: 1\r\n")); err != nil {
		t.Fatal(err)
	}
	b, _ := proto.Marshal(&greetv1.ChatRequest{Text: "hi"})
	msg := append([]byte{0, 0, 0, 0, 0, 0}, b...)
	binary.BigEndian.PutUint32(msg[2:6], uint32(len(b)))
	if err := conn.Write(ctx, websocket.MessageBinary, msg); err != nil {
		t.Fatal(err)
	}
	if err := conn.Write(ctx, websocket.MessageBinary, []byte{1}); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for {
		_, p, err := conn.Read(ctx)
		if err != nil {
			break
		}
		all = append(all, p...)
	}
	if !bytes.Contains(all, []byte("you said: hi")) || !bytes.Contains(all, []byte("grpc-status: 0")) {
		t.Fatalf("answer %q: want the echo and grpc-status 0", all)
	}
}

// TestWebSocketRefusals: the upgrade is refused before upgrading, with the
// policy's origin matcher and procedure rules.
func TestWebSocketRefusals(t *testing.T) {
	t.Parallel()
	base := start(t)
	rows := []struct{ name, path, origin string }{
		{name: "foreign origin", path: "/greet.v1.GreetService/Chat", origin: "https://evil.example"},
		{name: "null origin", path: "/greet.v1.GreetService/Chat", origin: "null"},
		{name: "missing origin", path: "/greet.v1.GreetService/Chat", origin: ""},
		{name: "browser-barred", path: "/greet.v1.GreetService/ResetGreetings", origin: appOrigin},
		{name: "unknown procedure", path: "/greet.v1.GreetService/Nope", origin: appOrigin},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, resp, err := dialChat(t, ctx, base, row.path, row.origin)
			if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
				t.Fatalf("upgrade: %v, %v; want 403", resp, err)
			}
		})
	}
}
