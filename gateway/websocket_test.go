package gateway_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

const greetPath = "/greet.v1.GreetService/"

// callEnds records how each backend call ended, through a stats handler.
type callEnds struct {
	mu   sync.Mutex
	ends map[string][]error // method → the error of each ended call (nil: OK)
}

type callEndsKey struct{}

func (e *callEnds) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, callEndsKey{}, info.FullMethodName)
}

func (e *callEnds) HandleRPC(ctx context.Context, s stats.RPCStats) {
	if end, ok := s.(*stats.End); ok {
		name, _ := ctx.Value(callEndsKey{}).(string)
		e.mu.Lock()
		if e.ends == nil {
			e.ends = map[string][]error{}
		}
		e.ends[name] = append(e.ends[name], end.Error)
		e.mu.Unlock()
	}
}

func (e *callEnds) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (e *callEnds) HandleConn(context.Context, stats.ConnStats)                       {}

func (e *callEnds) of(method string) []error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]error(nil), e.ends[method]...)
}

// waitFor polls cond for up to 10 s.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWebSocketStreamTypes: every stream type over improbable's transport
// against greetd, with metadata both ways.
func TestWebSocketStreamTypes(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	_, url := startWSGateway(t, startBackend(t, rec), gateway.WebSocketConfig{})

	t.Run("unary", func(t *testing.T) {
		t.Parallel()
		r := wsCall(t, url, greetPath+"Greet", map[string]string{"authorization": "Bearer t", "x-request-id": "ws-unary"},
			&greetv1.GreetRequest{Name: "Ada"})
		if r.status() != "0" {
			t.Fatalf("status %q %q, want 0", r.status(), r.message())
		}
		msgs := unmarshalAll[greetv1.GreetResponse](t, r)
		if len(msgs) != 1 || msgs[0].GetGreeting() != "Hello, Ada!" {
			t.Fatalf("messages %v", msgs)
		}
		if r.headers["x-greet-version"] != "1" || r.trailers["x-greet-trailer"] != "greeted" {
			t.Errorf("headers %v, trailers %v: want x-greet-version and x-greet-trailer", r.headers, r.trailers)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		var seen bool
		for _, c := range rec.calls {
			if c.Header.Get("X-Request-Id") == "ws-unary" {
				seen = true
				if c.Header.Get("Authorization") != "Bearer t" || c.Header.Get("Origin") != testOrigin {
					t.Errorf("backend saw %v, want authorization and the upgrade's origin", c.Header)
				}
			}
		}
		if !seen {
			t.Error("the backend saw no call with x-request-id ws-unary")
		}
	})
	t.Run("server-stream", func(t *testing.T) {
		t.Parallel()
		r := wsCall(t, url, greetPath+"GreetStream", nil, &greetv1.GreetStreamRequest{Name: "Bo", Count: 3})
		msgs := unmarshalAll[greetv1.GreetStreamResponse](t, r)
		if r.status() != "0" || len(msgs) != 3 || msgs[2].GetIndex() != 3 {
			t.Fatalf("status %q, messages %v", r.status(), msgs)
		}
	})
	t.Run("client-stream", func(t *testing.T) {
		t.Parallel()
		r := wsCall(t, url, greetPath+"GreetMany", nil,
			&greetv1.GreetManyRequest{Name: "a"}, &greetv1.GreetManyRequest{Name: "b"}, &greetv1.GreetManyRequest{Name: "c"})
		msgs := unmarshalAll[greetv1.GreetManyResponse](t, r)
		if r.status() != "0" || len(msgs) != 1 || msgs[0].GetCount() != 3 {
			t.Fatalf("status %q %q, messages %v", r.status(), r.message(), msgs)
		}
	})
	t.Run("bidi", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		c, _, err := dialWS(t, ctx, url, greetPath+"Chat", testOrigin, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Full duplex: each answer arrives before the next message is sent.
		for i, text := range []string{"one", "two", "three"} {
			if err := c.send(&greetv1.ChatRequest{Text: text}); err != nil {
				t.Fatal(err)
			}
			flags, payload, err := c.next()
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				if flags != 0x80 {
					t.Fatalf("first frame flags %#x, want the header frame", flags)
				}
				if flags, payload, err = c.next(); err != nil {
					t.Fatal(err)
				}
			}
			var m greetv1.ChatResponse
			if err := proto.Unmarshal(payload, &m); err != nil || flags != 0 || m.GetText() != "you said: "+text {
				t.Fatalf("answer %d: flags %#x, %v, %v", i, flags, &m, err)
			}
		}
		if err := c.finish(); err != nil {
			t.Fatal(err)
		}
		r, err := c.readAll()
		if err != nil {
			t.Fatal(err)
		}
		if r.headers["grpc-status"] != "0" { // the trailers: the headers came above
			t.Fatalf("end %v", r.headers)
		}
	})
}

// TestWebSocketErrors: an error with details, a deadline, and a message
// over the size limit, each in the trailer frame.
func TestWebSocketErrors(t *testing.T) {
	t.Parallel()
	_, url := startWSGateway(t, startBackend(t, nil),
		gateway.WebSocketConfig{}, func(c *gateway.Config) { c.MaxMessageSize = 1 << 10 })
	t.Run("details", func(t *testing.T) {
		t.Parallel()
		r := wsCall(t, url, greetPath+"Greet", nil, &greetv1.GreetRequest{})
		if r.status() != "3" || r.message() != "name is required" {
			t.Fatalf("status %q %q, want 3", r.status(), r.message())
		}
		bin := r.trailers["grpc-status-details-bin"]
		if bin == "" {
			bin = r.headers["grpc-status-details-bin"]
		}
		if bin == "" {
			t.Fatalf("no grpc-status-details-bin: headers %v trailers %v", r.headers, r.trailers)
		}
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		start := time.Now()
		r := wsCall(t, url, greetPath+"GreetStream", map[string]string{"grpc-timeout": "200m"},
			&greetv1.GreetStreamRequest{Name: "x", Count: 100, IntervalMs: 50})
		if r.status() != "4" {
			t.Fatalf("status %q %q, want 4 (DEADLINE_EXCEEDED)", r.status(), r.message())
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("too-large", func(t *testing.T) {
		t.Parallel()
		r := wsCall(t, url, greetPath+"Chat", nil, &greetv1.ChatRequest{Text: strings.Repeat("x", 2<<10)})
		if r.status() != "8" {
			t.Fatalf("status %q %q, want 8 (RESOURCE_EXHAUSTED)", r.status(), r.message())
		}
	})
	t.Run("bad-control-byte", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		c, _, err := dialWS(t, ctx, url, greetPath+"Chat", testOrigin, nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.sendRaw([]byte{7, 0, 0, 0, 0, 0})
		r, _ := c.readAll()
		if s := r.status(); s != "" && s != "3" && s != "1" {
			t.Errorf("status %q, want INVALID_ARGUMENT, CANCELED or a cut stream", s)
		}
	})
}

// TestWebSocketLargeMessages: 3 MiB each way.
func TestWebSocketLargeMessages(t *testing.T) {
	t.Parallel()
	_, url := startWSGateway(t, startBackend(t, nil), gateway.WebSocketConfig{})
	text := strings.Repeat("z", 3<<20)
	r := wsCall(t, url, greetPath+"Chat", nil, &greetv1.ChatRequest{Text: text})
	msgs := unmarshalAll[greetv1.ChatResponse](t, r)
	if r.status() != "0" || len(msgs) != 1 || msgs[0].GetText() != "you said: "+text {
		t.Fatalf("status %q %q, %d messages", r.status(), r.message(), len(msgs))
	}
}

// TestWebSocketCancelByClose: closing the socket cancels the backend call.
func TestWebSocketCancelByClose(t *testing.T) {
	t.Parallel()
	ends := &callEnds{}
	g, url := startWSGateway(t, startBackend(t, nil, grpc.StatsHandler(ends)), gateway.WebSocketConfig{})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := dialWS(t, ctx, url, greetPath+"Chat", testOrigin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send(&greetv1.ChatRequest{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the header frame and the answer
		if _, _, err := c.next(); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.conn.CloseNow()
	waitFor(t, "the backend call to end", func() bool { return len(ends.of("/greet.v1.GreetService/Chat")) == 1 })
	if err := ends.of("/greet.v1.GreetService/Chat")[0]; status.Code(err).String() != "Canceled" {
		t.Errorf("backend call ended with %v, want Canceled", err)
	}
	waitFor(t, "the stream count to drop", func() bool { return g.WebSocketStreams() == 0 })
}

// TestWebSocketPing: an idle stream whose client answers pings stays open;
// a client that never reads (so never answers) is cut.
func TestWebSocketPing(t *testing.T) {
	t.Parallel()
	// The interval is also the time a client has to answer: long enough for
	// a client goroutine to be scheduled on a loaded machine under -race.
	const interval = 250 * time.Millisecond
	g, url := startWSGateway(t, startBackend(t, nil), gateway.WebSocketConfig{PingInterval: interval})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	alive, _, err := dialWS(t, ctx, url, greetPath+"Chat", testOrigin, nil)
	if err != nil {
		t.Fatal(err)
	}
	reading := make(chan error, 1)
	go func() { _, err := alive.readAll(); reading <- err }()

	dead, _, err := dialWS(t, ctx, url, greetPath+"Chat", testOrigin, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = dead // never read: pings go unanswered
	waitFor(t, "the silent client to be cut", func() bool { return g.WebSocketStreams() == 1 })
	time.Sleep(6 * interval)
	if g.WebSocketStreams() != 1 {
		t.Fatalf("%d streams open, want the answering one", g.WebSocketStreams())
	}
	if err := alive.send(&greetv1.ChatRequest{Text: "still here"}); err != nil {
		t.Fatal(err)
	}
	if err := alive.finish(); err != nil {
		t.Fatal(err)
	}
	if err := <-reading; err != nil {
		t.Fatal(err)
	}
}

// TestWebSocketStall: a client that stops reading a stream is cut after the
// stall timeout, as on the HTTP paths.
func TestWebSocketStall(t *testing.T) {
	t.Parallel()
	g, url := startWSGateway(t, startBackend(t, nil),
		gateway.WebSocketConfig{PingInterval: -1}, func(c *gateway.Config) { c.StallTimeout = 200 * time.Millisecond })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := dialWS(t, ctx, url, greetPath+"GreetStream", testOrigin, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.send(&greetv1.GreetStreamRequest{Name: strings.Repeat("n", 4000), Count: 100000}); err != nil {
		t.Fatal(err)
	}
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the stream to open", func() bool { return g.WebSocketStreams() == 1 })
	waitFor(t, "the stalled stream to be cut", func() bool { return g.WebSocketStreams() == 0 })
}
