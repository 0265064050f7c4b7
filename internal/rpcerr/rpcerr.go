// Package rpcerr writes an RPC error in the protocol of the request that
// caused it, so that any client library (connect-go, connect-es, grpc-web,
// grpc-go) decodes the code and the message. Strict mode of the interceptor
// and the gateway use it for requests they refuse before any handler runs.
//
// The protocol is read from the request:
//
//   - POST application/grpc-web-text[+codec]: gRPC-Web text, a trailers-only
//     answer: HTTP 200, grpc-status and grpc-message in the headers, empty
//     body;
//   - POST application/grpc-web[+codec]: gRPC-Web binary, trailers-only the
//     same way (connect-go's [connect.ErrorWriter]);
//   - POST application/grpc[+codec]: gRPC, trailers-only: HTTP 200 with
//     grpc-status and grpc-message in the headers (over HTTP/2 a single
//     HEADERS frame that ends the stream);
//   - POST application/connect+codec: Connect streaming, HTTP 200 and an
//     end-stream envelope (flag 0x02) holding the error as JSON;
//   - everything else (Connect unary POST, Connect GET, unknown): Connect
//     unary, the error as a JSON body with the HTTP status of the code.
package rpcerr

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"connectrpc.com/connect"
)

// errorWriter is connect-go's, for the Connect protocol and gRPC-Web binary.
var errorWriter = connect.NewErrorWriter()

// Write writes an error with code and msg to w in the protocol of r. It
// drops a Content-Length set before, and does not read or close r.Body.
// Write errors are the client's problem (it went away) and are ignored.
func Write(w http.ResponseWriter, r *http.Request, code connect.Code, msg string) {
	hdr := w.Header()
	hdr.Del("Content-Length")
	ctype := contentType(r)
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(ctype, "application/grpc-web-text"):
		writeTrailersOnly(w, r, code, msg)
	case r.Method == http.MethodPost && isGRPC(ctype, "application/grpc-web"):
		_ = errorWriter.Write(w, r, connect.NewError(code, errors.New(msg)))
	case r.Method == http.MethodPost && isGRPC(ctype, "application/grpc"):
		writeTrailersOnly(w, r, code, msg)
	case r.Method == http.MethodPost && strings.HasPrefix(ctype, "application/connect+"):
		// connect-go classifies by Content-Type; a Connect-Protocol-Version
		// other than 1 would make it fall back to unary, so write the
		// streaming form for any version.
		if v := r.Header.Get("Connect-Protocol-Version"); v != "" && v != "1" {
			r = withoutVersion(r)
		}
		_ = errorWriter.Write(w, r, connect.NewError(code, errors.New(msg)))
	default:
		// Unary errors are always JSON; connect-go's writer treats unknown
		// protocols the same way.
		if r.Header.Get("Connect-Protocol-Version") != "" && r.Header.Get("Connect-Protocol-Version") != "1" {
			r = withoutVersion(r)
		}
		_ = errorWriter.Write(w, r, connect.NewError(code, errors.New(msg)))
	}
}

// contentType returns the request's media type, lowercase, without
// parameters.
func contentType(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// isGRPC reports whether ct is base or base+codec.
func isGRPC(ct, base string) bool {
	return ct == base || strings.HasPrefix(ct, base+"+")
}

func withoutVersion(r *http.Request) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Header.Del("Connect-Protocol-Version")
	return r2
}

// writeTrailersOnly answers gRPC or gRPC-Web (binary or text) with the status
// in the response headers and no body, echoing the request's Content-Type.
func writeTrailersOnly(w http.ResponseWriter, r *http.Request, code connect.Code, msg string) {
	hdr := w.Header()
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/grpc"
	}
	hdr.Set("Content-Type", ct)
	hdr.Set("Grpc-Status", strconv.Itoa(int(code)))
	hdr.Set("Grpc-Message", percentEncode(msg))
	w.WriteHeader(http.StatusOK)
}

// percentEncode encodes msg as the gRPC spec asks for grpc-message: bytes
// outside printable ASCII, and '%', as %XX.
func percentEncode(msg string) string {
	clean := true
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < ' ' || c > '~' || c == '%' {
			clean = false
			break
		}
	}
	if clean {
		return msg
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(msg) * 2)
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c < ' ' || c > '~' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xF])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
