package gateway

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// grpcPass is gRPC itself (application/grpc[+codec]), passed through: the
// codec, the message encoding, the frames and the trailers reach the other
// side unchanged; only hop-by-hop and CORS headers are dropped and the size
// limit is checked. The client needs HTTP/2 for trailers and streams.
type grpcPass struct{}

func (grpcPass) name() string { return "grpc" }

func (grpcPass) timeout(r *http.Request) (time.Duration, bool, *rpcStatus) {
	return grpcTimeoutHeader(r)
}

func (grpcPass) prepare(c *call, out *http.Request) *rpcStatus {
	h := c.r.Header
	enc, st := oneValue(h, "Grpc-Encoding")
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
		case k == "Content-Type" || k == "Grpc-Encoding" || k == "Grpc-Accept-Encoding" || isStatusHeader(k):
		case isReservedGRPCHeader(k) || strings.HasPrefix(k, "Access-Control-"):
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
		setStatusTrailers(h, st)
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
		setStatusTrailers(h, st)
	}
	return st
}

// setStatusTrailers announces st in the trailers of a response whose
// headers went out.
func setStatusTrailers(h http.Header, st *rpcStatus) {
	h[http.TrailerPrefix+"Grpc-Status"] = []string{codeString(st)}
	if st.message != "" {
		h[http.TrailerPrefix+"Grpc-Message"] = []string{percentEncode(st.message)}
	}
}

// writeError answers with a trailers-only response.
func (grpcPass) writeError(c *call, st *rpcStatus) {
	h := c.w.Header()
	ct := c.r.Header["Content-Type"]
	if len(ct) != 1 {
		ct = contentTypeGRPC
	}
	h["Content-Type"] = ct
	h["Grpc-Status"] = []string{codeString(st)}
	if st.message != "" {
		h["Grpc-Message"] = []string{percentEncode(st.message)}
	}
	if st.detailsBin != "" {
		h["Grpc-Status-Details-Bin"] = []string{st.detailsBin}
	}
	c.w.WriteHeader(http.StatusOK)
	c.wrote = true
}

// codeString is the decimal grpc-status of st.
func codeString(st *rpcStatus) string {
	return strconv.Itoa(int(st.code))
}
