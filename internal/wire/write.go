package wire

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
)

// Frame header and flags of the frames this package writes.
const (
	frameHeaderLen = 5    // flags byte and big-endian size
	flagEndStream  = 0x02 // the Connect end-of-stream message
	flagTrailers   = 0x80 // the gRPC-Web trailer frame
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// WriteError writes st to w in the protocol of class c (see the package
// doc for each shape), with md, when not nil, as the error's metadata
// (trailers, or the headers of a trailers-only backend answer; only
// [IsMetadata] keys are sent). It drops a Content-Length set before. The
// caller sets any response headers of its own first. A write error means
// the client went away and is ignored. st should not be OK, except for
// Connect streaming and gRPC-Web, where an OK status makes a well-formed
// end of a response without messages.
func WriteError(w http.ResponseWriter, c Class, st *Status, md http.Header) {
	h := w.Header()
	delete(h, "Content-Length")
	switch c.Protocol {
	case ProtocolGRPCWeb, ProtocolGRPCWebText:
		h["Content-Type"] = c.ContentType()
		if st.Code != 0 && !hasMetadata(md) {
			setStatusHeaders(h, st)
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusOK)
		bp := bufPool.Get().(*[]byte)
		b := AppendGRPCWebTrailers((*bp)[:0], st, md)
		if c.Protocol == ProtocolGRPCWebText {
			n := len(b)
			b = base64.StdEncoding.AppendEncode(b, b)
			b = b[n:]
		}
		_, _ = w.Write(b)
		*bp = b[:0]
		bufPool.Put(bp)
	case ProtocolGRPC:
		h["Content-Type"] = c.ContentType()
		setStatusHeaders(h, st)
		for k, v := range md {
			if IsMetadata(k) {
				h[k] = v
			}
		}
		w.WriteHeader(http.StatusOK)
	case ProtocolConnectStream:
		if st.HTTPStatus == 0 {
			h["Content-Type"] = c.ContentType()
			w.WriteHeader(http.StatusOK)
			bp := bufPool.Get().(*[]byte)
			b := AppendEndStream((*bp)[:0], st, md)
			_, _ = w.Write(b)
			*bp = b[:0]
			bufPool.Put(bp)
			return
		}
		writeConnectUnary(w, st, md)
	default:
		writeConnectUnary(w, st, md)
	}
}

// writeConnectUnary writes a Connect unary error: JSON, the HTTP status of
// the code (or st.HTTPStatus), md as Trailer-<name> headers.
func writeConnectUnary(w http.ResponseWriter, st *Status, md http.Header) {
	h := w.Header()
	SetTrailerHeaders(h, md)
	body := st.ConnectJSON()
	h["Content-Type"] = ctJSON
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	status := st.HTTPStatus
	if status == 0 {
		status = ConnectHTTPStatus(st.Code)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// setStatusHeaders puts st in h, for a trailers-only answer.
func setStatusHeaders(h http.Header, st *Status) {
	h["Grpc-Status"] = []string{strconv.Itoa(int(st.Code))}
	if st.Message != "" {
		h["Grpc-Message"] = []string{PercentEncode(st.Message)}
	}
	if st.DetailsBin != "" {
		h["Grpc-Status-Details-Bin"] = []string{st.DetailsBin}
	}
}

// SetGRPCTrailers announces st as the HTTP trailers of a gRPC response
// whose headers went out ([http.TrailerPrefix]).
func SetGRPCTrailers(h http.Header, st *Status) {
	h[http.TrailerPrefix+"Grpc-Status"] = []string{strconv.Itoa(int(st.Code))}
	if st.Message != "" {
		h[http.TrailerPrefix+"Grpc-Message"] = []string{PercentEncode(st.Message)}
	}
	if st.DetailsBin != "" {
		h[http.TrailerPrefix+"Grpc-Status-Details-Bin"] = []string{st.DetailsBin}
	}
}

// SetTrailerHeaders adds the [IsMetadata] keys of md to h as Connect unary
// trailers: Trailer-<name> headers.
func SetTrailerHeaders(h, md http.Header) {
	for k, v := range md {
		if IsMetadata(k) {
			h["Trailer-"+k] = v
		}
	}
}

// AppendGRPCWebTrailers appends the gRPC-Web trailer frame (flag 0x80) to
// dst: st as grpc-status, grpc-message (percent-encoded) and
// grpc-status-details-bin lines, then the [IsMetadata] keys of md, every
// name lowercase, "name: value\r\n" per value.
func AppendGRPCWebTrailers(dst []byte, st *Status, md http.Header) []byte {
	start := len(dst)
	dst = append(dst, flagTrailers, 0, 0, 0, 0)
	dst = append(dst, "grpc-status: "...)
	dst = strconv.AppendInt(dst, int64(st.Code), 10)
	dst = append(dst, "\r\n"...)
	if st.Message != "" {
		dst = appendLine(dst, "grpc-message", PercentEncode(st.Message))
	}
	if st.DetailsBin != "" {
		dst = appendLine(dst, "grpc-status-details-bin", st.DetailsBin)
	}
	for k, vs := range md {
		if !IsMetadata(k) {
			continue
		}
		name := lowerHeaderName(k)
		for _, v := range vs {
			dst = appendLine(dst, name, v)
		}
	}
	putSize(dst[start:])
	return dst
}

func appendLine(dst []byte, name, value string) []byte {
	dst = append(dst, name...)
	dst = append(dst, ": "...)
	dst = append(dst, value...)
	return append(dst, "\r\n"...)
}

// putSize writes the size of frame's payload into its header.
func putSize(frame []byte) {
	size := len(frame) - frameHeaderLen
	frame[1], frame[2], frame[3], frame[4] = byte(size>>24), byte(size>>16), byte(size>>8), byte(size)
}

// AppendEndStream appends the Connect end-of-stream message (flag 0x02) to
// dst: {"error": ...} when st is not OK, and "metadata" with the
// [IsMetadata] keys of md.
func AppendEndStream(dst []byte, st *Status, md http.Header) []byte {
	start := len(dst)
	dst = append(dst, flagEndStream, 0, 0, 0, 0, '{')
	if st.Code != 0 {
		dst = append(dst, `"error":`...)
		dst = append(dst, st.ConnectJSON()...)
	}
	if hasMetadata(md) {
		meta := make(map[string][]string, len(md))
		for k, v := range md {
			if IsMetadata(k) {
				meta[k] = v
			}
		}
		if st.Code != 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `"metadata":`...)
		b, err := json.Marshal(meta)
		if err != nil {
			b = []byte("{}")
		}
		dst = append(dst, b...)
	}
	dst = append(dst, '}')
	putSize(dst[start:])
	return dst
}
