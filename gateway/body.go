package gateway

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
)

// Request bodies come from clients, who choose their sizes and their pace,
// so the gateway trusts neither:
//
//   - It never reserves memory from a size a client declares (a
//     Content-Length, a frame header): buffers grow as bytes arrive, by
//     steps of at most maxGrowStep.
//   - Every growth is charged to a budget shared by all calls
//     ([Config.MaxRequestBuffer]); a call whose buffer would take the
//     total past it fails with RESOURCE_EXHAUSTED, so that many clients
//     sending large messages at once cannot grow the process without
//     bound.
//   - A client that sends nothing for [Config.BodyTimeout] while a
//     message is partly received (anywhere in the body of a call whose
//     client sends one message) is cut: its read fails, and the call is
//     answered DEADLINE_EXCEEDED in its protocol.

// DefaultMaxRequestBuffer is the default of [Config.MaxRequestBuffer]: 128 MiB.
const DefaultMaxRequestBuffer = 128 << 20

// DefaultBodyTimeout is the default of [Config.BodyTimeout].
const DefaultBodyTimeout = 10 * time.Second

const (
	// firstChunk is the first capacity of a request buffer.
	firstChunk = 4 << 10
	// maxGrowStep bounds one growth of a request buffer.
	maxGrowStep = 1 << 20
)

// budget bounds the request bytes the gateway buffers at once.
type budget struct {
	limit int64
	used  atomic.Int64
}

// share is one call's part of the budget. Its zero value with b nil charges
// nothing. It is safe for concurrent use: a streaming request body is read
// by the transport while the handler runs.
type share struct {
	b      *budget
	mu     sync.Mutex
	n      int64
	closed bool
}

// reserve charges n more bytes, or refuses them with RESOURCE_EXHAUSTED.
func (s *share) reserve(n int) *rpcStatus {
	if s == nil || s.b == nil || n <= 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errorf(connect.CodeCanceled, "call ended")
	}
	if s.b.used.Add(int64(n)) > s.b.limit {
		s.b.used.Add(-int64(n))
		return errorf(connect.CodeResourceExhausted, "the gateway is buffering its limit of "+
			strconv.FormatInt(s.b.limit, 10)+" bytes of requests; try again later")
	}
	s.n += int64(n)
	return nil
}

// release gives the call's bytes back; later reservations fail.
func (s *share) release() {
	if s.b == nil {
		return
	}
	s.mu.Lock()
	s.b.used.Add(-s.n)
	s.n = 0
	s.closed = true
	s.mu.Unlock()
}

// growStep is how much a buffer of capacity c grows: it doubles, by at
// least firstChunk and at most maxGrowStep bytes.
func growStep(c int) int {
	return min(max(c, firstChunk), maxGrowStep)
}

// readBody reads the whole client body after prefix zero bytes, refusing
// more than limit bytes of body with RESOURCE_EXHAUSTED. The buffer grows
// as bytes arrive, charged to the call's share of the budget; a declared
// Content-Length only refuses early and caps the growth.
func (c *call) readBody(body *bodyWatch, prefix, limit int) ([]byte, *rpcStatus) {
	declared := body.declared
	if declared > int64(limit) {
		return nil, errorf(connect.CodeResourceExhausted, "request body of "+strconv.FormatInt(declared, 10)+
			" bytes is larger than the limit of "+strconv.Itoa(limit)+" bytes")
	}
	// end is the largest length data may reach: the declared length, or
	// one byte more than the limit, to see a body that is too long.
	end := prefix + limit + 1
	if declared >= 0 {
		end = prefix + int(declared)
	}
	first := min(prefix+firstChunk, end)
	if st := c.share.reserve(first); st != nil {
		return nil, st
	}
	var data []byte
	if end <= reqBufSize && c.reqBuf == nil && c.route.streamType&connect.StreamTypeServer == 0 {
		// A unary call's, small and of a declared length: it fits a pooled
		// buffer, which run hands back once the backend is done with the
		// request. A server stream's is read into one of its own size: it
		// lives as long as the stream, and ten thousand open streams would
		// otherwise hold 40 MiB of pooled buffers.
		c.reqBuf = reqBufPool.Get().(*[]byte)
		data = (*c.reqBuf)[:prefix]
	} else {
		data = make([]byte, prefix, first)
	}
	for len(data) < end {
		if len(data) == cap(data) {
			grown := min(cap(data)+growStep(cap(data)), end)
			if st := c.share.reserve(grown - cap(data)); st != nil {
				return nil, st
			}
			data = append(make([]byte, 0, grown), data...)
		}
		n, err := body.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		if err == io.EOF {
			if declared >= 0 && len(data) < end {
				return nil, errorf(connect.CodeInvalidArgument, "request body ends before its Content-Length")
			}
			break
		}
		if err != nil {
			return nil, statusFromReadError(err)
		}
	}
	if len(data)-prefix > limit {
		return nil, errorf(connect.CodeResourceExhausted, "request body is larger than the limit of "+strconv.Itoa(limit)+" bytes")
	}
	return data, nil
}

// reqBufPool holds the buffers small request bodies of a declared length
// are read into (see [call.readBody] and [call.recycle]).
var reqBufPool = sync.Pool{New: func() any { b := make([]byte, 0, reqBufSize); return &b }}

// reqBufSize is the size of reqBufPool's buffers: unary requests of a few
// KiB, what browsers mostly send.
const reqBufSize = 4 << 10

// readFrame reads size bytes of r into buf, growing it as bytes arrive,
// each growth charged to s (nil: not charged).
func readFrame(r io.Reader, buf *bytes.Buffer, size int, s *share) error {
	for left := size; left > 0; {
		if buf.Available() == 0 {
			before := buf.Cap()
			buf.Grow(min(growStep(before), left))
			if st := s.reserve(buf.Cap() - before); st != nil {
				return st
			}
		}
		free := buf.AvailableBuffer()
		free = free[:min(cap(free), left)]
		n, err := r.Read(free)
		buf.Write(free[:n])
		left -= n
		if err != nil && left > 0 {
			if err == io.EOF {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// bodyWatch is the client's request body (decoded, for gRPC-Web text) with
// the progress deadline: a read that waits longer than timeout while a
// message is partly received cuts the body. Between the messages of a
// client stream it waits as long as the client likes.
type bodyWatch struct {
	r io.Reader
	// declared is the body's Content-Length, -1 when unknown or when r is
	// not the raw body.
	declared int64
	timeout  time.Duration // 0: no deadline
	// unary: the body is one message, watched from start to end.
	unary bool
	scan  frameScanner // the boundaries of a stream's messages
	w     http.ResponseWriter
	cut   io.Closer // the raw body, closed when deadlines are not supported

	mu    sync.Mutex
	timer *time.Timer
	done  bool // the call ended: the timer must not fire any more
	fired atomic.Bool
	eof   atomic.Bool // a read returned io.EOF
}

// watch wraps body, read from the client's request, in the gateway's
// progress deadline. declared is the Content-Length when body is the raw
// request body, else -1.
func (c *call) watch(body io.Reader, declared int64) *bodyWatch {
	w := &bodyWatch{
		r:        body,
		declared: declared,
		timeout:  c.g.bodyTimeout,
		unary:    c.route.streamType&connect.StreamTypeClient == 0,
		w:        c.w,
		cut:      c.r.Body,
	}
	c.watched = w
	return w
}

func (b *bodyWatch) Read(p []byte) (int, error) {
	n, err := b.read(p)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// sawEOF reports a body read to its end; false on nil.
func (b *bodyWatch) sawEOF() bool { return b != nil && b.eof.Load() }

func (b *bodyWatch) read(p []byte) (int, error) {
	if b.timeout <= 0 {
		return b.r.Read(p)
	}
	if b.fired.Load() {
		return 0, b.status()
	}
	watched := b.unary || !b.scan.atBoundary()
	if watched {
		b.arm()
	}
	n, err := b.r.Read(p)
	if watched {
		b.disarm()
	}
	if !b.unary && n > 0 {
		_ = b.scan.scan(p[:n]) // no bound, no flags check: boundaries only
	}
	if err != nil && b.fired.Load() {
		return n, b.status()
	}
	return n, err
}

func (b *bodyWatch) arm() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	if b.timer == nil {
		b.timer = time.AfterFunc(b.timeout, b.fire)
		return
	}
	b.timer.Reset(b.timeout)
}

func (b *bodyWatch) disarm() {
	b.mu.Lock()
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
}

// fire cuts the body: a read deadline in the past ends the read that
// waits, on HTTP/1.1 and HTTP/2 alike.
func (b *bodyWatch) fire() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.fired.Store(true)
	if err := http.NewResponseController(b.w).SetReadDeadline(time.Unix(1, 0)); err != nil {
		_ = b.cut.Close()
	}
}

// stop ends the watch when the call ends; safe to call more than once and
// on nil.
func (b *bodyWatch) stop() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.done = true
	if b.timer != nil {
		b.timer.Stop()
	}
	b.mu.Unlock()
}

// status is the refusal of a body that was cut, nil otherwise.
func (b *bodyWatch) status() *rpcStatus {
	if b == nil || !b.fired.Load() {
		return nil
	}
	return errorf(connect.CodeDeadlineExceeded, "the client sent nothing for "+b.timeout.String()+" in the middle of a message")
}
