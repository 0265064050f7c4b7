package balancer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/http2"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/h2client"
)

// fakeBackend speaks just enough HTTP/2 to take a call: SETTINGS, then,
// for every request's HEADERS, refuses the stream (REFUSED_STREAM) or
// closes the connection, after counting it.
type fakeBackend struct {
	addr    string
	refuse  bool
	headers atomic.Int64
}

func startFake(tb testing.TB, refuse bool) *fakeBackend {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	f := &fakeBackend{addr: lis.Addr().String(), refuse: refuse}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	tb.Cleanup(func() {
		_ = lis.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { f.serve(c) })
		}
	})
	return f
}

func (f *fakeBackend) serve(c net.Conn) {
	defer c.Close()
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil {
		return
	}
	fr := http2.NewFramer(c, c)
	if fr.WriteSettings() != nil {
		return
	}
	for {
		frame, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch frame := frame.(type) {
		case *http2.SettingsFrame:
			if !frame.IsAck() && fr.WriteSettingsAck() != nil {
				return
			}
		case *http2.HeadersFrame:
			f.headers.Add(1)
			if !f.refuse {
				return // the connection closes with the call's bytes read
			}
			if fr.WriteRSTStream(frame.StreamID, http2.ErrCodeRefusedStream) != nil {
				return
			}
		}
	}
}

// TestRetryConnectionRefused: a call whose replica refuses the connection
// goes to another replica and succeeds; the refusing one is ejected.
func TestRetryConnectionRefused(t *testing.T) {
	t.Parallel()
	dead, live := closedPort(t), startCounted(t)
	p := newPool(t, Config{Addresses: []string{dead, live.addr}})
	for range 10 {
		if err := greet(context.Background(), p, greetRequest("x")); err != nil {
			t.Fatal(err)
		}
	}
	d := status(p, dead)
	if d.Calls != 1 || d.State != StateEjected || d.Ejections != 1 {
		t.Errorf("refusing replica %+v: want one call tried, then ejected", d)
	}
	if live.calls.Load() != 10 {
		t.Errorf("live replica served %d of 10 calls", live.calls.Load())
	}
}

// TestRetryRefusedStream: a call the replica refused with REFUSED_STREAM
// goes to another replica; the refusing one stays in the pool (it is
// alive, only busy).
func TestRetryRefusedStream(t *testing.T) {
	t.Parallel()
	refusing, live := startFake(t, true), startCounted(t)
	p := newPool(t, Config{Addresses: []string{refusing.addr, live.addr}})
	for range 6 {
		if err := greet(context.Background(), p, greetRequest("x")); err != nil {
			t.Fatal(err)
		}
	}
	if refusing.headers.Load() == 0 || live.calls.Load() != 6 {
		t.Errorf("refusing replica saw %d streams, live one %d calls: want some, and all 6", refusing.headers.Load(), live.calls.Load())
	}
	if s := status(p, refusing.addr); s.State != StateReady {
		t.Errorf("refusing replica %+v: want it still ready", s)
	}
}

// TestNoRetryAfterBytesSent: a call whose replica received it and then
// dropped the connection is not sent to another replica: it could have
// been processed. Both replicas count what reached them.
func TestNoRetryAfterBytesSent(t *testing.T) {
	t.Parallel()
	a, b := startFake(t, false), startFake(t, false)
	p := newPool(t, Config{Addresses: []string{a.addr, b.addr}})
	for i := range 4 {
		err := greet(context.Background(), p, greetRequest("x"))
		if !errors.Is(err, errTransport) || h2client.Unprocessed(err) {
			t.Errorf("call %d: %v, want the dropped connection's error", i, err)
		}
		if got := a.headers.Load() + b.headers.Load(); got != int64(i+1) {
			t.Fatalf("after %d calls the replicas received %d: a call was sent twice", i+1, got)
		}
	}
	for _, s := range p.Replicas() {
		if s.State != StateReady || s.Outstanding != 0 {
			t.Errorf("replica %+v: want ready, nothing outstanding (it accepts connections)", s)
		}
	}
}

// TestNoRetryWithoutGetBody: a call whose body cannot be replayed is not
// retried even when it never reached its replica.
func TestNoRetryWithoutGetBody(t *testing.T) {
	t.Parallel()
	dead, live := closedPort(t), startCounted(t)
	p := newPool(t, Config{Addresses: []string{dead, live.addr}})
	failed := 0
	for range 4 {
		req := greetRequest("x")
		req.Body = io.NopCloser(bytes.NewReader(grpcFrame(&greetv1.GreetRequest{Name: "x"})))
		req.GetBody = nil
		err := greet(context.Background(), p, req)
		if err != nil {
			failed++
			if !h2client.DialFailed(err) {
				t.Errorf("call failed with %v, want the dial error", err)
			}
		}
	}
	if d := status(p, dead); failed != int(d.Calls) || d.Calls != 1 {
		t.Errorf("%d calls failed, the refusing replica was tried %d times: want 1 and 1", failed, d.Calls)
	}
	// A body-less call (GetBody not needed) is retried.
	q := newPool(t, Config{Addresses: []string{closedPort(t), live.addr}})
	for range 2 {
		req := greetRequest("x")
		req.Body, req.GetBody, req.ContentLength = http.NoBody, nil, 0
		// greetd answers an empty request with a status, not a transport error.
		if err := greet(context.Background(), q, req); err != nil && errors.Is(err, errTransport) {
			t.Errorf("body-less call: %v", err)
		} else if err != nil && !strings.Contains(err.Error(), "grpc-status") {
			t.Errorf("body-less call: %v", err)
		}
	}
}
