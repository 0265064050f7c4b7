package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/coder/websocket"

	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/wire"
)

// Control bytes of improbable's client messages.
const (
	wsData   = 0x00 // followed by gRPC-Web frame bytes
	wsFinish = 0x01 // alone: the client is done sending
)

// webSocketHeaderTimeout bounds the wait for the header message, as the
// HTTP server's ReadHeaderTimeout bounds request headers.
const webSocketHeaderTimeout = 10 * time.Second

// wsStream is one WebSocket stream: one call.
type wsStream struct {
	g       *Gateway
	st      *state
	conn    *websocket.Conn
	r       *http.Request // the upgrade request
	verdict *interceptor.UpgradeVerdict
	guard   *interceptor.UpgradeGuard
	policy  *interceptor.Policy // the route's: credentials decide cookies
	ctx     context.Context     // ends with the stream, the client's going, or Gateway.Close
	cancel  context.CancelFunc
	body    *wsBody
	pinger  atomic.Pointer[time.Timer]
	rec     *accessRecord // nil without an access log
}

// serve reads the header message, runs the call and closes the socket.
func (s *wsStream) serve() {
	h, st := s.readHeaders()
	if st != nil {
		s.g.metrics.observeUnrouted("grpc_websocket", st.Code)
		w := &wsResponse{conn: s.conn, ctx: s.ctx, verdict: s.verdict, header: http.Header{}}
		if s.rec != nil {
			s.rec.rpc, s.rec.code = true, st.Code
			w.out = &s.rec.out
		}
		wire.WriteError(w, wire.Class{Protocol: wire.ProtocolGRPCWeb, Codec: wire.CodecProto}, st, nil)
		_ = s.conn.Close(websocket.StatusNormalClosure, "")
		return
	}
	s.body = newWSBody(s.conn, s.ctx, s.cancel)
	go s.body.run()
	if d := s.g.ws.ping; d > 0 {
		s.pinger.Store(time.AfterFunc(d, func() { s.ping(d) }))
	}
	req := &http.Request{
		Method:        http.MethodPost,
		URL:           &url.URL{Path: s.r.URL.Path},
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        h,
		Body:          s.body,
		ContentLength: -1,
		Host:          s.r.Host,
		RemoteAddr:    s.r.RemoteAddr,
		RequestURI:    s.r.URL.Path,
		TLS:           s.r.TLS,
	}
	req = req.WithContext(s.ctx)
	w := &wsResponse{conn: s.conn, ctx: s.ctx, verdict: s.verdict, header: make(http.Header, 4)}
	if s.rec != nil {
		// serveRPC finds the record in the context, which comes from the
		// upgrade request's.
		s.rec.traceparent = h["Traceparent"]
		req.Body = &countingBody{ReadCloser: s.body, n: &s.rec.in}
		w.out = &s.rec.out
	}
	if s.call(w, req) {
		_ = s.conn.Close(websocket.StatusNormalClosure, "")
	} else {
		// Part of a message went out: no trailer frame can follow, so the
		// client sees a stream that ends without a status.
		_ = s.conn.Close(websocket.StatusInternalError, "stream broken")
	}
	if t := s.pinger.Load(); t != nil {
		t.Stop()
	}
	s.cancel()
	s.body.stop()
	<-s.body.done
}

// call runs the gRPC-Web call; false when it was aborted mid-message.
func (s *wsStream) call(w *wsResponse, req *http.Request) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked as is
				panic(v)
			}
			ok = false
		}
	}()
	s.g.serveRPC(s.st, w, req)
	return true
}

// readHeaders reads the header message and makes the backend request's
// headers from it.
func (s *wsStream) readHeaders() (http.Header, *rpcStatus) {
	ctx, cancel := context.WithTimeout(s.ctx, webSocketHeaderTimeout)
	defer cancel()
	typ, rd, err := s.conn.Reader(ctx)
	if err != nil {
		return nil, errorf(connect.CodeCanceled, "no header message: "+err.Error())
	}
	if typ != websocket.MessageBinary {
		return nil, errorf(connect.CodeInvalidArgument, "the header message is not binary")
	}
	buf := getBytesBuf()
	defer putBytesBuf(buf)
	if _, err := buf.ReadFrom(io.LimitReader(rd, maxHeaderMessage+1)); err != nil {
		return nil, errorf(connect.CodeCanceled, "reading the header message: "+err.Error())
	}
	if buf.Len() > maxHeaderMessage {
		return nil, errorf(connect.CodeResourceExhausted, "the header message is larger than 65536 bytes")
	}
	h, dropped, err := requestHeaders(buf.Bytes(), s.r, s.verdict, s.guard != nil && s.policy.Credentials())
	if err != nil {
		s.guard.LogRefusal(s.ctx, "header", s.verdict.Origin, s.r.URL.Path, err.Error())
		return nil, errorf(connect.CodeInvalidArgument, "header message: "+err.Error())
	}
	if len(dropped) > 0 {
		s.guard.LogRefusal(s.ctx, "header", s.verdict.Origin, s.r.URL.Path, "dropped headers the procedure does not allow: "+strings.Join(dropped, ","))
	}
	return h, nil
}

// ping pings the client and re-arms the timer; a client that does not answer within
// d has its stream cut. While the body waits for the backend to take a
// message nobody reads the socket, so no pong could be seen: no ping then.
func (s *wsStream) ping(d time.Duration) {
	if s.ctx.Err() != nil {
		return
	}
	if !s.body.parked.Load() {
		ctx, cancel := context.WithTimeout(s.ctx, d)
		err := s.conn.Ping(ctx)
		cancel()
		if err != nil {
			if s.ctx.Err() == nil {
				s.g.log.Debug("gateway: websocket peer did not answer a ping; cutting the stream", "path", s.r.URL.Path, "error", err)
				s.cancel()
				_ = s.conn.CloseNow()
			}
			return
		}
	}
	s.pinger.Load().Reset(d)
}

// wsResponse is the [http.ResponseWriter] of the gRPC-Web call on a
// WebSocket: WriteHeader sends the headers as a frame flagged 0x80, each
// Write one binary message. It supports SetWriteDeadline, so the gateway's
// progress deadline cuts a client that stops reading as on HTTP. It is used
// by one goroutine.
type wsResponse struct {
	conn     *websocket.Conn
	ctx      context.Context
	verdict  *interceptor.UpgradeVerdict
	header   http.Header
	wrote    bool
	discard  bool // an HTTP-level refusal's text body
	deadline time.Time
	err      error
	out      *atomic.Int64 // counts the bytes sent for the access log; nil: not counted
}

func (w *wsResponse) Header() http.Header { return w.header }

// WriteHeader sends the response headers the script could read under CORS
// (the exposed ones), lowercase, in a frame flagged 0x80. A status other
// than 200 (an HTTP-level refusal) goes out as the gRPC status of that HTTP
// status, and the body that follows is dropped.
func (w *wsResponse) WriteHeader(code int) {
	if w.wrote {
		return
	}
	w.wrote = true
	h := w.header
	if code != http.StatusOK {
		w.discard = true
		if _, ok := h["Grpc-Status"]; !ok {
			st := errorf(wire.CodeForHTTP(code), "HTTP "+http.StatusText(code))
			if code == http.StatusUnsupportedMediaType || code == http.StatusMethodNotAllowed {
				st = errorf(connect.CodeInvalidArgument, "the header message's content-type is not served: "+http.StatusText(code))
			}
			b := wire.AppendGRPCWebTrailers(nil, st, nil)
			_ = w.send(b)
			return
		}
	}
	buf := getBytesBuf()
	defer putBytesBuf(buf)
	b := append(buf.AvailableBuffer(), 0x80, 0, 0, 0, 0)
	for k, vs := range h {
		if strings.HasPrefix(k, "Access-Control-") || k == "Vary" || k == "Content-Length" || !w.verdict.ExposesResponseHeader(k) {
			continue
		}
		name := strings.ToLower(k)
		for _, v := range vs {
			b = append(b, name...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	size := len(b) - headerLen
	b[1], b[2], b[3], b[4] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
	_ = w.send(b)
}

func (w *wsResponse) Write(p []byte) (int, error) {
	if !w.wrote {
		w.WriteHeader(http.StatusOK)
	}
	if w.discard {
		return len(p), nil
	}
	if err := w.send(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// send writes p as one binary message, within the write deadline.
func (w *wsResponse) send(p []byte) error {
	if w.err != nil {
		return w.err
	}
	ctx := w.ctx
	if !w.deadline.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, w.deadline)
		defer cancel()
	}
	if err := w.conn.Write(ctx, websocket.MessageBinary, p); err != nil {
		w.err = err
		return err
	}
	if w.out != nil {
		w.out.Add(int64(len(p)))
	}
	return nil
}

// Flush does nothing: every Write is a message of its own.
func (w *wsResponse) Flush() {}

// SetWriteDeadline bounds the writes that follow; [http.ResponseController]
// finds it.
func (w *wsResponse) SetWriteDeadline(t time.Time) error {
	w.deadline = t
	return nil
}

// wsBody is the request body of a WebSocket call: the data bytes of the
// client's messages, up to its 0x01. One goroutine (run) reads the socket
// for the whole stream, so that pongs and the client's close are seen even
// when the call is not reading; it hands each data message over as it is
// (no copy), and waits until the call has read it.
type wsBody struct {
	conn   *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc // the stream's: called when the client goes

	items    chan wsItem
	consumed chan struct{}
	closed   chan struct{} // the call is done with the body
	stopped  chan struct{} // the stream is over: run must not deliver
	done     chan struct{} // run returned
	once     sync.Once
	stopOnce sync.Once
	// parked is set while run waits for the call to take a message.
	parked atomic.Bool

	// Owned by the reading goroutine of the call.
	cur io.Reader
	eof bool
}

// wsItem is what run hands over: a data message after its control byte,
// or the end of the client's stream (io.EOF) or an error.
type wsItem struct {
	r   io.Reader
	err error
}

func newWSBody(conn *websocket.Conn, ctx context.Context, cancel context.CancelFunc) *wsBody {
	return &wsBody{
		conn: conn, ctx: ctx, cancel: cancel,
		items:    make(chan wsItem),
		consumed: make(chan struct{}, 1),
		closed:   make(chan struct{}),
		stopped:  make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// run reads the client's messages until the socket closes.
func (b *wsBody) run() {
	defer close(b.done)
	finished := false
	for {
		typ, r, err := b.conn.Reader(b.ctx)
		if err != nil {
			// The client closed the socket or went away, or the stream is
			// over: a call still running is canceled.
			b.cancel()
			b.deliver(wsItem{err: statusFromSocket(err)})
			return
		}
		switch {
		case finished:
			// Nothing may follow the client's 0x01.
			b.protocolError("a message after the client's end of stream")
			return
		case typ != websocket.MessageBinary:
			b.protocolError("a text message")
			return
		}
		var ctl [1]byte
		if n, _ := io.ReadFull(r, ctl[:]); n == 0 {
			b.protocolError("an empty message")
			return
		}
		switch ctl[0] {
		case wsData:
			b.parked.Store(true)
			if b.deliver(wsItem{r: r}) {
				select {
				case <-b.consumed:
				case <-b.closed:
				case <-b.stopped:
				}
			}
			b.parked.Store(false)
			if _, err := io.Copy(io.Discard, r); err != nil {
				continue // the next Reader reports it
			}
		case wsFinish:
			if n, _ := r.Read(ctl[:]); n > 0 {
				b.protocolError("bytes after the end-of-stream byte 0x01")
				return
			}
			finished = true
			b.deliver(wsItem{err: io.EOF})
		default:
			b.protocolError("control byte 0x" + string("0123456789abcdef"[ctl[0]>>4]) + string("0123456789abcdef"[ctl[0]&15]) + "; improbable's transport sends 0x00 (data) and 0x01 (end)")
			return
		}
	}
}

// protocolError ends a stream whose client broke the transport's rules: the
// call fails with INVALID_ARGUMENT when it still reads, and the socket is
// closed with a policy violation.
func (b *wsBody) protocolError(msg string) {
	b.deliver(wsItem{err: errorf(connect.CodeInvalidArgument, "websocket: "+msg)})
	b.cancel()
	_ = b.conn.Close(websocket.StatusPolicyViolation, "protocol violation")
}

// deliver hands it to the call; false when the call no longer reads.
func (b *wsBody) deliver(it wsItem) bool {
	select {
	case b.items <- it:
		return true
	case <-b.closed:
		return false
	case <-b.stopped:
		return false
	}
}

// statusFromSocket maps a read error of the socket.
func statusFromSocket(err error) error {
	if websocket.CloseStatus(err) != -1 || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
		return errorf(connect.CodeCanceled, "the client closed the websocket")
	}
	return errorf(connect.CodeCanceled, "websocket: "+err.Error())
}

func (b *wsBody) Read(p []byte) (int, error) {
	for {
		if b.cur != nil {
			n, err := b.cur.Read(p)
			if errors.Is(err, io.EOF) {
				b.cur = nil
				b.consumed <- struct{}{}
				if n > 0 {
					return n, nil
				}
				continue
			}
			if err != nil {
				return n, statusFromSocket(err)
			}
			return n, nil
		}
		if b.eof {
			return 0, io.EOF
		}
		select {
		case it := <-b.items:
			switch {
			case it.r != nil:
				b.cur = it.r
			case errors.Is(it.err, io.EOF):
				b.eof = true
				return 0, io.EOF
			default:
				return 0, it.err
			}
		case <-b.closed:
			return 0, errWebSocketGone
		}
	}
}

// Close tells run that the call is done with the body. A read in progress
// inside a message ends when the message does.
func (b *wsBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

// stop ends the hand-over at the end of the stream.
func (b *wsBody) stop() {
	b.stopOnce.Do(func() { close(b.stopped) })
}
