package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// maxRecorded bounds what a [Recorder] keeps of a response: the final
// frame (gRPC-Web trailers, Connect end-of-stream) or the start of a
// Connect unary error body, compressed or not, and what it decompresses.
// A status is small; connect-go writes the code first.
const maxRecorded = 16 << 10

// Frame flags of the final frames.
const (
	flagCompressed     = 0x01
	flagConnectEnd     = 0x02
	flagGRPCWebTrailer = 0x80
)

// Recorder reads the final status of a call from the response a handler
// writes in the caller's protocol, as a client would, without changing
// it: the grpc-status trailer (HTTP/2 trailers, or the headers of a
// trailers-only answer) for gRPC; the trailer frame (flag 0x80, base64 in
// text mode) or the trailers-only headers for gRPC-Web; the end-of-stream
// message (flag 0x02) for Connect streaming; the HTTP status and the
// error's JSON for Connect unary. Compressed final frames are read when
// the response's encoding is gzip. The zero Recorder is ready after
// [Recorder.Reset]; a Recorder is not safe for concurrent use.
type Recorder struct {
	class Class
	code  int // the HTTP status written, 0 before
	text  textQuantum
	frame frameScanner
	body  []byte // the start of a Connect unary error body
}

// Reset makes rec read a response to a request of class c.
func (rec *Recorder) Reset(c Class) {
	*rec = Recorder{class: c, frame: frameScanner{payload: rec.frame.payload[:0]}, body: rec.body[:0]}
	switch c.Protocol {
	case ProtocolGRPCWeb, ProtocolGRPCWebText:
		rec.frame.final = flagGRPCWebTrailer
	case ProtocolConnectStream:
		rec.frame.final = flagConnectEnd
	}
}

// WriteHeader records the HTTP status of the response; informational
// statuses are ignored.
func (rec *Recorder) WriteHeader(code int) {
	if rec.code == 0 && code >= 200 {
		rec.code = code
	}
}

// Write records body bytes, as written to the client.
func (rec *Recorder) Write(p []byte) {
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	ok := rec.code == http.StatusOK
	switch rec.class.Protocol {
	case ProtocolGRPC:
		// The status is in the trailers.
	case ProtocolGRPCWeb:
		if ok {
			rec.frame.write(p)
		}
	case ProtocolGRPCWebText:
		if ok {
			rec.text.decode(p, &rec.frame)
		}
	case ProtocolConnectStream:
		if ok {
			rec.frame.write(p)
			return
		}
		rec.keepBody(p) // an error in the unary form
	default:
		if !ok {
			rec.keepBody(p) // an error's JSON
		}
	}
}

// keepBody keeps the start of a Connect unary body.
func (rec *Recorder) keepBody(p []byte) {
	if n := min(len(p), maxRecorded-len(rec.body)); n > 0 {
		rec.body = append(rec.body, p[:n]...)
	}
}

// Status returns the call's final status, read from what was written and
// from h, the response's header map at the end of the handler (where
// HTTP/2 trailers are, under their names or [http.TrailerPrefix]). A
// response that carries no status reads as UNKNOWN, or as the code of its
// HTTP status (the gRPC mapping, which Connect clients share).
func (rec *Recorder) Status(h http.Header) Status {
	code := rec.code
	if code == 0 {
		code = http.StatusOK // net/http sends 200 for a handler that wrote nothing
	}
	switch rec.class.Protocol {
	case ProtocolGRPC:
		if st, ok := StatusFromHeader(h); ok {
			return st
		}
		if st, ok := StatusFromHeader(prefixedTrailers(h)); ok {
			return st
		}
	case ProtocolGRPCWeb, ProtocolGRPCWebText:
		if rec.frame.found {
			if raw, ok := rec.frame.data(h["Grpc-Encoding"]); ok {
				if st, ok := StatusFromHeader(parseTrailerBlock(raw)); ok {
					return st
				}
			}
			return Status{Code: connect.CodeUnknown, Message: "trailer frame without a readable grpc-status"}
		}
		if st, ok := StatusFromHeader(h); ok {
			return st
		}
	case ProtocolConnectStream:
		if code != http.StatusOK {
			return connectUnaryStatus(code, rec.body)
		}
		if rec.frame.found {
			if raw, ok := rec.frame.data(h["Connect-Content-Encoding"]); ok {
				return connectEndStatus(raw)
			}
			return Status{Code: connect.CodeUnknown, Message: "end-of-stream message not readable"}
		}
		return Status{Code: connect.CodeUnknown, Message: "no end-of-stream message"}
	default:
		return connectUnaryStatus(code, rec.body)
	}
	if code != http.StatusOK {
		return Status{Code: CodeForHTTP(code), Message: "HTTP status " + http.StatusText(code)}
	}
	return Status{Code: connect.CodeUnknown, Message: "no grpc-status"}
}

// prefixedTrailers returns the trailers of h set under
// [http.TrailerPrefix], as connect-go sets gRPC's, by canonical name.
func prefixedTrailers(h http.Header) http.Header {
	var t http.Header
	for k, v := range h {
		if name, ok := strings.CutPrefix(k, http.TrailerPrefix); ok {
			if t == nil {
				t = make(http.Header, 3)
			}
			t[http.CanonicalHeaderKey(name)] = v
		}
	}
	return t
}

// parseTrailerBlock reads a gRPC-Web trailer frame's "name: value\r\n"
// lines; names are case-insensitive.
func parseTrailerBlock(raw []byte) http.Header {
	h := make(http.Header, 4)
	for line := range strings.Lines(string(raw)) {
		name, value, ok := strings.Cut(strings.TrimRight(line, "\r\n"), ":")
		if !ok {
			continue
		}
		h.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return h
}

// connectUnaryStatus reads a Connect unary answer: OK for 200 (and 304, a
// GET's Not Modified), else the error's JSON code, else the HTTP status.
func connectUnaryStatus(code int, body []byte) Status {
	if code == http.StatusOK || code == http.StatusNotModified {
		return Status{}
	}
	if st, ok := connectErrorJSON(body); ok {
		st.HTTPStatus = code
		return st
	}
	return Status{Code: CodeForHTTP(code), Message: "HTTP status " + http.StatusText(code), HTTPStatus: code}
}

// connectEndStatus reads a Connect end-of-stream message: its error, or OK
// without one.
func connectEndStatus(raw []byte) Status {
	var end struct {
		Error json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(raw, &end); err != nil {
		// Cut at maxRecorded: connect-go writes the error, code first, at
		// the start.
		if i := bytes.Index(raw, []byte(`"error"`)); i >= 0 {
			if st, ok := connectErrorJSON(raw[i:]); ok {
				return st
			}
		}
		return Status{Code: connect.CodeUnknown, Message: "end-of-stream message is not JSON"}
	}
	if len(end.Error) == 0 || string(end.Error) == "null" {
		return Status{}
	}
	if st, ok := connectErrorJSON(end.Error); ok {
		return st
	}
	return Status{Code: connect.CodeUnknown, Message: "end-of-stream error without a code"}
}

// connectErrorJSON reads the code and message of a Connect error object,
// or, when raw is not complete JSON, the first "code" it holds.
func connectErrorJSON(raw []byte) (Status, bool) {
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		e.Code = firstCode(raw)
	}
	var c connect.Code
	if e.Code == "" || c.UnmarshalText([]byte(e.Code)) != nil {
		return Status{}, false
	}
	return Status{Code: c, Message: e.Message}, true
}

// firstCode returns the value of the first `"code":"..."` in raw, "" for
// none.
func firstCode(raw []byte) string {
	i := bytes.Index(raw, []byte(`"code"`))
	if i < 0 {
		return ""
	}
	rest := bytes.TrimLeft(raw[i+len(`"code"`):], " \t\r\n")
	rest, ok := bytes.CutPrefix(rest, []byte(":"))
	if !ok {
		return ""
	}
	rest, ok = bytes.CutPrefix(bytes.TrimLeft(rest, " \t\r\n"), []byte(`"`))
	if !ok {
		return ""
	}
	value, _, ok := bytes.Cut(rest, []byte(`"`))
	if !ok {
		return ""
	}
	return string(value)
}

// frameScanner follows the frames of a gRPC-Web or Connect streaming body
// and keeps the payload of the last final frame (a frame with a final
// flag), up to maxRecorded bytes.
type frameScanner struct {
	final   byte // the final frame's flag
	hdr     [5]byte
	nhdr    int
	left    uint32 // payload bytes of the current frame still to come
	keep    bool   // the current frame is final: keep its payload
	found   bool
	flags   byte // the final frame's flags
	payload []byte
}

func (s *frameScanner) write(p []byte) {
	for len(p) > 0 {
		if s.left == 0 {
			n := copy(s.hdr[s.nhdr:], p)
			s.nhdr += n
			p = p[n:]
			if s.nhdr < len(s.hdr) {
				return
			}
			s.nhdr = 0
			s.left = binary.BigEndian.Uint32(s.hdr[1:])
			s.keep = s.hdr[0]&s.final != 0
			if s.keep {
				s.found, s.flags, s.payload = true, s.hdr[0], s.payload[:0]
			}
			continue
		}
		n := len(p)
		if uint64(n) > uint64(s.left) {
			n = int(s.left)
		}
		if s.keep {
			if room := min(n, maxRecorded-len(s.payload)); room > 0 {
				s.payload = append(s.payload, p[:room]...)
			}
		}
		s.left -= uint32(n)
		p = p[n:]
	}
}

// data returns the final frame's payload, decompressed when its
// compression flag is set and encoding is gzip; false when it cannot be
// read.
func (s *frameScanner) data(encoding []string) ([]byte, bool) {
	if s.flags&flagCompressed == 0 {
		return s.payload, true
	}
	if len(encoding) != 1 || encoding[0] != "gzip" {
		return nil, false
	}
	zr, err := gzip.NewReader(bytes.NewReader(s.payload))
	if err != nil {
		return nil, false
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxRecorded))
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, false
	}
	return raw, true
}

// textQuantum decodes a gRPC-Web text body as it streams: 4-character
// base64 groups, each of which may carry padding (a client may pad every
// chunk), whitespace ignored. After invalid base64 it decodes nothing
// more.
type textQuantum struct {
	q   [4]byte
	n   int
	bad bool
}

func (d *textQuantum) decode(p []byte, s *frameScanner) {
	var out [768]byte
	o := 0
	for _, c := range p {
		if d.bad {
			return
		}
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		}
		d.q[d.n] = c
		d.n++
		if d.n < len(d.q) {
			continue
		}
		d.n = 0
		m, err := base64.StdEncoding.Decode(out[o:], d.q[:])
		if err != nil {
			d.bad = true
			break
		}
		o += m
		if o > len(out)-3 {
			s.write(out[:o])
			o = 0
		}
	}
	s.write(out[:o])
}
