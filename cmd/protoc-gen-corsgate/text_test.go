package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1corsgate"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// TestGeneratedHandlerServesGRPCWebText: the generated constructor serves
// the grpc-web JS client's default text mode, as policy.Wrap does, although
// connect-go serves binary gRPC-Web only.
func TestGeneratedHandlerServesGRPCWebText(t *testing.T) {
	t.Parallel()
	const origin = "https://app.example.com"
	policy, err := interceptor.New(interceptor.WithAllowedOrigins(origin))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(greetv1corsgate.NewGreetServiceHandler(greetsvc.NewConnect(nil), policy))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	msg, err := proto.Marshal(&greetv1.GreetRequest{Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 5+len(msg))
	binary.BigEndian.PutUint32(frame[1:5], uint32(len(msg)))
	copy(frame[5:], msg)
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/greet.v1.GreetService/Greet", strings.NewReader(base64.StdEncoding.EncodeToString(frame)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc-web-text")
	req.Header.Set("Origin", origin)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, body %q", res.StatusCode, body)
	}
	if got := res.Header.Get("Content-Type"); got != "application/grpc-web-text+proto" {
		t.Errorf("Content-Type = %q, want application/grpc-web-text+proto", got)
	}
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != origin {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, origin)
	}
	// The body is base64 chunks, each padded: decode them one by one.
	var raw []byte
	for s := string(body); s != ""; {
		n := strings.Index(s, "=")
		end := len(s)
		if n >= 0 {
			end = n
			for end < len(s) && s[end] == '=' {
				end++
			}
		}
		chunk, err := base64.StdEncoding.DecodeString(s[:end])
		if err != nil {
			t.Fatalf("response is not base64: %v (%q)", err, body)
		}
		raw = append(raw, chunk...)
		s = s[end:]
	}
	if len(raw) < 5 {
		t.Fatalf("decoded response too short: %q", raw)
	}
	n := binary.BigEndian.Uint32(raw[1:5])
	if raw[0] != 0 || int(n) > len(raw)-5 {
		t.Fatalf("first frame: flag %#x, length %d of %d bytes", raw[0], n, len(raw))
	}
	var got greetv1.GreetResponse
	if err := proto.Unmarshal(raw[5:5+n], &got); err != nil {
		t.Fatal(err)
	}
	if got.GetGreeting() != "Hello, Ada!" {
		t.Errorf("greeting = %q, want %q", got.GetGreeting(), "Hello, Ada!")
	}
	if trailer := string(raw[5+n:]); !strings.Contains(trailer, "grpc-status: 0") {
		t.Errorf("trailer frame %q has no grpc-status: 0", trailer)
	}
}

// TestGeneratedHandlerMessageSizeUnbounded is the regression test of the
// generated constructor building a connect-go handler without a message
// size limit: a gzip body expanding far past any sane size was read whole.
// It now passes connect.WithReadMaxBytes(policy.MaxMessageSize()), and an
// option of the caller's still replaces that bound.
func TestGeneratedHandlerMessageSizeUnbounded(t *testing.T) {
	t.Parallel()
	const limit = 64 << 10
	policy, err := interceptor.New(interceptor.WithAllowedOrigins("https://app.example.com"), interceptor.WithMaxMessageSize(limit))
	if err != nil {
		t.Fatal(err)
	}
	msg, err := proto.Marshal(&greetv1.GreetRequest{Name: strings.Repeat("z", 4<<20)})
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(msg)
	_ = zw.Close()
	call := func(opts ...connect.HandlerOption) string {
		mux := http.NewServeMux()
		mux.Handle(greetv1corsgate.NewGreetServiceHandler(greetsvc.NewConnect(nil), policy, opts...))
		srv := httptest.NewServer(mux)
		defer srv.Close()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/greet.v1.GreetService/Greet", bytes.NewReader(gz.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/proto")
		req.Header.Set("Content-Encoding", "gzip")
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		_, _ = io.Copy(io.Discard, res.Body)
		return res.Status
	}
	if got := call(); got != "429 Too Many Requests" {
		t.Errorf("gzip body expanding to 4 MiB, limit 64 KiB: %s, want 429 (resource_exhausted)", got)
	}
	if got := call(connect.WithReadMaxBytes(8 << 20)); got != "200 OK" {
		t.Errorf("with the caller's WithReadMaxBytes(8 MiB): %s, want 200", got)
	}
}
