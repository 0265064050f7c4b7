package h2client

// The read loop of a clientConn: the backend's frames, dispatched to streams.

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// readLoop reads the backend's frames until the connection ends.
func (cc *clientConn) readLoop() {
	err := cc.readFrames()
	cc.close(fmt.Errorf("backend connection lost: %v", err)) // %v: a lost connection is no end of body
}

func (cc *clientConn) readFrames() error {
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
					serr = &refusedError{reason: "REFUSED_STREAM"}
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

func (cc *clientConn) stream(id uint32) *clientStream {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.streams[id]
}

func (cc *clientConn) onSettings(f *http2.SettingsFrame) error {
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
			cc.maxStreams = defaultMaxStreams
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

func (cc *clientConn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
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

func (cc *clientConn) onGoAway(f *http2.GoAwayFrame) {
	cc.mu.Lock()
	cc.goAway = true
	cc.lastStreamID = f.LastStreamID
	var refused []*clientStream
	for id, cs := range cc.streams {
		if id > f.LastStreamID {
			refused = append(refused, cs)
		}
	}
	idle := cc.active == 0
	cc.mu.Unlock()
	cc.t.forget(cc)
	for _, cs := range refused {
		cs.abort(&refusedError{reason: "GOAWAY"}, false)
	}
	if idle {
		cc.close(errors.New("backend sent GOAWAY"))
	}
}

func (cc *clientConn) onHeaders(f *http2.MetaHeadersFrame) error {
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
		hdr := fieldsHeader(f.RegularFields())
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
			Body:          (*respBody)(cs),
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
	cs.trailer = fieldsHeader(f.RegularFields())
	cs.recvEnd = true
	cs.readErr = io.EOF
	cs.handOverLocked()
	cs.readCond.Broadcast()
	cs.mu.Unlock()
	cs.finishRecv()
	return nil
}

func (cc *clientConn) peekNextID() uint32 {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.nextID
}

// fieldsHeader returns decoded fields as a header, under their canonical
// keys. The values share one allocation, each key's slice capped so that
// an append to one copies instead of overwriting the next.
func fieldsHeader(fields []hpack.HeaderField) http.Header {
	h := make(http.Header, len(fields))
	vals := make([]string, len(fields))
	for i, hf := range fields {
		k, ok := commonKeys[hf.Name]
		if !ok {
			k = http.CanonicalHeaderKey(hf.Name)
		}
		if prev, ok := h[k]; ok {
			h[k] = append(prev, hf.Value)
			continue
		}
		vals[i] = hf.Value
		h[k] = vals[i : i+1 : i+1]
	}
	return h
}

// commonKeys are the canonical keys of the fields gRPC backends send,
// by their HTTP/2 (lower-case) names: found here, they cost no allocation.
var commonKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{
		"Content-Type", "Content-Length", "Date", "Server", "Trailer", "Grpc-Status", "Grpc-Message",
		"Grpc-Status-Details-Bin", "Grpc-Encoding", "Grpc-Accept-Encoding", "Vary", "Cache-Control",
	} {
		m[strings.ToLower(k)] = k
	}
	return m
}()

func (cc *clientConn) onData(f *http2.DataFrame) error {
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
		cs.appendRecvLocked(data)
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
	if cs.whole && (cs.recvEnd || len(cs.buf) >= cc.t.handOver) {
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
func (cc *clientConn) returnConn(n int) {
	cc.mu.Lock()
	cc.connUnacked += n
	send := 0
	if cc.connUnacked >= cc.t.connWindow/4 {
		send, cc.connUnacked = cc.connUnacked, 0
	}
	cc.mu.Unlock()
	if send > 0 {
		_ = cc.writeFrames(func() error { return cc.wfr.WriteWindowUpdate(0, uint32(send)) })
	}
}
