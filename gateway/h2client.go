package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
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
// Idle connections are pinged, and a connection that does not answer is
// closed, failing its calls with UNAVAILABLE. A call that the backend
// refused before processing it (REFUSED_STREAM, or a GOAWAY that excludes
// it) is retried on another connection when its body can be replayed.
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

// takesNoStreams reports a backend that allows no stream at all.
func (cc *h2Conn) takesNoStreams() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.maxStreams == 0
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

// h2Conn is one HTTP/2 connection to the backend.
type h2Conn struct {
	t  *h2Transport
	nc net.Conn

	// The write side: frames go to bw under wmu; see writeFrames.
	wmu     sync.Mutex
	bw      *bufio.Writer
	wfr     *http2.Framer
	henc    *hpack.Encoder
	hbuf    bytes.Buffer
	waiting atomic.Int32 // writers queued for wmu or holding it
	werr    error

	rfr      *http2.Framer // read by readLoop only
	lastRead atomic.Int64  // unix nanoseconds of the last frame read

	mu           sync.Mutex
	cond         sync.Cond // send windows, stream aborts, close
	streams      map[uint32]*h2Stream
	nextID       uint32
	active       int    // streams reserved or open
	maxStreams   int    // the backend's limit
	sendWindow   int64  // connection send window
	initWindow   int64  // the backend's initial stream window
	maxFrame     int    // the backend's largest frame we may send
	connUnacked  int    // received bytes read or dropped, not yet returned
	goAway       bool   // no new streams
	lastStreamID uint32 // from GOAWAY: streams above it were not processed
	closed       bool
	closeErr     error
	done         chan struct{} // closed with the connection
	settingsSeen chan struct{} // closed at the backend's first SETTINGS
}

const h2ConnWindow = backendConnWindow

func newH2Conn(t *h2Transport, nc net.Conn) (*h2Conn, error) {
	cc := &h2Conn{
		t:            t,
		nc:           nc,
		bw:           bufio.NewWriterSize(nc, 32<<10),
		streams:      make(map[uint32]*h2Stream),
		nextID:       1,
		maxStreams:   h2InitialMaxStreams,
		sendWindow:   65535,
		initWindow:   65535,
		maxFrame:     16384,
		done:         make(chan struct{}),
		settingsSeen: make(chan struct{}),
	}
	cc.cond.L = &cc.mu
	cc.wfr = http2.NewFramer(cc.bw, nil)
	cc.henc = hpack.NewEncoder(&cc.hbuf)
	cc.rfr = http2.NewFramer(nil, bufio.NewReaderSize(nc, 32<<10))
	cc.rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	cc.rfr.MaxHeaderListSize = h2MaxHeaderList
	cc.rfr.SetMaxReadFrameSize(16384)
	cc.rfr.SetReuseFrames() // readFrames copies what it keeps
	cc.lastRead.Store(time.Now().UnixNano())

	_ = nc.SetWriteDeadline(time.Now().Add(h2DialTimeout))
	_, err := cc.bw.WriteString(http2.ClientPreface)
	if err == nil {
		err = cc.wfr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: backendStreamWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: h2MaxHeaderList},
		)
	}
	if err == nil {
		err = cc.wfr.WriteWindowUpdate(0, h2ConnWindow-65535)
	}
	if err == nil {
		err = cc.bw.Flush()
	}
	_ = nc.SetWriteDeadline(time.Time{})
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	go cc.readLoop()
	go cc.keepalive()
	return cc, nil
}

// reserve takes a stream slot when the connection has one.
func (cc *h2Conn) reserve() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.closed || cc.goAway || cc.active >= cc.maxStreams || cc.nextID >= 1<<31-1 {
		return false
	}
	cc.active++
	return true
}

// release gives back a slot reserved for a stream that never opened.
func (cc *h2Conn) release() {
	cc.mu.Lock()
	cc.active--
	cc.mu.Unlock()
}

// writeFrames runs fn, which writes frames with wfr, under the write lock.
// The flush is left to the last writer queued: frames of concurrent calls
// leave in one write.
func (cc *h2Conn) writeFrames(fn func() error) error {
	cc.waiting.Add(1)
	cc.wmu.Lock()
	if cc.werr != nil {
		// Nothing of this writer's went out: a call may be retried.
		cc.waiting.Add(-1)
		cc.wmu.Unlock()
		return &h2Refused{reason: "connection broken: " + cc.werr.Error()}
	}
	err := fn()
	if cc.waiting.Add(-1) == 0 && err == nil && cc.werr == nil {
		err = cc.bw.Flush()
	}
	if err != nil {
		cc.werr = err // a frame went out in part: the connection is lost
	}
	cc.wmu.Unlock()
	if err != nil {
		cc.close(err)
	}
	return err
}

// writeHeaderBlock encodes req's headers and writes them as HEADERS (and
// CONTINUATION) frames; wmu is held.
func (cc *h2Conn) writeHeaderBlock(id uint32, req *http.Request, endStream bool) error {
	cc.hbuf.Reset()
	host := req.Host
	if host == "" {
		host = cc.t.authority
	}
	path := req.URL.Path
	if req.URL.RawQuery != "" || path == "" {
		path = req.URL.RequestURI()
	}
	enc := cc.henc
	_ = enc.WriteField(hpack.HeaderField{Name: ":method", Value: req.Method})
	_ = enc.WriteField(hpack.HeaderField{Name: ":scheme", Value: cc.t.scheme})
	_ = enc.WriteField(hpack.HeaderField{Name: ":authority", Value: host})
	_ = enc.WriteField(hpack.HeaderField{Name: ":path", Value: path})
	for k, vs := range req.Header {
		name, ok := h2FieldName(k)
		if !ok {
			continue
		}
		for _, v := range vs {
			if name == "te" && v != "trailers" {
				continue
			}
			_ = enc.WriteField(hpack.HeaderField{Name: name, Value: v, Sensitive: name == "authorization"})
		}
	}
	if req.ContentLength > 0 {
		_ = enc.WriteField(hpack.HeaderField{Name: "content-length", Value: strconv.FormatInt(req.ContentLength, 10)})
	}
	block := cc.hbuf.Bytes()
	first := true
	for len(block) > 0 || first {
		n := min(len(block), 16384) // the least SETTINGS_MAX_FRAME_SIZE a peer may set
		frag := block[:n]
		block = block[n:]
		var err error
		if first {
			err = cc.wfr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndStream: endStream, EndHeaders: len(block) == 0})
			first = false
		} else {
			err = cc.wfr.WriteContinuation(id, len(block) == 0, frag)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// h2FieldName is the HTTP/2 field name of header k, ok false for the
// headers HTTP/2 forbids.
func h2FieldName(k string) (string, bool) {
	if lower, ok := commonFieldNames[k]; ok {
		return lower, true
	}
	switch http.CanonicalHeaderKey(k) {
	case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Host", "Content-Length":
		return "", false
	}
	return strings.ToLower(k), true
}

// commonFieldNames maps the canonical keys of the headers most calls carry
// to their HTTP/2 names, sparing a lowercase copy per header per call.
var commonFieldNames = func() map[string]string {
	m := make(map[string]string)
	for _, k := range []string{"Content-Type", "Te", "Grpc-Timeout", "Grpc-Encoding", "Grpc-Accept-Encoding",
		"User-Agent", "Authorization", "X-Request-Id", "Accept-Encoding", "Origin", "Referer",
		"X-Grpc-Web", "X-User-Agent", "Grpc-Message-Type", "Traceparent", "Tracestate"} {
		m[k] = strings.ToLower(k)
	}
	return m
}()

// bytesBody is a request body held whole, whose bytes a transport may take
// without reading.
type bytesBody struct {
	*bytes.Reader
	data []byte
}

func (b bytesBody) Close() error { return nil }

// roundTrip opens a stream on cc (a slot is reserved) and waits for the
// response headers.
func (cc *h2Conn) roundTrip(ctx context.Context, req *http.Request, wholeResp bool) (*http.Response, error) {
	cs := &h2Stream{cc: cc, req: req, ctx: ctx, respReady: make(chan struct{}), aborted: make(chan struct{}),
		sendDone: make(chan struct{}), recvWindow: backendStreamWindow, whole: wholeResp}
	cs.readCond.L = &cs.mu
	var whole []byte
	hasBody := req.Body != nil && req.Body != http.NoBody
	if bb, ok := req.Body.(bytesBody); ok {
		whole, hasBody = bb.data, len(bb.data) > 0
	}
	cs.stopCtx = context.AfterFunc(ctx, func() { cs.abort(ctx.Err(), true) })
	// Open the stream: the ID is taken under the write lock, so that IDs
	// go out in order. A body held whole goes with the headers when the
	// windows allow, in the same write.
	var refusal error
	err := cc.writeFrames(func() error {
		cc.mu.Lock()
		switch {
		case cc.closed || cc.goAway:
			refusal = &h2Refused{reason: "connection closing"}
		case cs.isAborted():
			refusal = cs.err
		}
		if refusal != nil {
			cc.mu.Unlock()
			return nil
		}
		cs.id = cc.nextID
		cc.nextID += 2
		cs.sendWindow = cc.initWindow
		cc.streams[cs.id] = cs
		inline := whole != nil && int64(len(whole)) <= min(cc.sendWindow, cs.sendWindow) && len(whole) <= cc.maxFrame
		if inline {
			cc.sendWindow -= int64(len(whole))
			cs.sendWindow -= int64(len(whole))
		}
		cc.mu.Unlock()
		if err := cc.writeHeaderBlock(cs.id, req, !hasBody); err != nil {
			return err
		}
		if inline {
			cs.sentEnd.Store(true)
			data := whole
			whole = nil
			return cc.wfr.WriteData(cs.id, true, data)
		}
		if !hasBody {
			cs.sentEnd.Store(true)
		}
		return nil
	})
	if err == nil {
		err = refusal
	}
	if err != nil {
		cs.noSender()
		if cs.id == 0 {
			cs.stopCtx()
			cc.release()
			return nil, err
		}
		select {
		case <-cs.respReady:
			// The backend answered in full and closed the connection
			// while the request was still being written: the answer
			// stands, as net/http's transport has it.
			return cs.resp, nil
		default:
		}
		cs.abort(err, false)
		return nil, err
	}
	if !cs.sentEnd.Load() {
		go cs.sendBody(req.Body, whole)
	} else {
		cs.noSender()
		if req.Body != nil {
			_ = req.Body.Close()
		}
	}
	select {
	case <-cs.respReady:
		return cs.resp, nil
	case <-cs.aborted:
		// The headers may have raced the abort: prefer them.
		select {
		case <-cs.respReady:
			return cs.resp, nil
		default:
		}
		// As net/http's transport does: once this returns, the request
		// body is closed and no longer read. Closing an HTTP/1.1 client's
		// body reads on to its end (within net/http's bound), so the
		// client's connection stays usable when the call is answered.
		<-cs.sendDone
		return nil, cs.err
	}
}

// close ends the connection and fails every stream on it.
func (cc *h2Conn) close(err error) {
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		return
	}
	cc.closed = true
	cc.closeErr = err
	streams := make([]*h2Stream, 0, len(cc.streams))
	for _, cs := range cc.streams {
		streams = append(streams, cs)
	}
	cc.cond.Broadcast()
	cc.mu.Unlock()
	close(cc.done)
	cc.t.forget(cc)
	_ = cc.nc.Close()
	for _, cs := range streams {
		serr := err
		if cs.id > cc.lastStreamIDIfGoAway() {
			serr = &h2Refused{reason: "connection closed"}
		}
		cs.abort(serr, false)
	}
}

func (cc *h2Conn) lastStreamIDIfGoAway() uint32 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.goAway {
		return cc.lastStreamID
	}
	return 1<<31 - 1
}

func (cc *h2Conn) busy() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.active > 0
}

func (cc *h2Conn) closeIfIdle() {
	cc.mu.Lock()
	idle := cc.active == 0
	cc.mu.Unlock()
	if idle {
		cc.close(errH2Closed)
	}
}

// keepalive pings a connection that read nothing for a while and closes it
// when the ping goes unanswered.
func (cc *h2Conn) keepalive() {
	tick := time.NewTicker(h2PingTimeout / 3)
	defer tick.Stop()
	var pingSent time.Time
	for {
		select {
		case <-cc.done:
			return
		case now := <-tick.C:
			last := time.Unix(0, cc.lastRead.Load())
			switch {
			case !pingSent.IsZero() && last.Before(pingSent) && now.Sub(pingSent) > h2PingTimeout:
				cc.close(errors.New("backend did not answer a ping"))
				return
			case now.Sub(last) > h2PingAfter && (pingSent.IsZero() || last.After(pingSent)) && cc.busy():
				// Only a connection carrying calls is pinged: gRPC servers
				// take pings on an idle connection as abuse.
				pingSent = now
				_ = cc.writeFrames(func() error { return cc.wfr.WritePing(false, [8]byte{'c', 'o', 'r', 's', 'g', 'a', 't', 'e'}) })
			}
		}
	}
}

// readLoop reads the backend's frames until the connection ends.
func (cc *h2Conn) readLoop() {
	err := cc.readFrames()
	cc.close(fmt.Errorf("backend connection lost: %v", err)) // %v: a lost connection is no end of body
}

func (cc *h2Conn) readFrames() error {
	for {
		f, err := cc.rfr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				if cs := cc.stream(se.StreamID); cs != nil {
					cs.abort(fmt.Errorf("backend stream error: %w", se), true)
				}
				continue
			}
			return err
		}
		cc.lastRead.Store(time.Now().UnixNano())
		switch f := f.(type) {
		case *http2.MetaHeadersFrame:
			err = cc.onHeaders(f)
		case *http2.DataFrame:
			err = cc.onData(f)
		case *http2.RSTStreamFrame:
			if cs := cc.stream(f.StreamID); cs != nil {
				var serr error = fmt.Errorf("backend reset the stream: %v", f.ErrCode)
				if f.ErrCode == http2.ErrCodeRefusedStream {
					serr = &h2Refused{reason: "REFUSED_STREAM"}
				}
				cs.abort(serr, false)
			}
		case *http2.SettingsFrame:
			err = cc.onSettings(f)
		case *http2.PingFrame:
			if !f.IsAck() {
				data := f.Data
				err = cc.writeFrames(func() error { return cc.wfr.WritePing(true, data) })
			}
		case *http2.WindowUpdateFrame:
			err = cc.onWindowUpdate(f)
		case *http2.GoAwayFrame:
			cc.onGoAway(f)
		case *http2.PushPromiseFrame:
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if err != nil {
			return err
		}
	}
}

func (cc *h2Conn) stream(id uint32) *h2Stream {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.streams[id]
}

func (cc *h2Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	var tableSize uint32
	var hasTable bool
	cc.mu.Lock()
	maxSeen := false
	err := f.ForeachSetting(func(s http2.Setting) error {
		switch s.ID {
		case http2.SettingMaxConcurrentStreams:
			cc.maxStreams = int(min(s.Val, 1<<20))
			maxSeen = true
		case http2.SettingInitialWindowSize:
			if s.Val > 1<<31-1 {
				return http2.ConnectionError(http2.ErrCodeFlowControl)
			}
			delta := int64(s.Val) - cc.initWindow
			cc.initWindow = int64(s.Val)
			for _, cs := range cc.streams {
				cs.sendWindow += delta
			}
		case http2.SettingMaxFrameSize:
			cc.maxFrame = int(s.Val)
		case http2.SettingHeaderTableSize:
			tableSize, hasTable = s.Val, true
		}
		return nil
	})
	first := false
	select {
	case <-cc.settingsSeen:
	default:
		first = true
		if !maxSeen {
			cc.maxStreams = h2DefaultMaxStreams
		}
	}
	cc.cond.Broadcast()
	cc.mu.Unlock()
	if err != nil {
		return err
	}
	if first {
		close(cc.settingsSeen)
	}
	return cc.writeFrames(func() error {
		if hasTable {
			cc.henc.SetMaxDynamicTableSizeLimit(tableSize)
		}
		return cc.wfr.WriteSettingsAck()
	})
}

func (cc *h2Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if f.StreamID == 0 {
		cc.sendWindow += int64(f.Increment)
		if cc.sendWindow > 1<<31-1 {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
	} else if cs := cc.streams[f.StreamID]; cs != nil {
		cs.sendWindow += int64(f.Increment)
	}
	cc.cond.Broadcast()
	return nil
}

func (cc *h2Conn) onGoAway(f *http2.GoAwayFrame) {
	cc.mu.Lock()
	cc.goAway = true
	cc.lastStreamID = f.LastStreamID
	var refused []*h2Stream
	for id, cs := range cc.streams {
		if id > f.LastStreamID {
			refused = append(refused, cs)
		}
	}
	idle := cc.active == 0
	cc.mu.Unlock()
	cc.t.forget(cc)
	for _, cs := range refused {
		cs.abort(&h2Refused{reason: "GOAWAY"}, false)
	}
	if idle {
		cc.close(errors.New("backend sent GOAWAY"))
	}
}

func (cc *h2Conn) onHeaders(f *http2.MetaHeadersFrame) error {
	cs := cc.stream(f.StreamID)
	if cs == nil {
		if f.StreamID >= cc.peekNextID() {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		return nil // a stream already reset
	}
	if f.Truncated {
		cs.abort(errors.New("backend response headers larger than the limit"), true)
		return nil
	}
	cs.mu.Lock()
	if cs.resp == nil {
		code, err := strconv.Atoi(f.PseudoValue("status"))
		if err != nil || code < 100 || code > 999 {
			cs.mu.Unlock()
			cs.abort(errors.New("backend response without a valid :status"), true)
			return nil
		}
		if code < 200 {
			cs.mu.Unlock()
			if f.StreamEnded() {
				cs.abort(errors.New("backend ended the stream with an informational response"), true)
			}
			return nil // 1xx: the final response follows
		}
		hdr := make(http.Header, len(f.Fields))
		for _, hf := range f.RegularFields() {
			addField(hdr, hf)
		}
		status := "200 OK"
		if code != http.StatusOK {
			status = strconv.Itoa(code) + " " + http.StatusText(code)
		}
		cs.resp = &http.Response{
			Status:        status,
			StatusCode:    code,
			Proto:         "HTTP/2.0",
			ProtoMajor:    2,
			Header:        hdr,
			Body:          (*h2Body)(cs),
			ContentLength: -1,
			Request:       cs.req,
		}
		if f.StreamEnded() {
			cs.recvEnd = true
			cs.readErr = io.EOF
		}
		if !cs.whole || f.StreamEnded() {
			cs.handOverLocked()
		}
		cs.mu.Unlock()
		if f.StreamEnded() {
			cs.finishRecv()
		}
		return nil
	}
	if !f.StreamEnded() || cs.recvEnd {
		cs.mu.Unlock()
		cs.abort(errors.New("backend sent headers after the response headers without ending the stream"), true)
		return nil
	}
	trailer := make(http.Header, len(f.Fields))
	for _, hf := range f.RegularFields() {
		addField(trailer, hf)
	}
	cs.trailer = trailer
	cs.recvEnd = true
	cs.readErr = io.EOF
	cs.handOverLocked()
	cs.readCond.Broadcast()
	cs.mu.Unlock()
	cs.finishRecv()
	return nil
}

func (cc *h2Conn) peekNextID() uint32 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.nextID
}

// addField adds a decoded field under its canonical key.
func addField(h http.Header, hf hpack.HeaderField) {
	k := http.CanonicalHeaderKey(hf.Name)
	h[k] = append(h[k], hf.Value)
}

func (cc *h2Conn) onData(f *http2.DataFrame) error {
	n := int(f.Length)
	cs := cc.stream(f.StreamID)
	if cs == nil {
		// A stream already reset: its bytes still count against the
		// connection window.
		if f.StreamID >= cc.peekNextID() {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		cc.returnConn(n)
		return nil
	}
	data := f.Data()
	cs.mu.Lock()
	switch {
	case cs.resp == nil || cs.recvEnd:
		cs.mu.Unlock()
		cc.returnConn(n)
		cs.abort(errors.New("backend sent data outside the response body"), true)
		return nil
	case cs.recvWindow < n:
		cs.mu.Unlock()
		cc.returnConn(n)
		cs.abort(errors.New("backend overran the stream's flow-control window"), true)
		return nil
	}
	cs.recvWindow -= n
	if cs.readErr == nil {
		cs.buf = append(cs.buf, data...)
	}
	pad := n - len(data)
	if f.StreamEnded() {
		cs.recvEnd = true
		// A body that ends without trailers has no gRPC status; the
		// protocol code says so.
		if cs.readErr == nil {
			cs.readErr = io.EOF
		}
	}
	dropped := cs.readErr != nil && cs.readErr != io.EOF
	if cs.whole && (cs.recvEnd || len(cs.buf) >= h2HandOver) {
		cs.handOverLocked()
	}
	cs.readCond.Broadcast()
	cs.mu.Unlock()
	if dropped {
		pad = n
	}
	if pad > 0 {
		cc.returnConn(pad)
	}
	if f.StreamEnded() {
		cs.finishRecv()
	}
	return nil
}

// returnConn returns n bytes of connection window, in batches.
func (cc *h2Conn) returnConn(n int) {
	cc.mu.Lock()
	cc.connUnacked += n
	send := 0
	if cc.connUnacked >= h2ConnWindow/4 {
		send, cc.connUnacked = cc.connUnacked, 0
	}
	cc.mu.Unlock()
	if send > 0 {
		_ = cc.writeFrames(func() error { return cc.wfr.WriteWindowUpdate(0, uint32(send)) })
	}
}

// h2Stream is one call on a connection. It is forgotten by the connection
// (its slot freed) once both sides ended, or when it is aborted.
type h2Stream struct {
	cc      *h2Conn
	req     *http.Request
	ctx     context.Context
	id      uint32 // 0 until the HEADERS go out
	stopCtx func() bool

	respReady chan struct{} // closed when resp is handed over (see ready)
	aborted   chan struct{} // closed by abort
	whole     bool          // hand resp over at the end of the response
	handed    bool          // respReady is closed; guarded by mu
	abortOnce sync.Once
	err       error // why the stream was aborted

	sendDone   chan struct{} // closed when the request body is done with
	senderMu   sync.Mutex
	senderGone bool          // the sender exited (or never ran)
	closing    chan struct{} // closed when interruptSender's close returned
	sendWindow int64         // guarded by cc.mu
	sentEnd    atomic.Bool   // END_STREAM went out
	forgotten  atomic.Bool

	mu         sync.Mutex
	readCond   sync.Cond
	resp       *http.Response
	buf        []byte
	readErr    error // what Read returns once buf is empty
	recvEnd    bool  // the backend ended its side (or the stream was aborted)
	trailer    http.Header
	recvWindow int // bytes the backend may still send
	unacked    int // bytes read and not yet returned to the backend
}

// sendBody writes the request body as DATA frames, within the windows,
// then ends the stream. whole is the body when held whole.
func (cs *h2Stream) sendBody(body io.ReadCloser, whole []byte) {
	defer cs.senderExit(body)
	err := cs.copyBody(body, whole)
	if err != nil {
		cs.abort(err, true)
		return
	}
	cs.mu.Lock()
	done := cs.recvEnd
	cs.mu.Unlock()
	if done {
		cs.forget()
	}
}

func (cs *h2Stream) copyBody(body io.Reader, whole []byte) error {
	if whole != nil {
		return cs.writeData(whole, true)
	}
	bp := getCopyBuf()
	defer putCopyBuf(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if err := cs.writeData(buf[:n], false); err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) {
			return cs.writeData(nil, true)
		}
		if rerr != nil {
			return rerr
		}
	}
}

// writeData sends p within the send windows, ending the stream with the
// last frame when end.
func (cs *h2Stream) writeData(p []byte, end bool) error {
	cc := cs.cc
	for {
		cc.mu.Lock()
		for len(p) > 0 && (cs.sendWindow <= 0 || cc.sendWindow <= 0) && !cc.closed && !cs.isAborted() {
			cc.cond.Wait()
		}
		if cc.closed {
			err := cc.closeErr
			cc.mu.Unlock()
			return err
		}
		if cs.isAborted() {
			cc.mu.Unlock()
			return cs.err
		}
		n := int(min(int64(len(p)), cs.sendWindow, cc.sendWindow, int64(cc.maxFrame)))
		cs.sendWindow -= int64(n)
		cc.sendWindow -= int64(n)
		cc.mu.Unlock()
		chunk := p[:n]
		p = p[n:]
		last := end && len(p) == 0
		var aborted bool
		if err := cc.writeFrames(func() error {
			if cs.isAborted() {
				aborted = true // its RST_STREAM may be out already
				return nil
			}
			if last {
				cs.sentEnd.Store(true)
			}
			return cc.wfr.WriteData(cs.id, last, chunk)
		}); err != nil {
			return err
		}
		if aborted {
			return cs.err
		}
		if len(p) == 0 {
			return nil
		}
	}
}

func (cs *h2Stream) isAborted() bool {
	select {
	case <-cs.aborted:
		return true
	default:
		return false
	}
}

// interruptSender closes the request body while the sender may be blocked
// reading it. In a goroutine, as net/http's transport does: closing a
// request body can wait for the read under way (an HTTP/1.1 server's does,
// then reads on to the body's end), and abort may run on the connection's
// read loop. The sender waits for it before it reports done.
func (cs *h2Stream) interruptSender() {
	cs.senderMu.Lock()
	defer cs.senderMu.Unlock()
	if cs.senderGone || cs.closing != nil {
		return
	}
	done := make(chan struct{})
	cs.closing = done
	go func() {
		defer close(done)
		_ = cs.req.Body.Close()
	}()
}

// noSender marks a stream whose body needs no sender.
func (cs *h2Stream) noSender() {
	cs.senderMu.Lock()
	cs.senderGone = true
	cs.senderMu.Unlock()
	close(cs.sendDone)
}

// senderExit ends the sender: the body is closed, and nothing touches it
// once sendDone is closed.
func (cs *h2Stream) senderExit(body io.Closer) {
	_ = body.Close()
	cs.senderMu.Lock()
	cs.senderGone = true
	closing := cs.closing
	cs.senderMu.Unlock()
	if closing != nil {
		<-closing
	}
	close(cs.sendDone)
}

// finishRecv runs when the backend ended its side. A request still
// streaming is cut: the backend answered and reads no more.
func (cs *h2Stream) finishRecv() {
	if !cs.sentEnd.Load() {
		cs.abort(errStreamAnswered, true)
		return
	}
	cs.forget()
}

// errStreamAnswered ends a request stream the backend finished answering.
var errStreamAnswered = errors.New("backend answered before the request ended")

// forget removes the stream from the connection, once, and returns the
// connection window of the bytes read but not yet returned.
func (cs *h2Stream) forget() {
	if cs.forgotten.Swap(true) {
		return
	}
	cc := cs.cc
	cs.mu.Lock()
	unacked := cs.unacked
	cs.unacked = 0
	cs.mu.Unlock()
	cc.mu.Lock()
	delete(cc.streams, cs.id)
	cc.active--
	goAwayIdle := cc.goAway && cc.active == 0
	cc.mu.Unlock()
	cs.stopCtx()
	if unacked > 0 {
		cc.returnConn(unacked)
	}
	if goAwayIdle {
		cc.close(errors.New("backend sent GOAWAY"))
	}
}

// abort ends the stream with err; reset sends RST_STREAM(CANCEL) to the
// backend when the stream is still open there.
func (cs *h2Stream) abort(err error, reset bool) {
	first := false
	cs.abortOnce.Do(func() {
		first = true
		cs.err = err
		close(cs.aborted)
	})
	if !first {
		return
	}
	cc := cs.cc
	cs.mu.Lock()
	open := !cs.recvEnd || !cs.sentEnd.Load()
	dropped := 0
	if !cs.recvEnd {
		// The response is cut: what was not read is dropped.
		cs.readErr = err
		dropped = len(cs.buf)
		cs.buf = nil
		cs.recvEnd = true
	}
	cs.readCond.Broadcast()
	cs.mu.Unlock()
	cc.mu.Lock()
	cc.cond.Broadcast()
	cc.mu.Unlock()
	if dropped > 0 {
		cc.returnConn(dropped)
	}
	cs.interruptSender()
	if cs.id == 0 {
		return
	}
	if reset && open {
		id := cs.id
		_ = cc.writeFrames(func() error { return cc.wfr.WriteRSTStream(id, http2.ErrCodeCancel) })
	}
	cs.forget()
}

// h2HandOver is how much of a whole response is buffered before it is
// handed over anyway: the backend stops at the stream window, so waiting
// for the end could wait forever.
const h2HandOver = backendStreamWindow / 4

// handOverLocked hands the response to roundTrip, once; cs.mu is held.
func (cs *h2Stream) handOverLocked() {
	if !cs.handed {
		cs.handed = true
		close(cs.respReady)
	}
}

// h2Body is the response body of a stream.
type h2Body h2Stream

func (b *h2Body) Read(p []byte) (int, error) {
	cs := (*h2Stream)(b)
	cs.mu.Lock()
	for len(cs.buf) == 0 && cs.readErr == nil {
		cs.readCond.Wait()
	}
	if len(cs.buf) == 0 {
		err := cs.readErr
		if err == io.EOF && cs.trailer != nil {
			cs.resp.Trailer = cs.trailer
			cs.trailer = nil
		}
		cs.mu.Unlock()
		return 0, err
	}
	n := copy(p, cs.buf)
	cs.buf = cs.buf[n:]
	if len(cs.buf) == 0 {
		cs.buf = nil
	}
	update, connOnly := 0, 0
	if cs.recvEnd {
		connOnly = n // the stream takes no more: return the connection's share now
	} else {
		cs.unacked += n
		if cs.unacked >= backendStreamWindow/2 {
			update, cs.unacked = cs.unacked, 0
			cs.recvWindow += update
		}
	}
	cs.mu.Unlock()
	cc := cs.cc
	if update > 0 {
		id := cs.id
		_ = cc.writeFrames(func() error { return cc.wfr.WriteWindowUpdate(id, uint32(update)) })
		connOnly = update
	}
	if connOnly > 0 {
		cc.returnConn(connOnly)
	}
	return n, nil
}

// Buffered returns how many bytes Read can return without waiting.
func (b *h2Body) Buffered() int {
	cs := (*h2Stream)(b)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.buf)
}

// Close ends the call: a stream still open is reset, and bytes not read
// are dropped.
func (b *h2Body) Close() error {
	cs := (*h2Stream)(b)
	cs.mu.Lock()
	done := cs.recvEnd && cs.sentEnd.Load()
	dropped := 0
	if done {
		dropped = len(cs.buf)
		cs.buf = nil
		if cs.readErr == nil || cs.readErr == io.EOF {
			cs.readErr = errBodyClosed
		}
	}
	cs.mu.Unlock()
	if !done {
		cs.abort(errBodyClosed, true)
	} else {
		if dropped > 0 {
			cs.cc.returnConn(dropped)
		}
		cs.forget()
	}
	// As net/http's transport does: the request body is done with once
	// the response body is closed, unless the call's context ended.
	select {
	case <-cs.sendDone:
	case <-cs.ctx.Done():
	}
	return nil
}

var errBodyClosed = errors.New("gateway: read on a closed backend response body")
