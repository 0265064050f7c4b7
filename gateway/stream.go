package gateway

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"

	"connectrpc.com/connect"

	"github.com/corsgate/corsgate/internal/h2client"
)

// requestBody is a backend request body read lazily from the client, which
// remembers why it refused the client's bytes.
type requestBody interface {
	io.Reader
	status() *rpcStatus
}

// framedRequest makes the client's gRPC frames the backend request body,
// untouched. A call whose client sends one message is read whole first: the
// backend then gets a Content-Length, and a request that never reached a
// restarted backend can be retried by the transport. Streams flow through
// as they arrive, their frames checked against the size limit. When the
// client compresses its messages with gzip (encoding), each compressed
// message is held until its decompressed size is checked too, as gRPC
// servers check it.
func (c *call) framedRequest(out *http.Request, body *bodyWatch, encoding string) *rpcStatus {
	switch encoding {
	case "", "identity", "gzip":
	default:
		// Only gzip's decompressed size can be checked here.
		return errorf(connect.CodeUnimplemented, "unknown compression "+strconv.Quote(encoding)+": only gzip is supported")
	}
	checkGzip := encoding == "gzip"
	if c.route.streamType&connect.StreamTypeClient == 0 {
		data, st := c.readBody(body, 0, c.g.maxMsg+headerLen)
		if st != nil {
			return st
		}
		sc := frameScanner{max: c.g.maxMsg, request: true}
		if err := sc.scan(data); err != nil {
			return err.(*rpcStatus) //nolint:errcheck // scan returns only *rpcStatus
		}
		if !sc.atBoundary() {
			return errorf(connect.CodeInvalidArgument, "request body ends inside a message")
		}
		if checkGzip {
			for rest := data; len(rest) >= headerLen; {
				size := int(binary.BigEndian.Uint32(rest[1:headerLen]))
				if rest[0]&flagCompressed != 0 {
					if st := checkGzipSize(rest[headerLen:headerLen+size], c.g.maxMsg); st != nil {
						return st
					}
				}
				rest = rest[headerLen+size:]
			}
		}
		setBodyBytes(out, data)
		return nil
	}
	sr := &scanningReader{r: body, scanner: frameScanner{max: c.g.maxMsg, request: true}}
	if checkGzip {
		sr.whole = &wholeFrames{fr: frameReader{r: body, max: c.g.maxMsg, request: true, share: &c.share}, max: c.g.maxMsg}
	}
	c.body = sr
	out.Body = clientBody{sr, c}
	out.ContentLength = -1
	return nil
}

// setBodyBytes makes data the backend request body, replayable.
func setBodyBytes(out *http.Request, data []byte) {
	if len(data) == 0 {
		out.Body = http.NoBody
		out.ContentLength = 0
		out.GetBody = func() (io.ReadCloser, error) { return http.NoBody, nil }
		return
	}
	out.Body = h2client.NewBytesBody(data)
	out.ContentLength = int64(len(data))
	out.GetBody = func() (io.ReadCloser, error) { return h2client.NewBytesBody(data), nil }
}

// transcodedRequest makes the backend request body from client frames in
// JSON: each message is decompressed (encoding is the client's message
// encoding), checked, and re-encoded in the binary form.
func (c *call) transcodedRequest(out *http.Request, body *bodyWatch, encoding string) *rpcStatus {
	tr := &transcodeReader{c: c, src: frameReader{r: body, max: c.g.maxMsg, request: true, share: &c.share}, encoding: encoding}
	if c.route.streamType&connect.StreamTypeClient == 0 {
		data, err := io.ReadAll(tr)
		if err != nil {
			return statusFromReadError(err)
		}
		setBodyBytes(out, data)
		return nil
	}
	c.body = tr
	out.Body = clientBody{tr, c}
	out.ContentLength = -1
	return nil
}

// transcodeReader turns JSON frames from the client into binary frames.
type transcodeReader struct {
	c        *call
	src      frameReader
	encoding string
	in       bytes.Buffer
	out      bytes.Buffer
	mu       sync.Mutex
	st       *rpcStatus
}

func (t *transcodeReader) Read(p []byte) (int, error) {
	for t.out.Len() == 0 {
		flags, err := t.src.next(&t.in)
		if errors.Is(err, io.EOF) {
			return 0, io.EOF
		}
		if err != nil {
			if t.c.cut.Load() {
				return 0, err // the gateway cut the body: not the client's fault
			}
			return 0, t.fail(statusFromReadError(err))
		}
		payload := t.in.Bytes()
		if flags&flagCompressed != 0 {
			var st *rpcStatus
			if payload, st = decompress(t.encoding, payload, t.c.g.maxMsg); st != nil {
				return 0, t.fail(st)
			}
		}
		msg, st := t.c.jsonToProto(payload)
		if st != nil {
			return 0, t.fail(st)
		}
		t.out.Write(appendFrameHeader(nil, 0, len(msg)))
		t.out.Write(msg)
	}
	return t.out.Read(p)
}

func (t *transcodeReader) fail(st *rpcStatus) error {
	t.mu.Lock()
	t.st = st
	t.mu.Unlock()
	return st
}

func (t *transcodeReader) status() *rpcStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// moreBuffered reports whether the backend's response has bytes ready now,
// so that a flush to the client can wait for them: small messages that
// arrive together leave together. Before saying no it yields once, as
// grpc-go's writer does before a flush, to let the connection's read loop
// add what it is reading.
func moreBuffered(body io.Reader) bool {
	b, ok := body.(interface{ Buffered() int })
	if !ok {
		return false
	}
	if b.Buffered() > 0 {
		return true
	}
	runtime.Gosched()
	return b.Buffered() > 0
}

// pump moves the backend's response frames to dst, flushing after each
// read for streaming responses. boundary reports whether what was written
// ends between two messages, where a final frame can still follow.
func (c *call) pump(dst io.Writer, resp *http.Response) (boundary bool, err error) {
	stream := c.route.streamType&connect.StreamTypeServer != 0
	if c.codec == "json" {
		return c.pumpJSON(dst, resp, stream)
	}
	// A stream holds its copy buffer only while bytes move: before it waits
	// for the next message it hands the buffer back, when the body can say
	// that bytes are ready (the backend client's can). Ten thousand open
	// streams would otherwise hold 320 MiB of copy buffers, idle.
	waiter, _ := resp.Body.(interface{ Wait() })
	var bp *[]byte
	defer func() {
		if bp != nil {
			putCopyBuf(bp)
		}
	}()
	var sc frameScanner // no bound: the backend's messages pass through
	for {
		if bp == nil {
			if waiter != nil && stream {
				waiter.Wait()
			}
			bp = getCopyBuf()
		}
		buf := *bp
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			before := sc.atBoundary()
			if err := sc.scan(buf[:n]); err != nil {
				return before, err
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return false, clientWriteFailed(err)
			}
			if stream && !moreBuffered(resp.Body) {
				if waiter != nil {
					putCopyBuf(bp)
					bp = nil
				}
				c.flush()
			}
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF):
			if !sc.atBoundary() {
				return false, errorf(connect.CodeInternal, "backend response ends inside a message")
			}
			return true, nil
		default:
			return sc.atBoundary(), rerr
		}
	}
}

func (c *call) pumpJSON(dst io.Writer, resp *http.Response, stream bool) (bool, error) {
	fr := frameReader{r: resp.Body, max: c.g.maxResp}
	in := getBytesBuf()
	defer putBytesBuf(in)
	out := getBytesBuf()
	defer putBytesBuf(out)
	encoding := resp.Header.Get("Grpc-Encoding")
	for {
		flags, err := fr.next(in)
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return true, err
		}
		payload := in.Bytes()
		if flags&flagCompressed != 0 {
			var st *rpcStatus
			if payload, st = decompress(encoding, payload, c.g.maxResp); st != nil {
				return true, st
			}
		}
		msg, st := c.protoToJSON(payload)
		if st != nil {
			return true, st
		}
		out.Reset()
		out.Write(appendFrameHeader(out.AvailableBuffer(), 0, len(msg)))
		out.Write(msg)
		if _, err := dst.Write(out.Bytes()); err != nil {
			return false, clientWriteFailed(err)
		}
		if stream && !moreBuffered(resp.Body) {
			c.flush()
		}
	}
}
