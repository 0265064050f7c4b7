package wire

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

// startServer answers every request with WriteError(st, md), over HTTP/1.1
// and unencrypted HTTP/2.
func startServer(tb testing.TB, st *Status, md http.Header) string {
	tb.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "123") // must be dropped
		WriteError(w, Classify(r), st, md)
	}))
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv.URL
}

func client(tb testing.TB, url string, http2 bool, opts ...connect.ClientOption) greetv1connect.GreetServiceClient {
	tb.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	if http2 {
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return greetv1connect.NewGreetServiceClient(&http.Client{Transport: tr}, url, opts...)
}

// callError makes one call (unary or server stream) and returns its error
// as a *connect.Error.
func callError(tb testing.TB, c greetv1connect.GreetServiceClient, stream bool) *connect.Error {
	tb.Helper()
	ctx, cancel := context.WithTimeout(tb.Context(), 10*time.Second)
	defer cancel()
	var err error
	if stream {
		s, serr := c.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "Ada"}))
		err = serr
		if serr == nil {
			for s.Receive() {
				tb.Errorf("received a message")
			}
			err = s.Err()
			_ = s.Close()
		}
	} else {
		_, err = c.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "Ada"}))
	}
	var cerr *connect.Error
	if !errors.As(err, &cerr) {
		tb.Fatalf("error = %v, want a *connect.Error", err)
	}
	return cerr
}

// TestWriteErrorClients: every connect-go protocol decodes the code, the
// message, the detail and the metadata, for unary and streaming calls.
func TestWriteErrorClients(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   []connect.ClientOption
		http2  bool
		stream bool
		code   connect.Code
		msg    string
		md     http.Header
	}{
		{name: "connect unary", code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "connect get", opts: []connect.ClientOption{connect.WithHTTPGet()}, code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "connect unary json", opts: []connect.ClientOption{connect.WithProtoJSON()}, code: connect.CodeUnavailable, msg: "down"},
		{name: "connect unary metadata", code: connect.CodeNotFound, msg: "gone", md: http.Header{"X-Why": {"because"}}},
		{name: "connect server stream", stream: true, code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "connect stream metadata", stream: true, code: connect.CodeNotFound, msg: "gone", md: http.Header{"X-Why": {"because"}}},
		{name: "grpc-web unary", opts: []connect.ClientOption{connect.WithGRPCWeb()}, code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "grpc-web stream", opts: []connect.ClientOption{connect.WithGRPCWeb()}, stream: true, code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "grpc-web json", opts: []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}, code: connect.CodeResourceExhausted, msg: "too much"},
		{name: "grpc-web metadata", opts: []connect.ClientOption{connect.WithGRPCWeb()}, code: connect.CodeNotFound, msg: "gone", md: http.Header{"X-Why": {"because"}}},
		{name: "grpc unary", opts: []connect.ClientOption{connect.WithGRPC()}, http2: true, code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "grpc stream", opts: []connect.ClientOption{connect.WithGRPC()}, http2: true, stream: true, code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "grpc metadata", opts: []connect.ClientOption{connect.WithGRPC()}, http2: true, code: connect.CodeNotFound, msg: "gone", md: http.Header{"X-Why": {"because"}}},
		{name: "grpc percent-encoded message", opts: []connect.ClientOption{connect.WithGRPC()}, http2: true, code: connect.CodeInternal, msg: "100% naïve\r\nline"},
		{name: "grpc-web percent-encoded message", opts: []connect.ClientOption{connect.WithGRPCWeb()}, code: connect.CodeInternal, msg: "100% naïve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := NewStatus(tt.code, tt.msg)
			if err := st.SetDetails(&errdetails.ErrorInfo{Reason: "TEST", Domain: "corsgate.dev"}); err != nil {
				t.Fatal(err)
			}
			cerr := callError(t, client(t, startServer(t, st, tt.md), tt.http2, tt.opts...), tt.stream)
			if cerr.Code() != tt.code || cerr.Message() != tt.msg {
				t.Errorf("error = %v (code %v, message %q), want code %v, message %q", cerr, cerr.Code(), cerr.Message(), tt.code, tt.msg)
			}
			checkErrorInfo(t, cerr, "TEST")
			if tt.md != nil && cerr.Meta().Get("X-Why") != "because" {
				t.Errorf("metadata %v, want X-Why: because", cerr.Meta())
			}
		})
	}
}

// checkErrorInfo checks that cerr carries one google.rpc.ErrorInfo with reason.
func checkErrorInfo(tb testing.TB, cerr *connect.Error, reason string) {
	tb.Helper()
	ds := cerr.Details()
	if len(ds) != 1 {
		tb.Fatalf("%d details, want one ErrorInfo", len(ds))
	}
	v, err := ds[0].Value()
	if err != nil {
		tb.Fatalf("detail %s: %v", ds[0].Type(), err)
	}
	info, ok := v.(*errdetails.ErrorInfo)
	if !ok || info.GetReason() != reason {
		tb.Errorf("detail = %v, want ErrorInfo with reason %q", v, reason)
	}
}

// TestWriteErrorShapes checks the bytes, for the protocols without a Go
// client (gRPC-Web text) and for the exact forms the package documents.
func TestWriteErrorShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		method      string
		ctype       string
		version     string // Connect-Protocol-Version
		md          http.Header
		wantStatus  int
		wantCType   string
		wantGRPC    string // Grpc-Status header, "" when absent
		wantMessage string // Grpc-Message header
		check       func(t *testing.T, body []byte)
	}{
		{
			name: "grpc-web-text", method: http.MethodPost, ctype: "application/grpc-web-text", wantStatus: 200,
			wantCType: "application/grpc-web-text", wantGRPC: "7", wantMessage: "no %25 way", check: wantEmpty,
		},
		{
			name: "grpc-web-text+proto", method: http.MethodPost, ctype: "application/grpc-web-text+proto", wantStatus: 200,
			wantCType: "application/grpc-web-text+proto", wantGRPC: "7", wantMessage: "no %25 way", check: wantEmpty,
		},
		{
			name: "grpc-web-text with metadata", method: http.MethodPost, ctype: "application/grpc-web-text", md: http.Header{"X-Why": {"because"}, "Date": {"today"}},
			wantStatus: 200, wantCType: "application/grpc-web-text",
			check: func(t *testing.T, body []byte) {
				raw, err := base64.StdEncoding.DecodeString(string(body))
				if err != nil {
					t.Fatalf("body %q is not base64: %v", body, err)
				}
				lines := trailerFrame(t, raw)
				if lines["grpc-status"] != "7" || lines["grpc-message"] != "no %25 way" || lines["x-why"] != "because" || lines["date"] != "" {
					t.Errorf("trailers %v", lines)
				}
			},
		},
		{
			name: "grpc-web binary", method: http.MethodPost, ctype: "application/grpc-web+proto", wantStatus: 200,
			wantCType: "application/grpc-web+proto", wantGRPC: "7", wantMessage: "no %25 way", check: wantEmpty,
		},
		{
			name: "grpc-web bare, uppercase, parameters", method: http.MethodPost, ctype: "Application/GRPC-Web; charset=x", wantStatus: 200,
			wantCType: "application/grpc-web", wantGRPC: "7", wantMessage: "no %25 way", check: wantEmpty,
		},
		{
			name: "grpc", method: http.MethodPost, ctype: "application/grpc+proto", wantStatus: 200,
			wantCType: "application/grpc+proto", wantGRPC: "7", wantMessage: "no %25 way", check: wantEmpty,
		},
		{
			name: "connect unary", method: http.MethodPost, ctype: "application/proto", wantStatus: 403, wantCType: "application/json",
			check: func(t *testing.T, body []byte) {
				var got struct{ Code, Message string }
				if err := json.Unmarshal(body, &got); err != nil || got.Code != "permission_denied" || got.Message != "no % way" {
					t.Errorf("body = %s (%v), want permission_denied JSON", body, err)
				}
			},
		},
		{name: "connect get", method: http.MethodGet, wantStatus: 403, wantCType: "application/json"},
		{name: "connect get with a future version", method: http.MethodGet, version: "2", wantStatus: 403, wantCType: "application/json"},
		{
			name: "connect streaming", method: http.MethodPost, ctype: "application/connect+json", version: "2", wantStatus: 200, wantCType: "application/connect+json",
			check: func(t *testing.T, body []byte) {
				if len(body) < 5 || body[0] != 0x02 || int(binary.BigEndian.Uint32(body[1:5])) != len(body)-5 {
					t.Fatalf("body = %q, want one end-stream envelope", body)
				}
				var got struct {
					Error struct{ Code, Message string } `json:"error"`
				}
				if err := json.Unmarshal(body[5:], &got); err != nil || got.Error.Code != "permission_denied" || got.Error.Message != "no % way" {
					t.Errorf("end-stream = %s (%v)", body[5:], err)
				}
			},
		},
		{name: "unknown protocol", method: http.MethodPost, ctype: "text/plain", wantStatus: 403, wantCType: "application/json"},
		{name: "unknown method", method: http.MethodPut, ctype: "application/grpc-web", wantStatus: 403, wantCType: "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, "/greet.v1.GreetService/Greet", strings.NewReader(""))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			if tt.version != "" {
				r.Header.Set("Connect-Protocol-Version", tt.version)
			}
			w := httptest.NewRecorder()
			w.Header().Set("Content-Length", "42")
			WriteError(w, Classify(r), NewStatus(connect.CodePermissionDenied, "no % way"), tt.md)
			res := w.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if got := res.Header.Get("Content-Type"); got != tt.wantCType {
				t.Errorf("Content-Type = %q, want %q", got, tt.wantCType)
			}
			if got := res.Header.Get("Grpc-Status"); got != tt.wantGRPC {
				t.Errorf("Grpc-Status = %q, want %q", got, tt.wantGRPC)
			}
			if tt.wantMessage != "" && res.Header.Get("Grpc-Message") != tt.wantMessage {
				t.Errorf("Grpc-Message = %q, want %q", res.Header.Get("Grpc-Message"), tt.wantMessage)
			}
			if got := res.Header.Get("Content-Length"); got == "42" {
				t.Errorf("Content-Length set before WriteError survived")
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
}

func wantEmpty(t *testing.T, body []byte) {
	t.Helper()
	if len(body) != 0 {
		t.Errorf("body = %q, want empty (trailers-only)", body)
	}
}

// trailerFrame parses a body that is exactly one gRPC-Web trailer frame.
func trailerFrame(tb testing.TB, raw []byte) map[string]string {
	tb.Helper()
	if len(raw) < 5 || raw[0] != 0x80 || int(binary.BigEndian.Uint32(raw[1:5])) != len(raw)-5 {
		tb.Fatalf("body %q is not one trailer frame", raw)
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(raw[5:]), "\r\n"), "\r\n") {
		name, value, ok := strings.Cut(line, ": ")
		if !ok || name != strings.ToLower(name) {
			tb.Fatalf("bad trailer line %q", line)
		}
		out[name] = value
	}
	return out
}

// TestAppendEndStream: OK without metadata is "{}", metadata keeps only
// application keys.
func TestAppendEndStream(t *testing.T) {
	t.Parallel()
	if got := string(AppendEndStream(nil, &Status{}, nil)[5:]); got != "{}" {
		t.Errorf("OK end-stream = %q, want {}", got)
	}
	got := string(AppendEndStream(nil, &Status{}, http.Header{"X-A": {"1"}, "Grpc-Status": {"0"}, "Date": {"d"}})[5:])
	if got != `{"metadata":{"X-A":["1"]}}` {
		t.Errorf("end-stream = %s", got)
	}
}
