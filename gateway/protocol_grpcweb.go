package gateway

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"

	"connectrpc.com/connect"

	"github.com/corsgate/corsgate/internal/grpcwebtext"
	"github.com/corsgate/corsgate/internal/wire"
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

func (p grpcWeb) prepare(c *call, out *http.Request) *rpcStatus {
	enc, st := wire.OneValue(c.r.Header, "Grpc-Encoding")
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
	if trailersOnly(resp) {
		// An error goes out as the gateway's own would (trailers-only, or a
		// trailer frame when it carries metadata); OK ends an empty stream.
		st := finalStatus(resp)
		if st.Code != 0 {
			c.writeError(st, resp.Header)
			return st
		}
		c.w.Header()["Content-Type"] = c.class.ContentType()
		c.w.WriteHeader(http.StatusOK)
		c.wrote = true
		writeTrailers(c.writer(p), st, resp.Header)
		return st
	}
	h := c.w.Header()
	h["Content-Type"] = c.class.ContentType()
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
		writeTrailers(out, st, nil)
		return st
	}
	st := finalStatus(resp)
	writeTrailers(out, st, resp.Trailer)
	return st
}

var contentTypeGRPC = []string{"application/grpc"}

// writer is where response bytes go: the client, through base64 in text mode.
func (c *call) writer(p grpcWeb) io.Writer {
	if p.text {
		return base64Writer{w: c.w}
	}
	return c.w
}

// writeTrailers writes the trailer frame: st, then the metadata in md (the
// backend's trailers).
func writeTrailers(out io.Writer, st *rpcStatus, md http.Header) {
	buf := getBytesBuf()
	defer putBytesBuf(buf)
	_, _ = out.Write(wire.AppendGRPCWebTrailers(buf.AvailableBuffer(), st, md))
}

// base64Writer encodes every write on its own, padding included, as
// gRPC-Web text clients expect (they decode in 4-character groups).
type base64Writer struct {
	w http.ResponseWriter
}

func (b base64Writer) Write(p []byte) (int, error) {
	buf := getBytesBuf()
	defer putBytesBuf(buf)
	buf.Grow(base64.StdEncoding.EncodedLen(len(p)))
	if _, err := grpcwebtext.WriteChunk(b.w, p, buf.AvailableBuffer()); err != nil {
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
