package interceptor

import (
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"connectrpc.com/connect"

	"github.com/corsgate/corsgate/internal/grpcwebtext"
	"github.com/corsgate/corsgate/internal/wire"
)

// gRPC-Web text mode (application/grpc-web-text, the grpc-web JS client's
// default) for handlers that serve binary gRPC-Web only, such as
// connect-go's: the request body is decoded from base64 as it streams and
// its Content-Type rewritten to binary gRPC-Web, and the response is
// encoded back to base64 as it streams, as improbable's grpcweb wrapper
// (and so grpcwebproxy) does. The drop-in entry points ([Policy.Wrap],
// [Policy.WrapService], [Policy.WrapFiles]) put it inside the policy;
// [Policy.Handler] does not, since the gateway and improbable's wrapper
// serve text mode themselves.

const (
	ctGRPCWebTextPrefix = "application/grpc-web-text"
	ctGRPCWebTextProto  = "application/grpc-web-text+proto"
	ctGRPCWebPrefix     = "application/grpc-web"
	ctGRPCWebProto      = "application/grpc-web+proto"
)

var (
	valueGRPCWebProto     = []string{ctGRPCWebProto}
	valueGRPCWebTextProto = []string{ctGRPCWebTextProto}
)

// withGRPCWebText returns next serving gRPC-Web text requests as binary
// ones (nil stays nil), their bodies bounded by maxMessage (see
// [textBodyLimit]).
func withGRPCWebText(next http.Handler, maxMessage int) http.Handler {
	if next == nil {
		return nil
	}
	return textHandler{next: next, limit: textBodyLimit(maxMessage)}
}

type textHandler struct {
	next  http.Handler
	limit int64
}

// textBodyLimit bounds a gRPC-Web text request body: twice the base64
// length of one frame of maxMessage bytes, room for whitespace and for the
// padding of every chunk a client encodes on its own.
func textBodyLimit(maxMessage int) int64 {
	return 2 * int64(base64.StdEncoding.EncodedLen(maxMessage+5))
}

func (h textHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if isGRPCWebText(r) {
		serveText(h.next, w, r, h.limit)
		return
	}
	h.next.ServeHTTP(w, r)
}

// isGRPCWebText reports whether r is a gRPC-Web text request with the proto
// codec, as [wire.Classify] reads it (the gateway and strict mode read it
// the same way).
func isGRPCWebText(r *http.Request) bool {
	c := wire.Classify(r)
	return c.Protocol == wire.ProtocolGRPCWebText && c.Codec == wire.CodecProto
}

// serveText runs next on a binary gRPC-Web version of the text request r.
func serveText(next http.Handler, w http.ResponseWriter, r *http.Request, limit int64) {
	r2 := r.Clone(r.Context())
	r2.Header["Content-Type"] = valueGRPCWebProto
	if a := r2.Header["Accept"]; len(a) > 0 {
		r2.Header["Accept"] = []string{strings.ReplaceAll(strings.Join(a, ", "), ctGRPCWebTextPrefix, ctGRPCWebPrefix)}
	}
	// The decoded body is shorter than the one announced.
	delete(r2.Header, "Content-Length")
	r2.ContentLength = -1
	r2.Body = &textBody{r: grpcwebtext.NewReader(&limitedBody{r: r.Body, max: limit}), c: r.Body}
	r2.GetBody = nil
	tw := &textWriter{ResponseWriter: w}
	tw.enc = grpcwebtext.NewEncoder(w)
	next.ServeHTTP(tw, r2)
	if !tw.wroteHeader {
		tw.writeHeader(http.StatusOK)
	}
	if tw.encode {
		_ = tw.enc.Close()
	}
}

// textBody is a request body decoded from base64. Invalid base64 reads as
// an INVALID_ARGUMENT [connect.Error], which connect-go answers with that
// code.
type textBody struct {
	r *grpcwebtext.Reader
	c io.Closer
}

func (b *textBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		var ce *grpcwebtext.CorruptError
		switch {
		case errors.As(err, &ce):
			err = connect.NewError(connect.CodeInvalidArgument, ce)
		case errors.Is(err, io.ErrUnexpectedEOF):
			err = connect.NewError(connect.CodeInvalidArgument, errors.New("gRPC-Web text body ends inside a base64 group"))
		}
	}
	return n, err
}

func (b *textBody) Close() error { return b.c.Close() }

// limitedBody fails a raw body longer than max bytes with
// RESOURCE_EXHAUSTED, which connect-go answers with that code.
type limitedBody struct {
	r    io.Reader
	max  int64
	read int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if left := b.max - b.read; int64(len(p)) > left {
		p = p[:left+1] // one byte more tells a longer body from one that ends here
	}
	n, err := b.r.Read(p)
	b.read += int64(n)
	if b.read > b.max {
		return 0, connect.NewError(connect.CodeResourceExhausted, errors.New("gRPC-Web text body is larger than the limit of "+
			strconv.FormatInt(b.max, 10)+" bytes"))
	}
	return n, err
}

// textWriter turns a binary gRPC-Web response into a text one: Content-Type
// application/grpc-web-text+proto and the body in base64, complete 3-byte
// groups per write, the rest padded at each Flush and at the end. A
// response that is not gRPC-Web (a 404 of the mux, say) passes unchanged.
// It keeps Flush and Unwrap, so [http.ResponseController] works through it.
type textWriter struct {
	http.ResponseWriter
	enc         *grpcwebtext.Encoder
	wroteHeader bool
	encode      bool // the response is gRPC-Web: its body goes through enc
}

func (tw *textWriter) writeHeader(code int) {
	if code < 200 && code != http.StatusSwitchingProtocols {
		tw.ResponseWriter.WriteHeader(code)
		return
	}
	tw.wroteHeader = true
	hdr := tw.ResponseWriter.Header()
	if ct := hdr["Content-Type"]; len(ct) == 1 && strings.HasPrefix(ct[0], ctGRPCWebPrefix) {
		tw.encode = true
		hdr["Content-Type"] = valueGRPCWebTextProto
		delete(hdr, "Content-Length")
	}
	tw.ResponseWriter.WriteHeader(code)
}

// WriteHeader rewrites the Content-Type of a gRPC-Web response, then writes
// the status.
func (tw *textWriter) WriteHeader(code int) {
	if tw.wroteHeader {
		tw.ResponseWriter.WriteHeader(code) // let the server report the superfluous call
		return
	}
	tw.writeHeader(code)
}

// Write writes body bytes, in base64 for a gRPC-Web response.
func (tw *textWriter) Write(b []byte) (int, error) {
	if !tw.wroteHeader {
		tw.writeHeader(http.StatusOK)
	}
	if tw.encode {
		return tw.enc.Write(b)
	}
	return tw.ResponseWriter.Write(b)
}

// Flush ends the current base64 chunk (padding the bytes held back) and
// sends buffered data to the client; a no-op flush when the underlying
// writer cannot flush.
func (tw *textWriter) Flush() {
	_ = tw.FlushError()
}

// FlushError is Flush that reports the error, as [http.ResponseController]
// prefers.
func (tw *textWriter) FlushError() error {
	if !tw.wroteHeader {
		tw.writeHeader(http.StatusOK)
	}
	if tw.encode {
		if err := tw.enc.Close(); err != nil {
			return err
		}
	}
	return http.NewResponseController(tw.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer, for [http.ResponseController].
func (tw *textWriter) Unwrap() http.ResponseWriter {
	return tw.ResponseWriter
}
