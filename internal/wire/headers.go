package wire

import (
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// IsReservedHeader reports whether the canonical header name k belongs to
// the gRPC protocol or to HTTP itself rather than to the application's
// metadata: the status headers, the encoding headers, Content-Type and
// Content-Length, and the hop-by-hop headers.
func IsReservedHeader(k string) bool {
	switch k {
	case "Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin",
		"Grpc-Encoding", "Grpc-Accept-Encoding", "Content-Type", "Content-Length",
		"Trailer", "Te", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade",
		"Proxy-Connection":
		return true
	}
	return false
}

// IsStatusHeader reports whether the canonical name k is one of the three
// status headers.
func IsStatusHeader(k string) bool {
	return k == "Grpc-Status" || k == "Grpc-Message" || k == "Grpc-Status-Details-Bin"
}

// IsMetadata reports whether the canonical name k is application metadata
// when read from trailers, or from the headers of a trailers-only
// response: not the protocol's ([IsReservedHeader]), not CORS, and not a
// header HTTP servers add on their own (Date, Server, Vary).
func IsMetadata(k string) bool {
	if IsReservedHeader(k) || strings.HasPrefix(k, "Access-Control-") {
		return false
	}
	switch k {
	case "Date", "Server", "Vary":
		return false
	}
	return true
}

// hasMetadata reports whether md holds any [IsMetadata] key.
func hasMetadata(md http.Header) bool {
	for k := range md {
		if IsMetadata(k) {
			return true
		}
	}
	return false
}

// lowerHeaderName lowercases a canonical header name, without allocating
// for the status headers; the gRPC-Web spec and its clients want lowercase
// trailer names.
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

// OneValue returns the value of the request header name (canonical form),
// trimmed, or "" when absent. A header sent more than once or as a comma
// list is refused with INVALID_ARGUMENT: a proxy checks one value, and the
// server behind it must not act on another (grpc-go, for one, reads the
// last Grpc-Encoding).
func OneValue(h http.Header, name string) (string, *Status) {
	v := h[name]
	switch {
	case len(v) == 0:
		return "", nil
	case len(v) > 1 || strings.IndexByte(v[0], ',') >= 0:
		return "", NewStatus(connect.CodeInvalidArgument, "more than one "+strings.ToLower(name)+" value: send one")
	}
	return strings.TrimSpace(v[0]), nil
}
