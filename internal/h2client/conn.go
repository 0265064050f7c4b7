package h2client

// The write side and the life of one backend connection of Transport;
// the read side is in read.go, the calls on it in stream.go.

import (
	"bufio"
	"bytes"
	"errors"
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

// clientConn is one HTTP/2 connection to the backend.
type clientConn struct {
	t  *Transport
	nc net.Conn

	// The write side: frames go to bw under wmu; see writeFrames.
	wmu     sync.Mutex
	out     countingWriter // under bw: the bytes that went out
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
	streams      map[uint32]*clientStream
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

func newClientConn(t *Transport, nc net.Conn) (*clientConn, error) {
	cc := &clientConn{
		t:            t,
		nc:           nc,
		streams:      make(map[uint32]*clientStream),
		nextID:       1,
		maxStreams:   initialMaxStreams,
		sendWindow:   65535,
		initWindow:   65535,
		maxFrame:     16384,
		done:         make(chan struct{}),
		settingsSeen: make(chan struct{}),
	}
	cc.cond.L = &cc.mu
	cc.out.w = nc
	cc.bw = bufio.NewWriterSize(&cc.out, 32<<10)
	cc.wfr = http2.NewFramer(cc.bw, nil)
	cc.henc = hpack.NewEncoder(&cc.hbuf)
	cc.rfr = http2.NewFramer(nil, bufio.NewReaderSize(nc, 32<<10))
	cc.rfr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	cc.rfr.MaxHeaderListSize = maxHeaderList
	cc.rfr.SetMaxReadFrameSize(16384)
	cc.rfr.SetReuseFrames() // readFrames copies what it keeps
	cc.lastRead.Store(time.Now().UnixNano())

	_ = nc.SetWriteDeadline(time.Now().Add(dialTimeout))
	_, err := cc.bw.WriteString(http2.ClientPreface)
	if err == nil {
		err = cc.wfr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: uint32(t.streamWindow)},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: maxHeaderList},
		)
	}
	if err == nil {
		err = cc.wfr.WriteWindowUpdate(0, uint32(t.connWindow-65535))
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
func (cc *clientConn) reserve() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.closed || cc.goAway || cc.active >= cc.maxStreams || cc.nextID >= 1<<31-1 {
		return false
	}
	cc.active++
	return true
}

// release gives back a slot reserved for a stream that never opened.
func (cc *clientConn) release() {
	cc.mu.Lock()
	cc.active--
	cc.mu.Unlock()
}

// writeFrames runs fn, which writes frames with wfr, under the write lock.
// The flush is left to the last writer queued: frames of concurrent calls
// leave in one write.
func (cc *clientConn) writeFrames(fn func() error) error {
	cc.waiting.Add(1)
	cc.wmu.Lock()
	if cc.werr != nil {
		// Nothing of this writer's went out: a call may be retried.
		cc.waiting.Add(-1)
		cc.wmu.Unlock()
		return &refusedError{reason: "connection broken: " + cc.werr.Error()}
	}
	err := fn()
	if cc.waiting.Add(-1) == 0 && err == nil && cc.werr == nil {
		err = cc.bw.Flush()
	}
	var sent int64
	if err != nil {
		cc.werr = err // a frame went out in part: the connection is lost
		sent = cc.out.n
	}
	cc.wmu.Unlock()
	if err != nil {
		cc.closeUnsent(err, sent)
	}
	return err
}

// countingWriter counts the bytes written through it, under wmu.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// writeHeaderBlock encodes req's headers and writes them as HEADERS (and
// CONTINUATION) frames; wmu is held.
func (cc *clientConn) writeHeaderBlock(id uint32, req *http.Request, endStream bool) error {
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
		name, ok := fieldName(k)
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

// fieldName is the HTTP/2 field name of header k, ok false for the
// headers HTTP/2 forbids.
func fieldName(k string) (string, bool) {
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

// takesNoStreams reports a backend that allows no stream at all.
func (cc *clientConn) takesNoStreams() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.maxStreams == 0
}

// close ends the connection and fails every stream on it.
func (cc *clientConn) close(err error) { cc.closeUnsent(err, -1) }

// closeUnsent is close after a write failed when sent bytes had gone out
// in all: the streams that began writing at that count had no byte leave
// (the write that failed carried their first), so they fail as refused,
// which a caller may send again. sent is -1 when no write failed.
func (cc *clientConn) closeUnsent(err error, sent int64) {
	cc.mu.Lock()
	if cc.closed {
		cc.mu.Unlock()
		return
	}
	cc.closed = true
	cc.closeErr = err
	streams := make([]*clientStream, 0, len(cc.streams))
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
		switch {
		case cs.id > cc.lastStreamIDIfGoAway():
			serr = &refusedError{reason: "connection closed"}
		case sent >= 0 && cs.mark == sent:
			serr = &refusedError{reason: "connection broken before the stream's first byte went out: " + err.Error()}
		}
		cs.abort(serr, false)
	}
}

func (cc *clientConn) lastStreamIDIfGoAway() uint32 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.goAway {
		return cc.lastStreamID
	}
	return 1<<31 - 1
}

func (cc *clientConn) busy() bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.active > 0
}

func (cc *clientConn) closeIfIdle() {
	cc.mu.Lock()
	idle := cc.active == 0
	cc.mu.Unlock()
	if idle {
		cc.close(errClosed)
	}
}

// keepalive pings a connection that read nothing for a while and closes it
// when the ping goes unanswered.
func (cc *clientConn) keepalive() {
	tick := time.NewTicker(cc.t.pingTimeout / 3)
	defer tick.Stop()
	var pingSent time.Time
	for {
		select {
		case <-cc.done:
			return
		case now := <-tick.C:
			last := time.Unix(0, cc.lastRead.Load())
			switch {
			case !pingSent.IsZero() && last.Before(pingSent) && now.Sub(pingSent) > cc.t.pingTimeout:
				cc.close(errors.New("backend did not answer a ping"))
				return
			case now.Sub(last) > cc.t.pingAfter && (pingSent.IsZero() || last.After(pingSent)) && cc.busy():
				// Only a connection carrying calls is pinged: gRPC servers
				// take pings on an idle connection as abuse.
				pingSent = now
				_ = cc.writeFrames(func() error { return cc.wfr.WritePing(false, [8]byte{'c', 'o', 'r', 's', 'g', 'a', 't', 'e'}) })
			}
		}
	}
}
