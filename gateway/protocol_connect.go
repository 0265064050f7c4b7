package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
)

// The Connect protocol, in three shapes: unary POST (connectUnary), unary
// GET for methods without side effects (connectGet), and streaming
// (connectStream).
//
// Unary Connect sends the bare message as the HTTP body with HTTP-level
// compression headers; the gateway frames it for gRPC (compressed flag and
// Grpc-Encoding from Content-Encoding) and answers with the bare response
// message, the trailers as Trailer-<name> headers, or an error as JSON with
// an HTTP status. Streaming Connect uses the same frames as gRPC, so
// messages pass through; the trailers become the end-of-stream message
// (flag 0x02) carrying JSON.
type (
	connectUnary  struct{}
	connectGet    struct{}
	connectStream struct{}
)

var (
	contentTypeJSON          = []string{"application/json"}
	contentTypeConnectProto  = []string{"application/proto"}
	contentTypeConnectJSON   = []string{"application/json"}
	contentTypeConnectSProto = []string{"application/connect+proto"}
	contentTypeConnectSJSON  = []string{"application/connect+json"}
)

func (connectUnary) name() string  { return "connect" }
func (connectGet) name() string    { return "connect" }
func (connectStream) name() string { return "connect" }

func (connectUnary) timeout(r *http.Request) (time.Duration, bool, *rpcStatus) {
	return connectTimeout(r)
}

func (connectGet) timeout(r *http.Request) (time.Duration, bool, *rpcStatus) {
	return connectTimeout(r)
}

func (connectStream) timeout(r *http.Request) (time.Duration, bool, *rpcStatus) {
	return connectTimeout(r)
}

// connectTimeout parses Connect-Timeout-Ms: at most 10 digits.
func connectTimeout(r *http.Request) (time.Duration, bool, *rpcStatus) {
	v, st := oneValue(r.Header, "Connect-Timeout-Ms")
	if st != nil || v == "" {
		return 0, false, st
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 || len(v) > 10 {
		return 0, false, errorf(connect.CodeInvalidArgument, "invalid connect-timeout-ms "+strconv.Quote(v))
	}
	return time.Duration(ms) * time.Millisecond, true, nil
}

// refusal is a status answered with a bare HTTP status, for requests that
// do not fit the method (a stream content type for a unary method, GET for
// a method with side effects).
func refusal(status int, msg string) *rpcStatus {
	return &rpcStatus{code: connect.CodeUnknown, message: msg, httpStatus: status}
}

func isHTTPRefusal(st *rpcStatus) bool {
	return st.httpStatus == http.StatusMethodNotAllowed || st.httpStatus == http.StatusUnsupportedMediaType
}

func (connectUnary) prepare(c *call, out *http.Request) *rpcStatus {
	if c.route.streamType != connect.StreamTypeUnary {
		return refusal(http.StatusUnsupportedMediaType, "streaming method needs application/connect+"+c.codec)
	}
	enc, st := oneValue(c.r.Header, "Content-Encoding")
	if st != nil {
		return st
	}
	data, st := c.readBody(c.watch(c.r.Body, c.r.ContentLength), headerLen, c.g.maxMsg)
	if st != nil {
		return st
	}
	return c.unaryMessage(out, data, enc)
}

func (connectGet) prepare(c *call, out *http.Request) *rpcStatus {
	if c.route.streamType != connect.StreamTypeUnary || !c.route.noSideEffects {
		return refusal(http.StatusMethodNotAllowed, "GET is only for methods with idempotency_level NO_SIDE_EFFECTS")
	}
	q := c.r.URL.Query()
	if v := q.Get("connect"); v != "" && v != "v1" {
		return errorf(connect.CodeInvalidArgument, "unsupported connect version "+strconv.Quote(v))
	}
	c.codec = q.Get("encoding")
	if !knownCodec(c.codec) {
		return refusal(http.StatusUnsupportedMediaType, "encoding must be proto or json")
	}
	msg := q.Get("message")
	if len(msg) > c.g.maxMsg*2 {
		return errorf(connect.CodeResourceExhausted, "message is larger than the limit of "+strconv.Itoa(c.g.maxMsg)+" bytes")
	}
	data := make([]byte, headerLen, headerLen+len(msg))
	switch q.Get("base64") {
	case "", "0":
		data = append(data, msg...)
	case "1":
		msg = strings.TrimRight(msg, "=")
		decoded, err := base64.RawURLEncoding.AppendDecode(data, []byte(msg))
		if err != nil {
			return errorf(connect.CodeInvalidArgument, "message is not base64url: "+err.Error())
		}
		data = decoded
	default:
		return errorf(connect.CodeInvalidArgument, "base64 must be 0 or 1")
	}
	if len(data)-headerLen > c.g.maxMsg {
		return tooLarge(uint32(len(data)-headerLen), c.g.maxMsg)
	}
	return c.unaryMessage(out, data, q.Get("compression"))
}

// unaryMessage frames a Connect unary request message (data holds
// headerLen free bytes, then the message) for the backend.
func (c *call) unaryMessage(out *http.Request, data []byte, encoding string) *rpcStatus {
	if encoding == "identity" {
		encoding = ""
	}
	out.Header["Content-Type"] = contentTypeGRPC
	if c.codec == "json" {
		payload := data[headerLen:]
		if encoding != "" {
			var st *rpcStatus
			if payload, st = decompress(encoding, payload, c.g.maxMsg); st != nil {
				return st
			}
		}
		msg, st := c.jsonToProto(payload)
		if st != nil {
			return st
		}
		setBodyBytes(out, append(appendFrameHeader(make([]byte, 0, headerLen+len(msg)), 0, len(msg)), msg...))
		return nil
	}
	var flags byte
	if encoding != "" {
		if encoding == "gzip" {
			if st := checkGzipSize(data[headerLen:], c.g.maxMsg); st != nil {
				return st
			}
		}
		flags = flagCompressed
		out.Header["Grpc-Encoding"] = []string{encoding}
	}
	if ae := c.r.Header["Accept-Encoding"]; len(ae) > 0 {
		out.Header["Grpc-Accept-Encoding"] = ae
	}
	appendFrameHeader(data[:0], flags, len(data)-headerLen)
	setBodyBytes(out, data)
	return nil
}

func (connectUnary) respond(c *call, resp *http.Response) *rpcStatus {
	return respondConnectUnary(c, resp)
}

func (connectGet) respond(c *call, resp *http.Response) *rpcStatus {
	return respondConnectUnary(c, resp)
}

func (connectUnary) writeError(c *call, st *rpcStatus) { writeConnectUnaryError(c, st, nil, nil) }
func (connectGet) writeError(c *call, st *rpcStatus)   { writeConnectUnaryError(c, st, nil, nil) }

// respondConnectUnary reads the backend's one message and its status, then
// answers: the message, or the error as JSON.
func respondConnectUnary(c *call, resp *http.Response) *rpcStatus {
	if resp.StatusCode != http.StatusOK || !responseContentTypeOK(resp) {
		return backendHTTPError(resp)
	}
	if trailersOnly(resp) {
		st := finalStatus(resp)
		if st.code == 0 {
			st = errorf(connect.CodeInternal, "backend sent no response message")
		}
		writeConnectUnaryError(c, st, nil, resp.Header)
		return st
	}
	buf := getBytesBuf()
	defer putBytesBuf(buf)
	fr := frameReader{r: resp.Body, max: c.g.maxResp}
	flags, err := fr.next(buf)
	gotMessage := err == nil
	if err != nil && !errors.Is(err, io.EOF) {
		return c.failure(err)
	}
	if gotMessage {
		// Unary: the next read must find the end of the body.
		var extra [1]byte
		if n, err := io.ReadFull(resp.Body, extra[:]); n > 0 {
			return errorf(connect.CodeInternal, "backend sent more than one response message")
		} else if err != nil && !errors.Is(err, io.EOF) {
			return c.failure(err)
		}
	}
	st := finalStatus(resp)
	if st.code != 0 {
		writeConnectUnaryError(c, st, resp.Header, resp.Trailer)
		return st
	}
	if !gotMessage {
		return errorf(connect.CodeInternal, "backend sent no response message")
	}
	payload := buf.Bytes()
	h := c.w.Header()
	if c.codec == "json" {
		if flags&flagCompressed != 0 {
			var st *rpcStatus
			if payload, st = decompress(resp.Header.Get("Grpc-Encoding"), payload, c.g.maxResp); st != nil {
				return st
			}
		}
		var st *rpcStatus
		if payload, st = c.protoToJSON(payload); st != nil {
			return st
		}
		h["Content-Type"] = contentTypeConnectJSON
	} else {
		h["Content-Type"] = contentTypeConnectProto
		if flags&flagCompressed != 0 {
			if enc := resp.Header["Grpc-Encoding"]; len(enc) > 0 {
				h["Content-Encoding"] = enc
			} else {
				return errorf(connect.CodeInternal, "backend sent a compressed message without grpc-encoding")
			}
		}
	}
	copyResponseMetadata(h, resp.Header)
	addTrailerHeaders(h, resp.Trailer)
	if c.r.Method == http.MethodGet {
		h.Add("Vary", "Accept-Encoding")
	}
	h["Content-Length"] = []string{strconv.Itoa(len(payload))}
	c.w.WriteHeader(http.StatusOK)
	c.wrote = true
	_, _ = c.w.Write(payload)
	return okStatus
}

// addTrailerHeaders adds unary Connect trailers as Trailer-<name> headers.
func addTrailerHeaders(h, trailer http.Header) {
	for k, v := range trailer {
		if !isTrailerMetadata(k) {
			continue
		}
		h["Trailer-"+k] = v
	}
}

// writeConnectUnaryError answers a unary call with a Connect error: JSON
// body, HTTP status from the code, the backend's headers and trailers (as
// Trailer-<name>) when there are any.
func writeConnectUnaryError(c *call, st *rpcStatus, header, trailer http.Header) {
	if isHTTPRefusal(st) {
		writeHTTPRefusal(c.w, st.httpStatus)
		c.wrote = true
		return
	}
	h := c.w.Header()
	if header != nil {
		copyResponseMetadata(h, header)
	}
	addTrailerHeaders(h, trailer)
	body := st.connectErrorJSON()
	h["Content-Type"] = contentTypeJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	status := st.httpStatus
	if status == 0 {
		status = connectHTTPStatus(st.code)
	}
	c.w.WriteHeader(status)
	c.wrote = true
	_, _ = c.w.Write(body)
}

func (connectStream) prepare(c *call, out *http.Request) *rpcStatus {
	if c.route.streamType == connect.StreamTypeUnary {
		return refusal(http.StatusUnsupportedMediaType, "unary method needs application/"+c.codec)
	}
	enc, st := oneValue(c.r.Header, "Connect-Content-Encoding")
	if st != nil {
		return st
	}
	body := c.watch(c.r.Body, c.r.ContentLength)
	out.Header["Content-Type"] = contentTypeGRPC
	if c.codec == "json" {
		return c.transcodedRequest(out, body, enc)
	}
	if enc != "" {
		out.Header["Grpc-Encoding"] = []string{enc}
	}
	if ae := c.r.Header["Connect-Accept-Encoding"]; len(ae) > 0 {
		out.Header["Grpc-Accept-Encoding"] = ae
	}
	return c.framedRequest(out, body, enc)
}

func (p connectStream) respond(c *call, resp *http.Response) *rpcStatus {
	if resp.StatusCode != http.StatusOK || !responseContentTypeOK(resp) {
		return backendHTTPError(resp)
	}
	h := c.w.Header()
	h["Content-Type"] = p.contentType(c)
	if c.codec != "json" {
		if v := resp.Header["Grpc-Encoding"]; len(v) > 0 {
			h["Connect-Content-Encoding"] = v
		}
		if v := resp.Header["Grpc-Accept-Encoding"]; len(v) > 0 {
			h["Connect-Accept-Encoding"] = v
		}
	}
	if trailersOnly(resp) {
		st := finalStatus(resp)
		c.w.WriteHeader(http.StatusOK)
		c.wrote = true
		writeEndStream(c.w, st, resp.Header)
		return st
	}
	copyResponseMetadata(h, resp.Header)
	c.w.WriteHeader(http.StatusOK)
	c.wrote = true
	boundary, err := c.pump(c.w, resp)
	if err != nil {
		st := c.failure(err)
		if !boundary {
			c.abort(st)
		}
		writeEndStream(c.w, st, nil)
		return st
	}
	st := finalStatus(resp)
	writeEndStream(c.w, st, resp.Trailer)
	return st
}

func (p connectStream) writeError(c *call, st *rpcStatus) {
	if isHTTPRefusal(st) {
		writeHTTPRefusal(c.w, st.httpStatus)
		c.wrote = true
		return
	}
	if st.httpStatus != 0 {
		// An unknown procedure: 404, as a Connect server's mux answers.
		writeConnectUnaryError(c, st, nil, nil)
		return
	}
	c.w.Header()["Content-Type"] = p.contentType(c)
	c.w.WriteHeader(http.StatusOK)
	c.wrote = true
	writeEndStream(c.w, st, nil)
}

func (connectStream) contentType(c *call) []string {
	if c.codec == "json" {
		return contentTypeConnectSJSON
	}
	return contentTypeConnectSProto
}

// writeEndStream writes the Connect end-of-stream message: the error, if
// the status is not OK, and the trailers from md.
func writeEndStream(w io.Writer, st *rpcStatus, md http.Header) {
	buf := getBytesBuf()
	defer putBytesBuf(buf)
	buf.Write([]byte{flagEndStream, 0, 0, 0, 0})
	buf.WriteByte('{')
	if st.code != 0 {
		buf.WriteString(`"error":`)
		buf.Write(st.connectErrorJSON())
	}
	meta := map[string][]string{}
	for k, v := range md {
		if !isTrailerMetadata(k) {
			continue
		}
		meta[k] = v
	}
	if len(meta) > 0 {
		if st.code != 0 {
			buf.WriteByte(',')
		}
		buf.WriteString(`"metadata":`)
		b, err := json.Marshal(meta)
		if err != nil {
			b = []byte("{}")
		}
		buf.Write(b)
	}
	buf.WriteByte('}')
	b := buf.Bytes()
	size := len(b) - headerLen
	b[1], b[2], b[3], b[4] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
	_, _ = w.Write(b)
}
