package gateway

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	"github.com/corsgate/corsgate/internal/wire"
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
	contentTypeConnectProto = []string{"application/proto"}
	contentTypeConnectJSON  = []string{"application/json"}
)

func (connectUnary) name() string  { return "connect" }
func (connectGet) name() string    { return "connect" }
func (connectStream) name() string { return "connect" }

// refusal is a status answered with a bare HTTP status, for requests that
// do not fit the method (a stream content type for a unary method, GET for
// a method with side effects).
func refusal(status int, msg string) *rpcStatus {
	return &rpcStatus{Code: connect.CodeUnknown, Message: msg, HTTPStatus: status}
}

func isHTTPRefusal(st *rpcStatus) bool {
	return st.HTTPStatus == http.StatusMethodNotAllowed || st.HTTPStatus == http.StatusUnsupportedMediaType
}

func (connectUnary) prepare(c *call, out *http.Request) *rpcStatus {
	if c.route.streamType != connect.StreamTypeUnary {
		return refusal(http.StatusUnsupportedMediaType, "streaming method needs application/connect+"+c.codec)
	}
	enc, st := wire.OneValue(c.r.Header, "Content-Encoding")
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
	if !wire.KnownCodec(c.codec) {
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

// respondConnectUnary reads the backend's one message and its status, then
// answers: the message, or the error as JSON.
func respondConnectUnary(c *call, resp *http.Response) *rpcStatus {
	if resp.StatusCode != http.StatusOK || !responseContentTypeOK(resp) {
		return backendHTTPError(resp)
	}
	if trailersOnly(resp) {
		st := finalStatus(resp)
		if st.Code == 0 {
			st = errorf(connect.CodeInternal, "backend sent no response message")
		}
		c.writeError(st, resp.Header)
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
	if st.Code != 0 {
		copyResponseMetadata(c.w.Header(), resp.Header)
		c.writeError(st, resp.Trailer)
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
	wire.SetTrailerHeaders(h, resp.Trailer)
	if c.r.Method == http.MethodGet {
		h.Add("Vary", "Accept-Encoding")
	}
	h["Content-Length"] = []string{strconv.Itoa(len(payload))}
	c.w.WriteHeader(http.StatusOK)
	c.wrote = true
	_, _ = c.w.Write(payload)
	return okStatus
}

func (connectStream) prepare(c *call, out *http.Request) *rpcStatus {
	if c.route.streamType == connect.StreamTypeUnary {
		return refusal(http.StatusUnsupportedMediaType, "unary method needs application/"+c.codec)
	}
	enc, st := wire.OneValue(c.r.Header, "Connect-Content-Encoding")
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

func (connectStream) respond(c *call, resp *http.Response) *rpcStatus {
	if resp.StatusCode != http.StatusOK || !responseContentTypeOK(resp) {
		return backendHTTPError(resp)
	}
	h := c.w.Header()
	h["Content-Type"] = c.class.ContentType()
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

// writeEndStream writes the Connect end-of-stream message: the error, if
// the status is not OK, and the metadata in md.
func writeEndStream(w io.Writer, st *rpcStatus, md http.Header) {
	buf := getBytesBuf()
	defer putBytesBuf(buf)
	_, _ = w.Write(wire.AppendEndStream(buf.AvailableBuffer(), st, md))
}
