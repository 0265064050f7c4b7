package gateway

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/corsgate/corsgate/internal/grpcwebtext"
)

// grpcWeb is gRPC-Web, binary (application/grpc-web[+proto|+json]) or text
// (application/grpc-web-text[+proto], the whole body in base64).
//
// gRPC-Web is gRPC with the trailers moved into the body: requests are the
// same frames, so the binary protocol's request body and response frames
// pass through untouched, and only the trailers are rewritten into a final
// frame flagged 0x80 with lowercase "name: value\r\n" lines. Text mode wraps
// the same bytes in base64, each response write encoded on its own.
type grpcWeb struct {
	text bool
}

func (p grpcWeb) name() string {
	if p.text {
		return "grpc_web_text"
	}
	return "grpc_web"
}

func (grpcWeb) timeout(r *http.Request) (time.Duration, bool, *rpcStatus) {
	return grpcTimeoutHeader(r)
}

// grpcTimeoutHeader parses the Grpc-Timeout of gRPC and gRPC-Web requests.
func grpcTimeoutHeader(r *http.Request) (time.Duration, bool, *rpcStatus) {
	v, st := oneValue(r.Header, "Grpc-Timeout")
	if st != nil || v == "" {
		return 0, false, st
	}
	d, st := parseGRPCTimeout(v)
	if st != nil {
		return 0, false, st
	}
	return d, true, nil
}

func (p grpcWeb) prepare(c *call, out *http.Request) *rpcStatus {
	enc, st := oneValue(c.r.Header, "Grpc-Encoding")
	if st != nil {
		return st
	}
	var body *bodyWatch
	if p.text {
		body = c.watch(newBase64Reader(c.r.Body), -1)
	} else {
		body = c.watch(c.r.Body, c.r.ContentLength)
	}
	out.Header["Content-Type"] = contentTypeGRPC
	if c.codec == "json" {
		return c.transcodedRequest(out, body, enc)
	}
	if enc != "" {
		out.Header["Grpc-Encoding"] = []string{enc}
	}
	if v := c.r.Header["Grpc-Accept-Encoding"]; len(v) > 0 {
		out.Header["Grpc-Accept-Encoding"] = v
	}
	return c.framedRequest(out, body, enc)
}

func (p grpcWeb) respond(c *call, resp *http.Response) *rpcStatus {
	if resp.StatusCode != http.StatusOK || !responseContentTypeOK(resp) {
		return backendHTTPError(resp)
	}
	h := c.w.Header()
	h["Content-Type"] = p.contentType(c)
	if trailersOnly(resp) {
		st := finalStatus(resp)
		c.w.WriteHeader(http.StatusOK)
		c.wrote = true
		p.writeTrailers(c, c.writer(p), resp.Header, nil)
		return st
	}
	copyResponseMetadata(h, resp.Header)
	if c.codec != "json" {
		// Compressed frames pass through; JSON ones are decompressed.
		if v := resp.Header["Grpc-Encoding"]; len(v) > 0 {
			h["Grpc-Encoding"] = v
		}
		if v := resp.Header["Grpc-Accept-Encoding"]; len(v) > 0 {
			h["Grpc-Accept-Encoding"] = v
		}
	}
	c.w.WriteHeader(http.StatusOK)
	c.wrote = true
	out := c.writer(p)
	boundary, err := c.pump(out, resp)
	if err != nil {
		st := c.failure(err)
		if !boundary {
			// Part of a message went out: the client cannot parse a trailer
			// frame now, so break the response instead.
			c.abort(st)
		}
		p.writeTrailers(c, out, nil, st)
		return st
	}
	st := finalStatus(resp)
	if _, ok := resp.Trailer["Grpc-Status"]; ok {
		p.writeTrailers(c, out, resp.Trailer, nil)
	} else {
		// Either a status in the headers after a body, or none at all.
		p.writeTrailers(c, out, nil, st)
	}
	return st
}

func (p grpcWeb) writeError(c *call, st *rpcStatus) {
	c.w.Header()["Content-Type"] = p.contentType(c)
	c.w.WriteHeader(http.StatusOK)
	c.wrote = true
	p.writeTrailers(c, c.writer(p), nil, st)
}

var (
	contentTypeGRPC            = []string{"application/grpc"}
	contentTypeGRPCWeb         = []string{"application/grpc-web+proto"}
	contentTypeGRPCWebJSON     = []string{"application/grpc-web+json"}
	contentTypeGRPCWebText     = []string{"application/grpc-web-text+proto"}
	contentTypeGRPCWebBare     = []string{"application/grpc-web"}
	contentTypeGRPCWebTextBare = []string{"application/grpc-web-text"}
)

// contentType answers in the request's own spelling.
func (p grpcWeb) contentType(c *call) []string {
	bare := strings.IndexByte(c.r.Header.Get("Content-Type"), '+') < 0
	switch {
	case p.text && bare:
		return contentTypeGRPCWebTextBare
	case p.text:
		return contentTypeGRPCWebText
	case c.codec == "json":
		return contentTypeGRPCWebJSON
	case bare:
		return contentTypeGRPCWebBare
	default:
		return contentTypeGRPCWeb
	}
}

// writer is where response bytes go: the client, through base64 in text mode.
func (c *call) writer(p grpcWeb) io.Writer {
	if p.text {
		return base64Writer{w: c.w}
	}
	return c.w
}

// writeTrailers writes the trailers frame: from the backend's trailers (or
// the headers of a trailers-only answer) when md is not nil, else from st.
func (grpcWeb) writeTrailers(c *call, out io.Writer, md http.Header, st *rpcStatus) {
	buf := getBytesBuf()
	defer putBytesBuf(buf)
	buf.Write([]byte{flagTrailers, 0, 0, 0, 0})
	if md != nil {
		for k, vs := range md {
			if !isStatusHeader(k) && !isTrailerMetadata(k) {
				continue
			}
			name := lowerHeaderName(k)
			for _, v := range vs {
				buf.WriteString(name)
				buf.WriteString(": ")
				buf.WriteString(v)
				buf.WriteString("\r\n")
			}
		}
	} else {
		writeStatusLines(buf, st)
	}
	b := buf.Bytes()
	size := len(b) - headerLen
	b[1], b[2], b[3], b[4] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
	_, _ = out.Write(b)
}

func writeStatusLines(buf interface{ WriteString(string) (int, error) }, st *rpcStatus) {
	buf.WriteString("grpc-status: ")
	buf.WriteString(codeString(st))
	buf.WriteString("\r\n")
	if st.message != "" {
		buf.WriteString("grpc-message: ")
		buf.WriteString(percentEncode(st.message))
		buf.WriteString("\r\n")
	}
	if st.detailsBin != "" {
		buf.WriteString("grpc-status-details-bin: ")
		buf.WriteString(st.detailsBin)
		buf.WriteString("\r\n")
	}
}

func isStatusHeader(k string) bool {
	return k == "Grpc-Status" || k == "Grpc-Message" || k == "Grpc-Status-Details-Bin"
}

// lowerHeaderName lowercases a canonical header name; the gRPC-Web spec and
// clients want lowercase trailer names.
func lowerHeaderName(k string) string {
	switch k {
	case "Grpc-Status":
		return "grpc-status"
	case "Grpc-Message":
		return "grpc-message"
	case "Grpc-Status-Details-Bin":
		return "grpc-status-details-bin"
	}
	return strings.ToLower(k)
}

// base64Writer encodes every write on its own, padding included, as
// gRPC-Web text clients expect (they decode in 4-character groups).
type base64Writer struct {
	w http.ResponseWriter
}

func (b base64Writer) Write(p []byte) (int, error) {
	buf := getBytesBuf()
	defer putBytesBuf(buf)
	n := base64.StdEncoding.EncodedLen(len(p))
	buf.Grow(n)
	dst := buf.AvailableBuffer()[:n]
	base64.StdEncoding.Encode(dst, p)
	if _, err := b.w.Write(dst); err != nil {
		return 0, err
	}
	return len(p), nil
}

// newBase64Reader decodes a gRPC-Web text request body as it streams (see
// [grpcwebtext.Reader]); invalid base64 reads as INVALID_ARGUMENT.
func newBase64Reader(r io.Reader) io.Reader {
	return base64Reader{r: grpcwebtext.NewReader(r)}
}

type base64Reader struct {
	r *grpcwebtext.Reader
}

func (b base64Reader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	var ce *grpcwebtext.CorruptError
	if errors.As(err, &ce) {
		return n, errorf(connect.CodeInvalidArgument, ce.Error())
	}
	return n, err
}
