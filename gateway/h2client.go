package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// h2Transport is the gateway's HTTP/2 client for calls to the backend: an
// [http.RoundTripper] speaking only what gRPC needs of HTTP/2 (POST with a
// body, response headers, data and trailers), over h2c or TLS with ALPN h2.
//
// It exists for speed. net/http's HTTP/2 client flushes the request's
// HEADERS frame and its DATA frames in separate writes, so a unary call costs
// the gateway at least two write system calls to the backend, and they were
// the largest single cost in the gateway's profile. Here every writer appends
// its frames to the connection's buffer and the last of the writers queued
// at that moment flushes them all: a unary call's HEADERS, DATA and
// END_STREAM leave in one write, and under load several calls share one.
// See BENCHMARKS.md for what it saves.
//
// Flow control: the backend may send a stream at most backendStreamWindow
// bytes ahead of what the gateway's client has read (memory per stuck
// client is bounded by it); the connection window is large, and returned as
// streams are read or dropped, so stuck clients pin only their own streams.
// A connection carrying calls that goes silent is pinged, and closed when
// the ping goes unanswered, failing its calls with UNAVAILABLE. A call that
// the backend refused before processing it (REFUSED_STREAM, or a GOAWAY
// that excludes it) is retried on another connection when its body can be
// replayed.
//
// Files: h2client.go the transport and its pool, h2conn.go a connection's
// write side and life, h2read.go its read loop, h2stream.go one call.
type h2Transport struct {
	authority string
	scheme    string
	dial      func(ctx context.Context) (net.Conn, error)

	mu      sync.Mutex
	conns   []*h2Conn
	dialing *h2Dial
	closed  bool
}

// h2Dial is a connection being opened; callers that need one wait for it.
type h2Dial struct {
	done chan struct{}
	cc   *h2Conn
	err  error
}

const (
	// h2InitialMaxStreams is the backend's assumed stream limit until its
	// SETTINGS say otherwise; h2DefaultMaxStreams applies when they say
	// nothing (a new connection is opened past it).
	h2InitialMaxStreams = 100
	h2DefaultMaxStreams = 1000
	// h2MaxHeaderList bounds the response header and trailer block.
	h2MaxHeaderList = 10 << 20
	// h2DialTimeout bounds opening a connection (TCP, TLS, preface).
	h2DialTimeout = 10 * time.Second
	// h2Retries is how often a refused, replayable call is retried.
	h2Retries = 3
)

func newH2Transport(useTLS bool, tlsConf *tls.Config, authority string) *h2Transport {
	d := &net.Dialer{Timeout: h2DialTimeout, KeepAlive: 30 * time.Second}
	t := &h2Transport{authority: authority, scheme: "http"}
	t.dial = func(ctx context.Context) (net.Conn, error) { return d.DialContext(ctx, "tcp", authority) }
	if useTLS {
		t.scheme = "https"
		if tlsConf == nil {
			tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		} else {
			tlsConf = tlsConf.Clone()
		}
		if tlsConf.ServerName == "" {
			if host, _, err := net.SplitHostPort(authority); err == nil {
				tlsConf.ServerName = host
			}
		}
		tlsConf.NextProtos = []string{"h2"}
		td := &tls.Dialer{NetDialer: d, Config: tlsConf}
		t.dial = func(ctx context.Context) (net.Conn, error) {
			nc, err := td.DialContext(ctx, "tcp", authority)
			if err != nil {
				return nil, err
			}
			if p := nc.(*tls.Conn).ConnectionState().NegotiatedProtocol; p != "h2" {
				_ = nc.Close()
				return nil, fmt.Errorf("backend %s negotiated %q over TLS, not h2", authority, p)
			}
			return nc, nil
		}
	}
	return t
}

// h2PingAfter and h2PingTimeout: a connection carrying calls that read
// nothing for h2PingAfter is pinged, and closed if it stays silent for
// h2PingTimeout more. Variables for tests.
var (
	h2PingAfter   = 30 * time.Second
	h2PingTimeout = 15 * time.Second
)

// errH2Closed is the error of calls after the transport was closed.
var errH2Closed = errors.New("gateway: backend transport closed")

// RoundTrip sends req to the backend and returns once the response headers
// arrived; the body streams after. It closes req.Body, possibly after
// returning.
func (t *h2Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.roundTrip(req.Context(), req, false)
}

// roundTrip is RoundTrip under ctx (req's own context is not used, which
// spares the gateway a copy of its request per call). With whole, the
// response is handed over once it ended, or once it buffered a window's
// worth: the caller of a unary call is then woken once instead of for the
// headers, the message and the trailers in turn.
func (t *h2Transport) roundTrip(ctx context.Context, req *http.Request, whole bool) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		cc, err := t.conn(ctx)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		resp, err := cc.roundTrip(ctx, req, whole)
		if err == nil {
			return resp, nil
		}
		var refused *h2Refused
		if !errors.As(err, &refused) || attempt == h2Retries || ctx.Err() != nil {
			closeBody(req)
			return nil, err
		}
		if req, err = rewind(req); err != nil {
			return nil, refused
		}
	}
}

// closeBody closes the body of a request that failed. In a goroutine:
// closing a request body can wait for a read under way (an HTTP/1.1
// server's does), and the failure is to be answered now.
func closeBody(req *http.Request) {
	switch req.Body.(type) {
	case nil, bytesBody:
	default:
		if req.Body != http.NoBody {
			go func() { _ = req.Body.Close() }()
		}
	}
}

// rewind returns req with a fresh body, for a retry.
func rewind(req *http.Request) (*http.Request, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, nil
	}
	if req.GetBody == nil {
		return nil, errors.New("body not replayable")
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, err
	}
	r := *req
	r.Body = body
	return &r, nil
}

// h2Refused is the error of a call the backend did not process.
type h2Refused struct{ reason string }

func (e *h2Refused) Error() string { return "backend refused the stream: " + e.reason }

// conn returns a connection with room for one more stream, reserving it.
func (t *h2Transport) conn(ctx context.Context) (*h2Conn, error) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, errH2Closed
		}
		for _, cc := range t.conns {
			if cc.reserve() {
				t.mu.Unlock()
				return cc, nil
			}
		}
		d := t.dialing
		if d == nil {
			d = &h2Dial{done: make(chan struct{})}
			t.dialing = d
			go t.dialConn(d)
		}
		t.mu.Unlock()
		select {
		case <-d.done:
			if d.err != nil {
				return nil, d.err
			}
			if d.cc.reserve() {
				return d.cc, nil
			}
			if d.cc.takesNoStreams() {
				// Dialing again would get the same answer, forever.
				return nil, errors.New("backend allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS is 0)")
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (t *h2Transport) dialConn(d *h2Dial) {
	ctx, cancel := context.WithTimeout(context.Background(), h2DialTimeout)
	defer cancel()
	nc, err := t.dial(ctx)
	var cc *h2Conn
	if err == nil {
		cc, err = newH2Conn(t, nc)
	}
	if err == nil {
		// Wait for the backend's SETTINGS, so that its stream limit is
		// known before the first call: streams over it would be refused.
		select {
		case <-cc.settingsSeen:
		case <-cc.done:
			err = cc.closeErr
		case <-ctx.Done():
			err = errors.New("backend sent no HTTP/2 SETTINGS")
			cc.close(err)
		}
	}
	t.mu.Lock()
	if err == nil && t.closed {
		err = errH2Closed
		cc.close(errH2Closed)
	}
	if err == nil {
		t.conns = append(t.conns, cc)
	}
	d.cc, d.err = cc, err
	t.dialing = nil
	t.mu.Unlock()
	close(d.done)
}

// forget drops a connection that takes no new streams.
func (t *h2Transport) forget(cc *h2Conn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, c := range t.conns {
		if c == cc {
			t.conns = append(t.conns[:i], t.conns[i+1:]...)
			return
		}
	}
}

// CloseIdleConnections closes the connections that carry no call.
func (t *h2Transport) CloseIdleConnections() {
	t.mu.Lock()
	conns := append([]*h2Conn(nil), t.conns...)
	t.mu.Unlock()
	for _, cc := range conns {
		cc.closeIfIdle()
	}
}

// Close closes every connection and fails calls in flight.
func (t *h2Transport) Close() {
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = nil
	t.mu.Unlock()
	for _, cc := range conns {
		cc.close(errH2Closed)
	}
}
