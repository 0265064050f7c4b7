package gateway_test

import (
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// FuzzWebSocketClient sends hostile WebSocket streams to a gateway in front
// of greetd: a header message, then client messages (control byte and
// frame bytes, any of them wrong). Whatever comes, the gateway must end the
// stream within its bounds: a close with a status, the answer a sequence of
// well-formed frames with at most two flagged 0x80, no panic, no stream
// left open.
//
// The input is the header message, a 0xff byte, then client messages, each
// a big-endian uint16 length and that many bytes.
func FuzzWebSocketClient(f *testing.F) {
	msg := func(m proto.Message) []byte {
		b, _ := proto.Marshal(m)
		return append([]byte{0}, encodeFrame(0, b)...)
	}
	seed := func(header string, msgs ...[]byte) []byte {
		out := append([]byte(header), 0xff)
		for _, m := range msgs {
			out = binary.BigEndian.AppendUint16(out, uint16(len(m)))
			out = append(out, m...)
		}
		return out
	}
	ct := "content-type: application/grpc-web+proto\r\n"
	f.Add(seed(ct, msg(&greetv1.ChatRequest{Text: "a"}), []byte{1}))
	f.Add(seed(ct, msg(&greetv1.ChatRequest{Text: "a"}), msg(&greetv1.ChatRequest{Text: "b"})))
	f.Add(seed(ct+"grpc-timeout: 1m\r\n", []byte{0, 0, 0, 0}, []byte{0, 0, 0x10}, []byte{1}))
	f.Add(seed(ct, []byte{1}, msg(&greetv1.ChatRequest{Text: "late"})))
	f.Add(seed(ct, []byte{2}, []byte{}))
	f.Add(seed(ct, []byte{0, 0x80, 0, 0, 0, 0}, []byte{1, 1}))
	f.Add(seed(ct, []byte{0, 1, 0, 0, 0, 3, 1, 2, 3}, []byte{1}))
	f.Add(seed(ct, []byte{0, 0, 0xff, 0xff, 0xff, 0xff}))
	f.Add(seed("content-type: application/grpc-web+json\r\n", []byte("\x00\x00\x00\x00\x00\x0b{\"text\":\"j\"}"), []byte{1}))
	f.Add(seed("content-type: application/grpc-web-text\r\n", []byte{1}))
	f.Add(seed("x-bad name: v\r\nno colon\r\n", []byte{1}))
	f.Add(seed(strings.Repeat("a: b\r\n", 300), []byte{1}))
	f.Add(seed("grpc-timeout: x\r\n\x00\x7f", []byte{1}))

	g, url := startWSGateway(f, startBackend(f, nil), gateway.WebSocketConfig{}, func(c *gateway.Config) {
		c.MaxMessageSize = 1 << 10
		c.StallTimeout = time.Second
	})
	f.Fuzz(func(t *testing.T, in []byte) {
		header, rest, ok := strings.Cut(string(in), "\xff")
		if !ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+greetPath+"Chat", &websocket.DialOptions{
			Subprotocols: []string{"grpc-websockets"},
			HTTPHeader:   map[string][]string{"Origin": {testOrigin}},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.CloseNow()
		conn.SetReadLimit(1 << 20)
		read := make(chan error, 1)
		go func() { read <- checkAnswer(ctx, conn) }()
		if conn.Write(ctx, websocket.MessageBinary, []byte(header)) == nil {
			b := []byte(rest)
			for len(b) >= 2 {
				n := int(binary.BigEndian.Uint16(b))
				b = b[2:]
				n = min(n, len(b))
				if conn.Write(ctx, websocket.MessageBinary, b[:n]) != nil {
					break
				}
				b = b[n:]
			}
			// A client that stays silent after its messages is fine too:
			// end the stream as a client that gives up does, if the
			// gateway has not ended it.
			_ = conn.Write(ctx, websocket.MessageBinary, []byte{1})
		}
		select {
		case err := <-read:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(2 * time.Second):
			// The call may legitimately wait for more (a bidi stream the
			// client keeps open); close as a browser tab would.
			_ = conn.Close(websocket.StatusNormalClosure, "")
			if err := <-read; err != nil {
				t.Fatal(err)
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for g.WebSocketStreams() != 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d streams still open", g.WebSocketStreams())
			}
			time.Sleep(time.Millisecond)
		}
	})
}

// checkAnswer reads a stream's answer to its end and checks its frames.
func checkAnswer(ctx context.Context, conn *websocket.Conn) error {
	var buf []byte
	flagged := 0
	for {
		_, b, err := conn.Read(ctx)
		if err != nil {
			if websocket.CloseStatus(err) == -1 && ctx.Err() != nil {
				return err
			}
			return nil // closed, with or without a close frame: the stream ended
		}
		buf = append(buf, b...)
		for len(buf) >= 5 {
			n := int(binary.BigEndian.Uint32(buf[1:5]))
			if len(buf) < 5+n {
				break
			}
			if buf[0]&0x80 != 0 {
				if flagged++; flagged > 2 {
					return errFrames("a third 0x80 frame")
				}
			} else if flagged != 1 {
				return errFrames("a message outside the headers and trailers")
			}
			buf = buf[5+n:]
		}
	}
}

type errFrames string

func (e errFrames) Error() string { return string(e) }
