package h2client

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Default values of [Config].
const (
	// DefaultStreamWindow is the default [Config.StreamWindow]. A caller
	// that stops reading pins its stream's unread window, in memory too, so
	// the stream window is small.
	DefaultStreamWindow = 256 << 10
	// DefaultConnWindow is the default [Config.ConnWindow]: large (a window,
	// not an allocation), so that thousands of stuck callers, not a handful,
	// would be needed to stall a connection.
	DefaultConnWindow = 1 << 30
	// DefaultPingAfter is the default [Config.PingAfter].
	DefaultPingAfter = 30 * time.Second
	// DefaultPingTimeout is the default [Config.PingTimeout].
	DefaultPingTimeout = 15 * time.Second
)

// Config configures a [Transport]. The zero value of every field but
// Authority is its default.
type Config struct {
	// Authority is the backend's "host:port": where connections go, and the
	// :authority of requests with no Host. Required.
	Authority string
	// TLS, when not nil, makes connections TLS with ALPN h2: it is cloned,
	// its NextProtos replaced by "h2", and an empty ServerName set to the
	// Authority's host. A backend that negotiates anything but h2 is
	// refused. Nil means h2c (HTTP/2 over plain TCP).
	TLS *tls.Config
	// StreamWindow is how many bytes the backend may send on one stream
	// ahead of what the caller read. The default (zero) is
	// [DefaultStreamWindow]; it must be at least 16 KiB and less than 2 GiB.
	StreamWindow int
	// ConnWindow is the same for a whole connection. The default (zero) is
	// [DefaultConnWindow]; it must be at least 64 KiB and less than 2 GiB.
	ConnWindow int
	// PingAfter is how long a connection carrying calls may read nothing
	// before it is pinged; PingTimeout how much longer it may stay silent
	// before it is closed and its calls fail. The defaults (zero) are
	// [DefaultPingAfter] and [DefaultPingTimeout]; less than a millisecond
	// is refused.
	PingAfter, PingTimeout time.Duration
	// DialContext, when not nil, opens the TCP connections in place of a
	// [net.Dialer] with a 10 s timeout and 30 s keep-alives; with TLS, the
	// handshake runs over what it returns. Tests use it for in-memory
	// backends.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Transport is an HTTP/2 client to one backend, safe for concurrent use.
// Its connections are shared by every call; see the package doc for what
// it does.
type Transport struct {
	authority    string
	scheme       string
	tls          *tls.Config // nil for h2c
	dialTCP      func(ctx context.Context, network, addr string) (net.Conn, error)
	streamWindow int
	connWindow   int
	handOver     int // see handOverLocked
	pingAfter    time.Duration
	pingTimeout  time.Duration

	mu      sync.Mutex
	conns   []*clientConn
	dialing *pendingDial
	closed  bool
}

// pendingDial is a connection being opened; callers that need one wait for it.
type pendingDial struct {
	done chan struct{}
	cc   *clientConn
	err  error
}

const (
	// initialMaxStreams is the backend's assumed stream limit until its
	// SETTINGS say otherwise; defaultMaxStreams applies when they say
	// nothing (a new connection is opened past it).
	initialMaxStreams = 100
	defaultMaxStreams = 1000
	// maxHeaderList bounds the response header and trailer block.
	maxHeaderList = 10 << 20
	// dialTimeout bounds opening a connection (TCP, TLS, preface).
	dialTimeout = 10 * time.Second
	// maxRetries is how often a refused, replayable call is retried.
	maxRetries = 3
)

// New validates cfg and returns a transport. It does not dial: connections
// open with the first calls.
func New(cfg Config) (*Transport, error) {
	if _, port, err := net.SplitHostPort(cfg.Authority); err != nil || port == "" {
		return nil, fmt.Errorf("h2client: Config.Authority %q: give host:port", cfg.Authority)
	}
	t := &Transport{
		authority:    cfg.Authority,
		scheme:       "http",
		dialTCP:      cfg.DialContext,
		streamWindow: cmp.Or(cfg.StreamWindow, DefaultStreamWindow),
		connWindow:   cmp.Or(cfg.ConnWindow, DefaultConnWindow),
		pingAfter:    cmp.Or(cfg.PingAfter, DefaultPingAfter),
		pingTimeout:  cmp.Or(cfg.PingTimeout, DefaultPingTimeout),
	}
	switch {
	case t.streamWindow < 16<<10 || t.streamWindow > 1<<31-1:
		return nil, fmt.Errorf("h2client: Config.StreamWindow %d: give 16 KiB to 2 GiB - 1, or 0 for %d", cfg.StreamWindow, DefaultStreamWindow)
	case t.connWindow < 65535 || t.connWindow > 1<<31-1:
		return nil, fmt.Errorf("h2client: Config.ConnWindow %d: give 64 KiB to 2 GiB - 1, or 0 for %d", cfg.ConnWindow, DefaultConnWindow)
	case t.pingAfter < time.Millisecond || t.pingTimeout < time.Millisecond:
		return nil, fmt.Errorf("h2client: Config.PingAfter %v, PingTimeout %v: give 1ms or more, or 0 for the defaults", cfg.PingAfter, cfg.PingTimeout)
	}
	t.handOver = t.streamWindow / 4
	if t.dialTCP == nil {
		t.dialTCP = (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	if cfg.TLS != nil {
		t.scheme = "https"
		t.tls = cfg.TLS.Clone()
		if t.tls.ServerName == "" {
			if host, _, err := net.SplitHostPort(cfg.Authority); err == nil {
				t.tls.ServerName = host
			}
		}
		t.tls.NextProtos = []string{"h2"}
	}
	return t, nil
}

// Dial opens a connection to the backend as the transport's own are opened:
// TCP, then, with [Config.TLS], a TLS handshake that must negotiate h2; the
// whole within 10 s and ctx. Its signature is that of
// [http.Transport.DialContext] and DialTLSContext, so that other clients of
// the backend dial the same way; network and addr are ignored (the backend
// is the Authority).
func (t *Transport) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	nc, err := t.dialTCP(ctx, "tcp", t.authority)
	if err != nil || t.tls == nil {
		return nc, err
	}
	tc := tls.Client(nc, t.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, err
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		_ = nc.Close()
		return nil, fmt.Errorf("backend %s negotiated %q over TLS, not h2", t.authority, p)
	}
	return tc, nil
}

// errClosed is the error of calls after the transport was closed.
var errClosed = errors.New("h2client: transport closed")

// RoundTrip sends req to the backend and returns once the response headers
// arrived; the body streams after. It closes req.Body, possibly after
// returning. Only req's method, URL path and query, Host, Header,
// ContentLength, Body and GetBody are used; headers HTTP/2 forbids are
// dropped.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.Call(req.Context(), req, false)
}

// Call is [Transport.RoundTrip] under ctx: req's own context is not used,
// which spares a caller a copy of its request per call. With whole, the
// response is handed over once it ended, or once it buffered a quarter of
// the stream window: the caller of a unary call is then woken once instead
// of for the headers, the message and the trailers in turn.
func (t *Transport) Call(ctx context.Context, req *http.Request, whole bool) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		cc, err := t.conn(ctx)
		if err != nil {
			CloseBody(req)
			return nil, err
		}
		resp, err := cc.roundTrip(ctx, req, whole)
		if err == nil {
			return resp, nil
		}
		var refused *refusedError
		if !errors.As(err, &refused) || attempt == maxRetries || ctx.Err() != nil {
			CloseBody(req)
			return nil, err
		}
		if req, err = Rewind(req); err != nil {
			return nil, refused
		}
	}
}

// closeBody closes the body of a request that failed. In a goroutine:
// closing a request body can wait for a read under way (an HTTP/1.1
// server's does), and the failure is to be answered now.
// CloseBody closes the body of a request that will not be sent, in a
// goroutine: closing a client's body can wait for a read under way.
func CloseBody(req *http.Request) {
	switch req.Body.(type) {
	case nil, bytesBody:
	default:
		if req.Body != http.NoBody {
			go func() { _ = req.Body.Close() }()
		}
	}
}

// Rewind returns req with a fresh body (from req.GetBody), for a retry, or
// an error when its body cannot be replayed.
func Rewind(req *http.Request) (*http.Request, error) {
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

// refusedError is the error of a call the backend did not process.
type refusedError struct{ reason string }

func (e *refusedError) Error() string { return "backend refused the stream: " + e.reason }

// dialError is the error of a call that found no connection: opening one
// failed (TCP, TLS, the HTTP/2 preface and SETTINGS), so nothing of the
// call left. Its text is the cause's.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// Unprocessed reports whether err, an error of [Transport.Call] or
// [Transport.RoundTrip], says the backend did not process the call: no
// byte of it reached the backend (opening a connection failed, the
// connection broke before any of the call's frames went out, the transport
// was closed), or the backend refused it unprocessed (REFUSED_STREAM, a
// stream above a GOAWAY's last stream id). Such a call may be sent again,
// elsewhere, when its body can be replayed. It is false for every other
// error, nil and context errors included: a call whose bytes may have been
// processed must not be sent twice.
func Unprocessed(err error) bool {
	var refused *refusedError
	var dial *dialError
	return errors.As(err, &refused) || errors.As(err, &dial) || errors.Is(err, errClosed)
}

// DialFailed reports whether err, an error of [Transport.Call],
// [Transport.RoundTrip] or [Transport.Connect], says that a connection to
// the backend could not be opened (refused, timed out, TLS or ALPN failed,
// no HTTP/2 SETTINGS, a backend that allows no stream). Such an error is
// also [Unprocessed].
func DialFailed(err error) bool {
	var dial *dialError
	return errors.As(err, &dial)
}

// Connect makes sure the transport has a connection with room for a call,
// opening one when it has none, and returns once it is usable (the
// backend's SETTINGS arrived), or the error of opening it ([DialFailed]),
// or ctx's. Calls need not wait for it: they open connections themselves.
// Health probes use it to learn that a backend takes connections again.
func (t *Transport) Connect(ctx context.Context) error {
	cc, err := t.conn(ctx)
	if err != nil {
		return err
	}
	cc.release()
	return nil
}

// conn returns a connection with room for one more stream, reserving it.
func (t *Transport) conn(ctx context.Context) (*clientConn, error) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, errClosed
		}
		for _, cc := range t.conns {
			if cc.reserve() {
				t.mu.Unlock()
				return cc, nil
			}
		}
		d := t.dialing
		if d == nil {
			d = &pendingDial{done: make(chan struct{})}
			t.dialing = d
			go t.dialConn(d)
		}
		t.mu.Unlock()
		select {
		case <-d.done:
			if d.err != nil {
				if errors.Is(d.err, errClosed) {
					return nil, d.err
				}
				return nil, &dialError{d.err}
			}
			if d.cc.reserve() {
				return d.cc, nil
			}
			if d.cc.takesNoStreams() {
				// Dialing again would get the same answer, forever.
				return nil, &dialError{errors.New("backend allows no streams (SETTINGS_MAX_CONCURRENT_STREAMS is 0)")}
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (t *Transport) dialConn(d *pendingDial) {
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	nc, err := t.Dial(ctx, "tcp", t.authority)
	var cc *clientConn
	if err == nil {
		cc, err = newClientConn(t, nc)
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
		err = errClosed
		cc.close(errClosed)
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
func (t *Transport) forget(cc *clientConn) {
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
func (t *Transport) CloseIdleConnections() {
	t.mu.Lock()
	conns := append([]*clientConn(nil), t.conns...)
	t.mu.Unlock()
	for _, cc := range conns {
		cc.closeIfIdle()
	}
}

// Close closes every connection and fails calls in flight; calls after it
// fail too.
func (t *Transport) Close() {
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = nil
	t.mu.Unlock()
	for _, cc := range conns {
		cc.close(errClosed)
	}
}
