package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
)

func frame(flags byte, payload []byte) []byte {
	out := make([]byte, 5, 5+len(payload))
	out[0] = flags
	binary.BigEndian.PutUint32(out[1:], uint32(len(payload)))
	return append(out, payload...)
}

func gzipped(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// TestRecorder reads the status of responses as handlers write them,
// including writes cut anywhere (one byte at a time), compressed final
// frames and base64 chunks padded on their own.
func TestRecorder(t *testing.T) {
	t.Parallel()
	data := frame(0, []byte("hello, message"))
	webTrailer := frame(flagGRPCWebTrailer, []byte("grpc-message: lost%20it\r\ngrpc-status: 15\r\nx-meta: a\r\n"))
	endErr := frame(flagConnectEnd, []byte(`{"error":{"code":"data_loss","message":"lost it"},"metadata":{"x":["y"]}}`))
	tests := []struct {
		name     string
		class    Class
		code     int         // 0: no WriteHeader
		header   http.Header // at the end of the handler
		body     []byte
		text     []string // gRPC-Web text chunks, each encoded on its own
		wantCode connect.Code
		wantMsg  string
	}{
		{name: "grpc trailers under the prefix", class: Class{Protocol: ProtocolGRPC},
			header: http.Header{"Trailer:Grpc-Status": {"5"}, "Trailer:Grpc-Message": {"not%20here"}}, body: data,
			wantCode: connect.CodeNotFound, wantMsg: "not here"},
		{name: "grpc declared trailers", class: Class{Protocol: ProtocolGRPC},
			header: http.Header{"Grpc-Status": {"0"}}, body: data, wantCode: 0},
		{name: "grpc no status", class: Class{Protocol: ProtocolGRPC}, header: http.Header{}, body: data,
			wantCode: connect.CodeUnknown, wantMsg: "no grpc-status"},
		{name: "grpc HTTP 503", class: Class{Protocol: ProtocolGRPC}, code: 503, header: http.Header{},
			wantCode: connect.CodeUnavailable, wantMsg: "HTTP status Service Unavailable"},
		{name: "grpc-web trailer frame", class: Class{Protocol: ProtocolGRPCWeb}, code: 200, header: http.Header{},
			body: append(append([]byte{}, data...), webTrailer...), wantCode: connect.CodeDataLoss, wantMsg: "lost it"},
		{name: "grpc-web trailers-only", class: Class{Protocol: ProtocolGRPCWeb}, code: 200,
			header: http.Header{"Grpc-Status": {"3"}, "Grpc-Message": {"bad"}}, wantCode: connect.CodeInvalidArgument, wantMsg: "bad"},
		{name: "grpc-web gzip trailer frame", class: Class{Protocol: ProtocolGRPCWeb}, code: 200,
			header: http.Header{"Grpc-Encoding": {"gzip"}},
			body:   frame(flagGRPCWebTrailer|flagCompressed, gzipped(t, []byte("grpc-status: 14\r\n"))), wantCode: connect.CodeUnavailable},
		{name: "grpc-web compressed, unknown encoding", class: Class{Protocol: ProtocolGRPCWeb}, code: 200,
			header: http.Header{"Grpc-Encoding": {"zstd"}}, body: frame(flagGRPCWebTrailer|flagCompressed, []byte("??")),
			wantCode: connect.CodeUnknown, wantMsg: "trailer frame without a readable grpc-status"},
		{name: "grpc-web text, padded chunks", class: Class{Protocol: ProtocolGRPCWebText}, header: http.Header{},
			text: []string{"\x00\x00\x00\x00\x01x", string(webTrailer[:3]), string(webTrailer[3:])}, wantCode: connect.CodeDataLoss, wantMsg: "lost it"},
		{name: "grpc-web text, not base64", class: Class{Protocol: ProtocolGRPCWebText}, header: http.Header{},
			body: []byte("!!!!" + base64.StdEncoding.EncodeToString(webTrailer)), wantCode: connect.CodeUnknown},
		{name: "connect stream ok", class: Class{Protocol: ProtocolConnectStream}, header: http.Header{},
			body: append(append([]byte{}, data...), frame(flagConnectEnd, []byte(`{}`))...), wantCode: 0},
		{name: "connect stream error", class: Class{Protocol: ProtocolConnectStream}, header: http.Header{},
			body: append(append([]byte{}, data...), endErr...), wantCode: connect.CodeDataLoss, wantMsg: "lost it"},
		{name: "connect stream gzip end", class: Class{Protocol: ProtocolConnectStream},
			header: http.Header{"Connect-Content-Encoding": {"gzip"}},
			body:   frame(flagConnectEnd|flagCompressed, gzipped(t, []byte(`{"error":{"code":"aborted"}}`))), wantCode: connect.CodeAborted},
		{name: "connect stream cut before the end", class: Class{Protocol: ProtocolConnectStream}, header: http.Header{},
			body: data, wantCode: connect.CodeUnknown, wantMsg: "no end-of-stream message"},
		{name: "connect stream error in the unary form", class: Class{Protocol: ProtocolConnectStream}, code: 415,
			header: http.Header{}, body: []byte(`{"code":"unimplemented"}`), wantCode: connect.CodeUnimplemented},
		{name: "connect unary ok", class: Class{Protocol: ProtocolConnect}, header: http.Header{}, body: []byte(`{"greeting":"x"}`)},
		{name: "connect get not modified", class: Class{Protocol: ProtocolConnectGet}, code: 304, header: http.Header{}},
		{name: "connect unary error", class: Class{Protocol: ProtocolConnect}, code: 400, header: http.Header{},
			body: []byte(`{"code":"failed_precondition","message":"not yet"}`), wantCode: connect.CodeFailedPrecondition, wantMsg: "not yet"},
		{name: "connect unary error cut after the code", class: Class{Protocol: ProtocolConnect}, code: 500, header: http.Header{},
			body: []byte(`{"code": "data_loss","message":"` + strings.Repeat("x", 2*maxRecorded)), wantCode: connect.CodeDataLoss},
		{name: "connect unary error without JSON", class: Class{Protocol: ProtocolConnect}, code: 401, header: http.Header{},
			body: []byte("no"), wantCode: connect.CodeUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var rec Recorder
			rec.Reset(tt.class)
			if tt.code != 0 {
				rec.WriteHeader(tt.code)
			}
			body := tt.body
			for _, chunk := range tt.text {
				body = append(body, base64.StdEncoding.EncodeToString([]byte(chunk))...)
				body = append(body, "\r\n"...)
			}
			for i := range body {
				rec.Write(body[i : i+1])
			}
			st := rec.Status(tt.header)
			if st.Code != tt.wantCode || tt.wantMsg != "" && st.Message != tt.wantMsg {
				t.Errorf("status %v %q, want %v %q", st.Code, st.Message, tt.wantCode, tt.wantMsg)
			}
			// The same body in one write reads the same.
			rec.Reset(tt.class)
			if tt.code != 0 {
				rec.WriteHeader(tt.code)
			}
			rec.Write(body)
			if st2 := rec.Status(tt.header); st2.Code != st.Code || st2.Message != st.Message {
				t.Errorf("in one write: status %v %q, byte by byte %v %q", st2.Code, st2.Message, st.Code, st.Message)
			}
		})
	}
}
