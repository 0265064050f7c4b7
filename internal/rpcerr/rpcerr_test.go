package rpcerr

import (
	"context"
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

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

// startServer answers every request with Write(code, msg), over HTTP/1.1
// and unencrypted HTTP/2.
func startServer(tb testing.TB, code connect.Code, msg string) string {
	tb.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "123") // must be dropped
		Write(w, r, code, msg)
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

// TestClientsDecode: every connect-go protocol decodes the code and the
// message, for unary and streaming calls.
func TestClientsDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		opts   []connect.ClientOption
		http2  bool
		stream bool
		code   connect.Code
		msg    string
	}{
		{name: "connect unary", code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "connect get", opts: []connect.ClientOption{connect.WithHTTPGet()}, code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "connect unary json", opts: []connect.ClientOption{connect.WithProtoJSON()}, code: connect.CodeUnavailable, msg: "down"},
		{name: "connect server stream", stream: true, code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "grpc-web unary", opts: []connect.ClientOption{connect.WithGRPCWeb()}, code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "grpc-web stream", opts: []connect.ClientOption{connect.WithGRPCWeb()}, stream: true, code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "grpc-web json", opts: []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}, code: connect.CodeResourceExhausted, msg: "too much"},
		{name: "grpc unary", opts: []connect.ClientOption{connect.WithGRPC()}, http2: true, code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "grpc stream", opts: []connect.ClientOption{connect.WithGRPC()}, http2: true, stream: true, code: connect.CodePermissionDenied, msg: "corsgate: refused"},
		{name: "grpc percent-encoded message", opts: []connect.ClientOption{connect.WithGRPC()}, http2: true, code: connect.CodeInternal, msg: "100% naïve\r\nline"},
		{name: "grpc-web percent-encoded message", opts: []connect.ClientOption{connect.WithGRPCWeb()}, code: connect.CodeInternal, msg: "100% naïve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := client(t, startServer(t, tt.code, tt.msg), tt.http2, tt.opts...)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			var err error
			if tt.stream {
				stream, serr := c.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "Ada"}))
				err = serr
				if serr == nil {
					for stream.Receive() {
						t.Errorf("received a message")
					}
					err = stream.Err()
					_ = stream.Close()
				}
			} else {
				_, err = c.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "Ada"}))
			}
			var cerr *connect.Error
			if !errors.As(err, &cerr) {
				t.Fatalf("error = %v, want a *connect.Error", err)
			}
			if cerr.Code() != tt.code || cerr.Message() != tt.msg {
				t.Errorf("error = %v (code %v, message %q), want code %v, message %q", err, cerr.Code(), cerr.Message(), tt.code, tt.msg)
			}
		})
	}
}

// TestWire checks the bytes for protocols without a Go client (gRPC-Web
// text) and the exact forms the package documents.
func TestWire(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		method      string
		ctype       string
		wantStatus  int
		wantCType   string
		wantGRPC    string // Grpc-Status header, "" when absent
		wantMessage string // Grpc-Message header
		check       func(t *testing.T, body []byte)
	}{
		{
			name: "grpc-web-text", method: http.MethodPost, ctype: "application/grpc-web-text", wantStatus: 200,
			wantCType: "application/grpc-web-text", wantGRPC: "7", wantMessage: "no %25 way",
			check: func(t *testing.T, body []byte) {
				if len(body) != 0 {
					t.Errorf("body = %q, want empty (trailers-only)", body)
				}
			},
		},
		{
			name: "grpc-web-text+proto", method: http.MethodPost, ctype: "application/grpc-web-text+proto", wantStatus: 200,
			wantCType: "application/grpc-web-text+proto", wantGRPC: "7", wantMessage: "no %25 way",
		},
		{
			name: "grpc-web binary", method: http.MethodPost, ctype: "application/grpc-web+proto", wantStatus: 200,
			wantCType: "application/grpc-web+proto", wantGRPC: "7", wantMessage: "no %25 way",
		},
		{
			name: "grpc", method: http.MethodPost, ctype: "application/grpc+proto", wantStatus: 200,
			wantCType: "application/grpc+proto", wantGRPC: "7", wantMessage: "no %25 way",
			check: func(t *testing.T, body []byte) {
				if len(body) != 0 {
					t.Errorf("body = %q, want empty (trailers-only)", body)
				}
			},
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
		{
			name: "connect get", method: http.MethodGet, wantStatus: 403, wantCType: "application/json",
		},
		{
			name: "connect get with future version", method: http.MethodGet, ctype: "", wantStatus: 403, wantCType: "application/json",
		},
		{
			name: "connect streaming", method: http.MethodPost, ctype: "application/connect+json", wantStatus: 200, wantCType: "application/connect+json",
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
		{
			name: "unknown protocol", method: http.MethodPost, ctype: "text/plain", wantStatus: 403, wantCType: "application/json",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tt.method, "/greet.v1.GreetService/Greet", strings.NewReader(""))
			if tt.ctype != "" {
				r.Header.Set("Content-Type", tt.ctype)
			}
			if tt.name == "connect get with future version" {
				r.Header.Set("Connect-Protocol-Version", "2")
			}
			w := httptest.NewRecorder()
			w.Header().Set("Content-Length", "42")
			Write(w, r, connect.CodePermissionDenied, "no % way")
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
				t.Errorf("Content-Length set before Write survived")
			}
			if tt.check != nil {
				tt.check(t, body)
			}
		})
	}
}

func TestPercentEncode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "plain", in: "plain text", want: "plain text"},
		{name: "percent", in: "100%", want: "100%25"},
		{name: "utf-8", in: "ï", want: "%C3%AF"},
		{name: "control", in: "a\nb", want: "a%0Ab"},
		{name: "empty", in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := percentEncode(tt.in); got != tt.want {
				t.Errorf("percentEncode(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
