package gateway

import (
	"net/http"
	"strings"

	"github.com/corsgate/corsgate/internal/wire"
)

// grpcPass is gRPC itself (application/grpc[+codec]), passed through: the
// codec, the message encoding, the frames and the trailers reach the other
// side unchanged; only hop-by-hop and CORS headers are dropped and the size
// limit is checked. The client needs HTTP/2 for trailers and streams.
type grpcPass struct{}

func (grpcPass) name() string { return "grpc" }

func (grpcPass) prepare(c *call, out *http.Request) *rpcStatus {
	h := c.r.Header
	enc, st := wire.OneValue(h, "Grpc-Encoding")
	if st != nil {
		return st
	}
	out.Header["Content-Type"] = h["Content-Type"][:1:1] // one value: run refuses more
	if enc != "" {
		out.Header["Grpc-Encoding"] = []string{enc}
	}
	if v := h["Grpc-Accept-Encoding"]; len(v) > 0 {
		out.Header["Grpc-Accept-Encoding"] = v
	}
	return c.framedRequest(out, c.watch(c.r.Body, c.r.ContentLength), enc)
}

func (grpcPass) respond(c *call, resp *http.Response) *rpcStatus {
	if resp.StatusCode != http.StatusOK || !responseContentTypeOK(resp) {
		return backendHTTPError(resp)
	}
	h := c.w.Header()
	for k, v := range resp.Header {
		switch {
		case k == "Content-Type" || k == "Grpc-Encoding" || k == "Grpc-Accept-Encoding" || wire.IsStatusHeader(k):
		case wire.IsReservedHeader(k) || strings.HasPrefix(k, "Access-Control-"):
			continue
		case k == "Vary":
			h[k] = append(h[k], v...)
			continue
		}
		h[k] = v
	}
	c.w.WriteHeader(http.StatusOK)
	c.wrote = true
	if trailersOnly(resp) {
		return finalStatus(resp)
	}
	boundary, err := c.pump(c.w, resp)
	if err != nil {
		st := c.failure(err)
		if !boundary {
			c.abort(st)
		}
		wire.SetGRPCTrailers(h, st)
		return st
	}
	st := finalStatus(resp)
	if _, ok := resp.Trailer["Grpc-Status"]; ok {
		for k, v := range resp.Trailer {
			if strings.HasPrefix(k, "Access-Control-") {
				continue // the gateway's policy alone decides CORS
			}
			h[http.TrailerPrefix+k] = v
		}
	} else {
		wire.SetGRPCTrailers(h, st)
	}
	return st
}
