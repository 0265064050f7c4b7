package wire

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"connectrpc.com/connect"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// Status is the outcome of a call in gRPC terms: what a backend put in its
// grpc-status, grpc-message and grpc-status-details-bin trailers, or what
// corsgate decided itself. *Status is an error, so it travels through
// readers and writers with its code.
type Status struct {
	// Code is the gRPC code; 0 is OK.
	Code connect.Code
	// Message is the decoded (not percent-encoded) message.
	Message string
	// DetailsBin is a grpc-status-details-bin value (base64 of a
	// google.rpc.Status, padded or not), passed untouched to gRPC and
	// gRPC-Web clients and decoded for Connect ones; "" without details.
	DetailsBin string
	// HTTPStatus, when not zero, is the HTTP status of a Connect answer
	// (unary, or streaming, which then answers in the unary form): 404 for
	// an unknown procedure, as connect-go's mux answers. gRPC and gRPC-Web
	// ignore it.
	HTTPStatus int
}

// NewStatus returns a status with code and msg.
func NewStatus(code connect.Code, msg string) *Status {
	return &Status{Code: code, Message: msg}
}

// Error returns "code: message".
func (s *Status) Error() string {
	return s.Code.String() + ": " + s.Message
}

// SetDetails sets the details of s, replacing any: each message is packed
// in an Any inside a google.rpc.Status that also holds s's code and
// message, the form grpc-status-details-bin carries and every client
// decodes. The error is the one of packing or marshaling a message.
func (s *Status) SetDetails(details ...proto.Message) error {
	pb := &spb.Status{Code: int32(s.Code), Message: s.Message}
	for _, d := range details {
		a, err := anypb.New(d)
		if err != nil {
			return err
		}
		pb.Details = append(pb.Details, a)
	}
	raw, err := proto.Marshal(pb)
	if err != nil {
		return err
	}
	s.DetailsBin = base64.RawStdEncoding.EncodeToString(raw)
	return nil
}

// StatusFromHeader reads grpc-status, grpc-message and
// grpc-status-details-bin from h (trailers, or the headers of a
// trailers-only response). ok is false when h has no grpc-status; an
// unparsable one is INTERNAL.
func StatusFromHeader(h http.Header) (st Status, ok bool) {
	codes := h["Grpc-Status"]
	if len(codes) == 0 {
		return st, false
	}
	code, err := strconv.ParseUint(strings.TrimSpace(codes[0]), 10, 32)
	if err != nil {
		return Status{Code: connect.CodeInternal, Message: "backend sent an invalid grpc-status " + strconv.Quote(codes[0])}, true
	}
	st.Code = connect.Code(code)
	if msgs := h["Grpc-Message"]; len(msgs) > 0 {
		st.Message = PercentDecode(msgs[0])
	}
	if d := h["Grpc-Status-Details-Bin"]; len(d) > 0 {
		st.DetailsBin = d[0]
	}
	return st, true
}

// CodeForHTTP maps a non-200 HTTP status of a gRPC answer to a code, as the
// gRPC spec's http-grpc-status-mapping says.
func CodeForHTTP(status int) connect.Code {
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

// ConnectHTTPStatus is the HTTP status of a Connect unary error with code.
func ConnectHTTPStatus(code connect.Code) int {
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

// ConnectJSON renders s as a Connect error object. Details come from
// DetailsBin; a value that does not decode is dropped (the code and message
// still go through). A code outside the gRPC range is "unknown".
func (s *Status) ConnectJSON() []byte {
	wire := connectWireError{Code: s.Code.String(), Message: s.Message}
	if s.Code < connect.CodeCanceled || s.Code > connect.CodeUnauthenticated {
		wire.Code = connect.CodeUnknown.String()
	}
	if s.DetailsBin != "" {
		wire.Details = decodeDetails(s.DetailsBin)
	}
	data, err := json.Marshal(wire)
	if err != nil { // cannot happen: plain strings only
		return []byte(`{"code":"internal"}`)
	}
	return data
}

func decodeDetails(bin string) []connectWireDetail {
	raw, err := DecodeBinaryHeader(bin)
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

// DecodeBinaryHeader decodes a -bin metadata value, padded or not.
func DecodeBinaryHeader(v string) ([]byte, error) {
	if len(v)%4 == 0 {
		return base64.StdEncoding.DecodeString(v)
	}
	return base64.RawStdEncoding.DecodeString(v)
}
