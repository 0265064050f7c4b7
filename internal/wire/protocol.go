// Package wire is the one place corsgate reads and writes the RPC protocols'
// framing around a call: which protocol and codec a request speaks
// ([Classify]), the status of a call ([Status], with its details), the
// deadline headers ([Timeout]) and an error written in the caller's protocol
// ([WriteError]). The interceptor (strict-mode refusals) and the gateway
// (every error it makes or translates) both write errors through it, so a
// client sees the same shape from either.
//
// # Error shapes
//
//   - Connect unary (POST application/proto|json, GET, and anything not
//     recognised): the error as a JSON object with the HTTP status of the
//     code; metadata as Trailer-<name> headers.
//   - Connect streaming (application/connect+codec): HTTP 200 and one
//     end-stream envelope (flag 0x02) holding the error and the metadata.
//   - gRPC-Web, binary and text (application/grpc-web[-text][+codec]): a
//     trailers-only response, HTTP 200 with grpc-status, grpc-message and
//     grpc-status-details-bin in the headers and an empty body, as
//     connect-go's handler and ErrorWriter and Envoy answer. A browser reads
//     those headers because corsgate always exposes them (see the
//     interceptor's protocol exposed headers). When the error carries
//     application metadata, it goes with the status in a trailer frame
//     (flag 0x80) in the body instead, base64 in text mode: a script reads
//     trailer-frame metadata without Access-Control-Expose-Headers, which
//     the policy sets per procedure only.
//   - gRPC (application/grpc[+codec]): trailers-only, HTTP 200 with the
//     status in the headers (over HTTP/2, one HEADERS frame ending the
//     stream).
package wire

import (
	"net/http"
	"strings"
)

// Protocol is the wire protocol of a request.
type Protocol uint8

// The protocols, as [Classify] reads them from the method and Content-Type.
const (
	// ProtocolUnknown: a request no RPC client sends (not GET or POST, or a
	// POST whose Content-Type is not application/...). Errors are written
	// as Connect unary JSON, as connect-go's ErrorWriter does.
	ProtocolUnknown Protocol = iota
	// ProtocolConnect: Connect unary POST, application/<codec>.
	ProtocolConnect
	// ProtocolConnectGet: Connect unary GET (the codec is in the query).
	ProtocolConnectGet
	// ProtocolConnectStream: Connect streaming, application/connect+<codec>.
	ProtocolConnectStream
	// ProtocolGRPC: gRPC, application/grpc[+codec].
	ProtocolGRPC
	// ProtocolGRPCWeb: binary gRPC-Web, application/grpc-web[+codec].
	ProtocolGRPCWeb
	// ProtocolGRPCWebText: gRPC-Web text, application/grpc-web-text[+codec],
	// the binary stream in base64.
	ProtocolGRPCWebText
)

var protocolNames = [...]string{
	ProtocolUnknown:       "unknown",
	ProtocolConnect:       "connect",
	ProtocolConnectGet:    "connect_get",
	ProtocolConnectStream: "connect_stream",
	ProtocolGRPC:          "grpc",
	ProtocolGRPCWeb:       "grpc_web",
	ProtocolGRPCWebText:   "grpc_web_text",
}

// String returns a lowercase label: "connect", "connect_get",
// "connect_stream", "grpc", "grpc_web", "grpc_web_text" or "unknown".
func (p Protocol) String() string {
	if int(p) < len(protocolNames) {
		return protocolNames[p]
	}
	return "unknown"
}

// IsGRPCWeb reports whether p is gRPC-Web, binary or text.
func (p Protocol) IsGRPCWeb() bool { return p == ProtocolGRPCWeb || p == ProtocolGRPCWebText }

// Codec names.
const (
	CodecProto = "proto"
	CodecJSON  = "json"
)

// KnownCodec reports whether name is a codec corsgate translates: proto or
// json.
func KnownCodec(name string) bool { return name == CodecProto || name == CodecJSON }

// Class is what [Classify] reads from a request.
type Class struct {
	Protocol Protocol
	// Codec is the codec named by the Content-Type, lowercase: "proto" for
	// a bare gRPC or gRPC-Web type, whatever follows '+' (or "application/"
	// for Connect unary) otherwise, possibly a codec nobody knows. It is ""
	// for GET and for unknown requests.
	Codec string
	// Bare reports a gRPC or gRPC-Web Content-Type without "+codec"; the
	// answer uses the same spelling.
	Bare bool
}

// Classify reads the protocol, the codec and the text mode from the method
// and the Content-Type of r (case-insensitive, parameters ignored). It does
// not check that the codec is one corsgate knows ([KnownCodec]), nor the
// Connect-Protocol-Version header, and it does not allocate for lowercase
// content types.
func Classify(r *http.Request) Class {
	switch r.Method {
	case http.MethodGet:
		return Class{Protocol: ProtocolConnectGet}
	case http.MethodPost:
	default:
		return Class{}
	}
	var ct string
	if v := r.Header["Content-Type"]; len(v) > 0 {
		ct = v[0]
	}
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if hasUpper(ct) {
		ct = strings.ToLower(ct)
	}
	for _, p := range grpcBases {
		if codec, bare, ok := grpcSubtype(ct, p.base); ok {
			return Class{Protocol: p.protocol, Codec: codec, Bare: bare}
		}
	}
	if codec, ok := strings.CutPrefix(ct, "application/connect+"); ok {
		return Class{Protocol: ProtocolConnectStream, Codec: codec}
	}
	if codec, ok := strings.CutPrefix(ct, "application/"); ok {
		return Class{Protocol: ProtocolConnect, Codec: codec}
	}
	return Class{}
}

// grpcBases are the gRPC media types, the longest first.
var grpcBases = [...]struct {
	base     string
	protocol Protocol
}{
	{"application/grpc-web-text", ProtocolGRPCWebText},
	{"application/grpc-web", ProtocolGRPCWeb},
	{"application/grpc", ProtocolGRPC},
}

// grpcSubtype matches ct against base or base+codec.
func grpcSubtype(ct, base string) (codec string, bare, ok bool) {
	rest, ok := strings.CutPrefix(ct, base)
	switch {
	case !ok:
		return "", false, false
	case rest == "":
		return CodecProto, true, true
	case rest[0] == '+':
		return rest[1:], false, true
	}
	return "", false, false
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// Response content types, built once.
var (
	ctJSON             = []string{"application/json"}
	ctProto            = []string{"application/proto"}
	ctConnectProto     = []string{"application/connect+proto"}
	ctConnectJSON      = []string{"application/connect+json"}
	ctGRPC             = []string{"application/grpc"}
	ctGRPCProto        = []string{"application/grpc+proto"}
	ctGRPCJSON         = []string{"application/grpc+json"}
	ctGRPCWeb          = []string{"application/grpc-web"}
	ctGRPCWebProto     = []string{"application/grpc-web+proto"}
	ctGRPCWebJSON      = []string{"application/grpc-web+json"}
	ctGRPCWebText      = []string{"application/grpc-web-text"}
	ctGRPCWebTextProto = []string{"application/grpc-web-text+proto"}
)

// ContentType is the Content-Type of a response to a request of class c,
// in the request's own spelling (bare or "+codec"): application/<codec> for
// Connect unary (an error is always application/json), and
// application/json for GET and unknown requests. The returned slice is
// shared: do not modify it.
func (c Class) ContentType() []string {
	switch c.Protocol {
	case ProtocolConnect:
		if c.Codec == CodecProto {
			return ctProto
		}
	case ProtocolConnectStream:
		switch c.Codec {
		case CodecProto:
			return ctConnectProto
		case CodecJSON:
			return ctConnectJSON
		}
		return []string{"application/connect+" + c.Codec}
	case ProtocolGRPC:
		return pick(c, ctGRPC, ctGRPCProto, ctGRPCJSON, "application/grpc+")
	case ProtocolGRPCWeb:
		return pick(c, ctGRPCWeb, ctGRPCWebProto, ctGRPCWebJSON, "application/grpc-web+")
	case ProtocolGRPCWebText:
		return pick(c, ctGRPCWebText, ctGRPCWebTextProto, nil, "application/grpc-web-text+")
	}
	return ctJSON
}

func pick(c Class, bare, proto, json []string, prefix string) []string {
	switch {
	case c.Bare:
		return bare
	case c.Codec == CodecProto:
		return proto
	case c.Codec == CodecJSON && json != nil:
		return json
	}
	return []string{prefix + c.Codec}
}
