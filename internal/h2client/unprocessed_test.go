package h2client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// closedPort returns a loopback address nothing listens on.
func closedPort(tb testing.TB) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// TestUnprocessedDialFailure: a call to a port that refuses connections,
// and Connect to it, fail with an error that says nothing was sent.
func TestUnprocessedDialFailure(t *testing.T) {
	t.Parallel()
	addr := closedPort(t)
	tr := newTestTransport(t, Config{Authority: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	frame := h2Frame(t, &greetv1.GreetRequest{Name: "x"})
	_, err := tr.Call(ctx, h2Request(ctx, addr, "Greet", NewBytesBody(frame)), true)
	if !Unprocessed(err) || !DialFailed(err) {
		t.Errorf("Call: err = %v, Unprocessed %v, DialFailed %v; want both true", err, Unprocessed(err), DialFailed(err))
	}
	if err := tr.Connect(ctx); !DialFailed(err) {
		t.Errorf("Connect: err = %v, want a dial failure", err)
	}
}

// TestConnect opens a connection that the next call uses.
func TestConnect(t *testing.T) {
	t.Parallel()
	addr := h2Backend(t)
	tr := newTestTransport(t, Config{Authority: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := tr.Connect(ctx); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	tr.mu.Lock()
	n := len(tr.conns)
	tr.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d connections after Connect, want 1", n)
	}
	frame := h2Frame(t, &greetv1.GreetRequest{Name: "x"})
	resp, err := tr.Call(ctx, h2Request(ctx, addr, "Greet", NewBytesBody(frame)), true)
	if err != nil {
		t.Fatal(err)
	}
	if _, st := h2Messages(t, resp); st != "0" {
		t.Errorf("grpc-status %q", st)
	}
	tr.mu.Lock()
	n = len(tr.conns)
	tr.mu.Unlock()
	if n != 1 {
		t.Errorf("%d connections after a call, want the one Connect opened", n)
	}
}

// TestUnprocessedClosedTransport: a closed transport sends nothing.
func TestUnprocessedClosedTransport(t *testing.T) {
	t.Parallel()
	tr := newTestTransport(t, Config{Authority: "127.0.0.1:1"})
	tr.Close()
	ctx := context.Background()
	_, err := tr.Call(ctx, h2Request(ctx, "127.0.0.1:1", "Greet", nil), true)
	if !Unprocessed(err) || DialFailed(err) {
		t.Errorf("err = %v, Unprocessed %v, DialFailed %v; want true, false", err, Unprocessed(err), DialFailed(err))
	}
}

// TestUnprocessedBackendAnswers: what a backend answers after the call's
// HEADERS arrived decides whether the call counts as unprocessed.
// Not parallel: the fake backend's call has a 50 ms deadline.
func TestUnprocessedBackendAnswers(t *testing.T) {
	frames := func(write func(*http2.Framer)) []byte {
		var b bytes.Buffer
		write(http2.NewFramer(&b, nil))
		return b.Bytes()
	}
	for _, tc := range []struct {
		name string
		data []byte
		want bool
	}{
		{name: "REFUSED_STREAM", data: frames(func(f *http2.Framer) { _ = f.WriteRSTStream(1, http2.ErrCodeRefusedStream) }), want: true},
		{name: "GOAWAY below the stream", data: frames(func(f *http2.Framer) { _ = f.WriteGoAway(0, http2.ErrCodeNo, nil) }), want: true},
		{name: "RST_STREAM INTERNAL_ERROR", data: frames(func(f *http2.Framer) { _ = f.WriteRSTStream(1, http2.ErrCodeInternal) }), want: false},
		{name: "GOAWAY above the stream", data: frames(func(f *http2.Framer) {
			_ = f.WriteGoAway(1, http2.ErrCodeNo, nil)
			_ = f.WriteRSTStream(1, http2.ErrCodeInternal)
		}), want: false},
	} {
		_, _, err := h2FakeBackendCall(t, tc.data, true)
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: err = %v, want the backend's answer", tc.name, err)
			continue
		}
		if got := Unprocessed(err); got != tc.want || DialFailed(err) {
			t.Errorf("%s: err = %v, Unprocessed %v, DialFailed %v; want %v, false", tc.name, err, got, DialFailed(err), tc.want)
		}
	}
	if Unprocessed(nil) || Unprocessed(context.Canceled) || DialFailed(nil) {
		t.Error("nil or a context error counts as unprocessed")
	}
}

// resetConn is a connection whose writes fail, once broken, with nothing
// written, as writes to a peer that reset the connection do.
type resetConn struct {
	net.Conn
	broken atomic.Bool
}

func (c *resetConn) Write(p []byte) (int, error) {
	if c.broken.Load() {
		return 0, syscall.ECONNRESET
	}
	return c.Conn.Write(p)
}

// TestUnprocessedWriteReset: a connection whose peer is gone (a replica
// killed) fails the write of a new call's first frames. None of its bytes
// left, so the call is refused, not failed, and the transport sends it
// again on a new connection.
func TestUnprocessedWriteReset(t *testing.T) {
	t.Parallel()
	addr := h2Backend(t)
	var conns []*resetConn
	var mu sync.Mutex
	tr := newTestTransport(t, Config{Authority: addr, DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, a)
		if err != nil {
			return nil, err
		}
		rc := &resetConn{Conn: nc}
		mu.Lock()
		conns = append(conns, rc)
		mu.Unlock()
		return rc, nil
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	greet := func() error {
		frame := h2Frame(t, &greetv1.GreetRequest{Name: "r"})
		req := h2Request(ctx, addr, "Greet", NewBytesBody(frame))
		req.GetBody = func() (io.ReadCloser, error) { return NewBytesBody(frame), nil }
		resp, err := tr.Call(ctx, req, true)
		if err != nil {
			return err
		}
		msgs, status := h2Messages(t, resp)
		if status != "0" || len(msgs) != 1 {
			return errors.New("status " + status)
		}
		return nil
	}
	if err := greet(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	conns[0].broken.Store(true)
	mu.Unlock()
	if err := greet(); err != nil {
		t.Fatalf("a call whose first write met a reset connection: %v; want it sent again on a new connection", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(conns) != 2 {
		t.Errorf("%d connections dialed, want 2", len(conns))
	}
}
