package h2client

// One call of Transport on a connection: opening it, its request body
// within the send windows, and its response body.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"

	"golang.org/x/net/http2"
)

// NewBytesBody returns a request body that reads data. The transport takes
// its bytes without reading them: a body held whole goes out with the
// request's HEADERS in one write when the flow-control windows allow. Its
// Close does nothing. data must not change until the call ended.
func NewBytesBody(data []byte) io.ReadCloser { return bytesBody{bytes.NewReader(data), data} }

// bytesBody is a request body held whole.
type bytesBody struct {
	*bytes.Reader
	data []byte
}

func (b bytesBody) Close() error { return nil }

// copyBufPool holds the buffers request bodies are read into.
var copyBufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func getCopyBuf() *[]byte  { return copyBufPool.Get().(*[]byte) }
func putCopyBuf(b *[]byte) { copyBufPool.Put(b) }

// roundTrip opens a stream on cc (a slot is reserved) and waits for the
// response headers.
func (cc *clientConn) roundTrip(ctx context.Context, req *http.Request, wholeResp bool) (*http.Response, error) {
	cs := &clientStream{cc: cc, req: req, ctx: ctx, respReady: make(chan struct{}), aborted: make(chan struct{}),
		sendDone: make(chan struct{}), recvWindow: cc.t.streamWindow, whole: wholeResp}
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
			refusal = &refusedError{reason: "connection closing"}
		case cs.isAborted():
			refusal = cs.err
		}
		if refusal != nil {
			cc.mu.Unlock()
			return nil
		}
		cs.id = cc.nextID
		cs.mark = cc.out.n // under wmu, before close can see the stream
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
		// A stream aborted before the write failed keeps that reason: a
		// refusal (GOAWAY below it) stays a refusal when the connection
		// closed under the write.
		cs.abort(err, false)
		return nil, cs.err
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

// clientStream is one call on a connection. It is forgotten by the connection
// (its slot freed) once both sides ended, or when it is aborted.
type clientStream struct {
	cc      *clientConn
	req     *http.Request
	ctx     context.Context
	id      uint32 // 0 until the HEADERS go out
	mark    int64  // the connection's bytes out when its HEADERS were written (cc.out.n)
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
	buf        []byte  // received, not read yet; in pooled while it fits
	pooled     *[]byte // from recvBufPool; nil when none is held
	readErr    error   // what Read returns once buf is empty
	recvEnd    bool    // the backend ended its side (or the stream was aborted)
	trailer    http.Header
	recvWindow int // bytes the backend may still send
	unacked    int // bytes read and not yet returned to the backend
}

// sendBody writes the request body as DATA frames, within the windows,
// then ends the stream. whole is the body when held whole.
func (cs *clientStream) sendBody(body io.ReadCloser, whole []byte) {
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

func (cs *clientStream) copyBody(body io.Reader, whole []byte) error {
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
func (cs *clientStream) writeData(p []byte, end bool) error {
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

func (cs *clientStream) isAborted() bool {
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
func (cs *clientStream) interruptSender() {
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
func (cs *clientStream) noSender() {
	cs.senderMu.Lock()
	cs.senderGone = true
	cs.senderMu.Unlock()
	close(cs.sendDone)
}

// senderExit ends the sender: the body is closed, and nothing touches it
// once sendDone is closed.
func (cs *clientStream) senderExit(body io.Closer) {
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
func (cs *clientStream) finishRecv() {
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
func (cs *clientStream) forget() {
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
func (cs *clientStream) abort(err error, reset bool) {
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
		cs.releaseBufLocked()
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

// handOverLocked hands the response to roundTrip, once; cs.mu is held. A
// whole response is handed over at its end or once Transport.handOver bytes
// are buffered: the backend stops at the stream window, so waiting for the
// end could wait forever.
func (cs *clientStream) handOverLocked() {
	if !cs.handed {
		cs.handed = true
		close(cs.respReady)
	}
}

// recvBufPool holds the buffers that received response bytes wait in until
// they are read. Read copies out of them, so a buffer is never seen outside
// its stream.
var recvBufPool = sync.Pool{New: func() any { b := make([]byte, 0, recvBufSize); return &b }}

// recvBufSize is the size of the pooled receive buffers: a unary answer of
// a few KiB fits; a larger backlog grows out of the pooled buffer into one
// of its own.
const recvBufSize = 4 << 10

// appendRecvLocked appends data to the bytes not read yet, in the stream's
// pooled buffer when they are all read and it fits; cs.mu is held.
func (cs *clientStream) appendRecvLocked(data []byte) {
	if cs.buf == nil && len(data) <= recvBufSize {
		if cs.pooled == nil {
			cs.pooled = recvBufPool.Get().(*[]byte)
		}
		cs.buf = (*cs.pooled)[:0]
	}
	cs.buf = append(cs.buf, data...)
}

// releaseBufLocked returns the pooled buffer once no byte of it is unread;
// cs.mu is held. A stream that waits for its next message holds none: ten
// thousand open server streams would otherwise hold 40 MiB of empty
// buffers. The next bytes to arrive take one from the pool again.
func (cs *clientStream) releaseBufLocked() {
	if cs.pooled != nil && cs.buf == nil {
		recvBufPool.Put(cs.pooled)
		cs.pooled = nil
	}
}

// respBody is the response body of a stream.
type respBody clientStream

func (b *respBody) Read(p []byte) (int, error) {
	cs := (*clientStream)(b)
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
		cs.releaseBufLocked()
	}
	update, connOnly := 0, 0
	if cs.recvEnd {
		connOnly = n // the stream takes no more: return the connection's share now
	} else {
		cs.unacked += n
		if cs.unacked >= cs.cc.t.streamWindow/2 {
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

// Wait blocks until Read can return without waiting: a byte is buffered or
// the body has ended (or failed). A reader that holds a buffer only while it
// copies calls it before taking one, so that a stream waiting for its next
// message holds no memory of the reader's.
func (b *respBody) Wait() {
	cs := (*clientStream)(b)
	cs.mu.Lock()
	for len(cs.buf) == 0 && cs.readErr == nil {
		cs.readCond.Wait()
	}
	cs.mu.Unlock()
}

// Buffered returns how many bytes Read can return without waiting.
func (b *respBody) Buffered() int {
	cs := (*clientStream)(b)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return len(cs.buf)
}

// Close ends the call: a stream still open is reset, and bytes not read
// are dropped.
func (b *respBody) Close() error {
	cs := (*clientStream)(b)
	cs.mu.Lock()
	done := cs.recvEnd && cs.sentEnd.Load()
	dropped := 0
	if done {
		dropped = len(cs.buf)
		cs.buf = nil
		cs.releaseBufLocked()
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

var errBodyClosed = errors.New("h2client: read on a closed response body")
