package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// rpcStatus is the outcome of a call in gRPC terms: what the backend put in
// its grpc-status, grpc-message and grpc-status-details-bin trailers, or what
// the gateway decided itself.
type rpcStatus struct {
	code connect.Code // 0 is OK
	// message is the decoded (not percent-encoded) message.
	message string
	// detailsBin is the grpc-status-details-bin value as received (base64 of a
	// google.rpc.Status), passed through untouched to gRPC and gRPC-Web clients.
	detailsBin string
	// httpStatus, when not zero, overrides the Connect unary HTTP status (404
	// for unknown procedures, as connect-go's mux answers).
	httpStatus int
}

// errorf makes a gateway-made status.
func errorf(code connect.Code, msg string) *rpcStatus {
	return &rpcStatus{code: code, message: msg}
}

// statusFromHeader reads grpc-status, grpc-message and grpc-status-details-bin
// from h. ok is false when h has no grpc-status.
func statusFromHeader(h http.Header) (st rpcStatus, ok bool) {
	codes := h["Grpc-Status"]
	if len(codes) == 0 {
		return st, false
	}
	code, err := strconv.ParseUint(strings.TrimSpace(codes[0]), 10, 32)
	if err != nil {
		return rpcStatus{code: connect.CodeInternal, message: "backend sent an invalid grpc-status " + strconv.Quote(codes[0])}, true
	}
	st.code = connect.Code(code)
	if msgs := h["Grpc-Message"]; len(msgs) > 0 {
		st.message = percentDecode(msgs[0])
	}
	if d := h["Grpc-Status-Details-Bin"]; len(d) > 0 {
		st.detailsBin = d[0]
	}
	return st, true
}

// isReservedGRPCHeader reports whether the canonical header name k belongs to
// the gRPC protocol rather than to the application's metadata.
func isReservedGRPCHeader(k string) bool {
	switch k {
	case "Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin",
		"Grpc-Encoding", "Grpc-Accept-Encoding", "Content-Type", "Content-Length",
		"Trailer", "Te", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade",
		"Proxy-Connection":
		return true
	}
	return false
}

// deadlineSlack is how close to the client's deadline a call that fails
// counts as having run out of time: the backend enforces the same deadline,
// and may reset the stream rather than answer.
const deadlineSlack = 20 * time.Millisecond

// deadlineGrace is how long after the client's deadline the gateway stops
// waiting for the backend (see call.run).
const deadlineGrace = 100 * time.Millisecond

// statusFromError maps an error of the backend round trip or of copying a
// body to a status. deadline is the client's, zero without one.
func statusFromError(ctx context.Context, deadline time.Time, err error) *rpcStatus {
	var st *rpcStatus
	switch {
	case errors.As(err, &st):
		return st
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded),
		!deadline.IsZero() && time.Until(deadline) < deadlineSlack:
		return errorf(connect.CodeDeadlineExceeded, "deadline exceeded")
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		return errorf(connect.CodeCanceled, "request canceled")
	default:
		return errorf(connect.CodeUnavailable, "backend unavailable: "+err.Error())
	}
}

// Error makes *rpcStatus usable as an error that carries its code through
// readers and writers.
func (s *rpcStatus) Error() string {
	return s.code.String() + ": " + s.message
}

// grpcCodeForHTTP maps a backend's non-200 HTTP status to a gRPC code, as the
// gRPC spec's http-grpc-status-mapping says.
func grpcCodeForHTTP(status int) connect.Code {
	switch status {
	case 400:
		return connect.CodeInternal
	case 401:
		return connect.CodeUnauthenticated
	case 403:
		return connect.CodePermissionDenied
	case 404:
		return connect.CodeUnimplemented
	case 429, 502, 503, 504:
		return connect.CodeUnavailable
	default:
		return connect.CodeUnknown
	}
}

// connectHTTPStatus is the HTTP status of a Connect unary error.
func connectHTTPStatus(code connect.Code) int {
	switch code {
	case connect.CodeCanceled:
		return 499
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodeOutOfRange:
		return 400
	case connect.CodeDeadlineExceeded:
		return 504
	case connect.CodeNotFound:
		return 404
	case connect.CodeAlreadyExists, connect.CodeAborted:
		return 409
	case connect.CodePermissionDenied:
		return 403
	case connect.CodeResourceExhausted:
		return 429
	case connect.CodeUnimplemented:
		return 501
	case connect.CodeUnavailable:
		return 503
	case connect.CodeUnauthenticated:
		return 401
	default:
		return 500
	}
}

// connectWireError is the JSON of a Connect error.
type connectWireError struct {
	Code    string              `json:"code"`
	Message string              `json:"message,omitempty"`
	Details []connectWireDetail `json:"details,omitempty"`
}

type connectWireDetail struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// connectErrorJSON renders st as a Connect error object. Details come from
// grpc-status-details-bin; a value that does not decode is dropped (the code
// and message still go through).
func (s *rpcStatus) connectErrorJSON() []byte {
	wire := connectWireError{Code: s.code.String(), Message: s.message}
	if s.code < connect.CodeCanceled || s.code > connect.CodeUnauthenticated {
		wire.Code = connect.CodeUnknown.String()
	}
	if s.detailsBin != "" {
		wire.Details = decodeDetails(s.detailsBin)
	}
	data, err := json.Marshal(wire)
	if err != nil { // cannot happen: plain strings only
		return []byte(`{"code":"internal"}`)
	}
	return data
}

func decodeDetails(bin string) []connectWireDetail {
	raw, err := decodeBinaryHeader(bin)
	if err != nil {
		return nil
	}
	var pb spb.Status
	if err := proto.Unmarshal(raw, &pb); err != nil {
		return nil
	}
	out := make([]connectWireDetail, 0, len(pb.GetDetails()))
	for _, d := range pb.GetDetails() {
		name := d.GetTypeUrl()
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			name = name[i+1:]
		}
		out = append(out, connectWireDetail{Type: name, Value: base64.RawStdEncoding.EncodeToString(d.GetValue())})
	}
	return out
}

// decodeBinaryHeader decodes a -bin metadata value, padded or not.
func decodeBinaryHeader(v string) ([]byte, error) {
	if len(v)%4 == 0 {
		return base64.StdEncoding.DecodeString(v)
	}
	return base64.RawStdEncoding.DecodeString(v)
}

// percentEncode escapes a grpc-message value as the gRPC spec asks.
func percentEncode(msg string) string {
	n := 0
	for i := range len(msg) {
		if c := msg[i]; c < ' ' || c > '~' || c == '%' {
			n++
		}
	}
	if n == 0 {
		return msg
	}
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(msg) + 2*n)
	for i := range len(msg) {
		c := msg[i]
		if c < ' ' || c > '~' || c == '%' {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// percentDecode undoes percentEncode; a malformed escape is kept as is.
func percentDecode(s string) string {
	if strings.IndexByte(s, '%') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
