package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// frame is one gRPC-Web frame of a response.
type frame struct {
	flags   byte
	payload []byte
}

func encodeFrame(flags byte, payload []byte) []byte {
	out := make([]byte, 5, 5+len(payload))
	out[0] = flags
	binary.BigEndian.PutUint32(out[1:], uint32(len(payload)))
	return append(out, payload...)
}

func parseFrames(tb testing.TB, b []byte) []frame {
	tb.Helper()
	var out []frame
	for len(b) > 0 {
		if len(b) < 5 {
			tb.Fatalf("truncated frame header: %x", b)
		}
		n := binary.BigEndian.Uint32(b[1:5])
		if uint32(len(b)-5) < n {
			tb.Fatalf("truncated frame: want %d bytes, have %d", n, len(b)-5)
		}
		out = append(out, frame{flags: b[0], payload: b[5 : 5+n]})
		b = b[5+n:]
	}
	return out
}

// decodeTextBody decodes a gRPC-Web text body the way grpc-web's JS client
// does: 4-character groups, each padded chunk on its own.
func decodeTextBody(tb testing.TB, s string) []byte {
	tb.Helper()
	var out []byte
	for len(s) > 0 {
		end := len(s)
		if i := strings.IndexByte(s, '='); i >= 0 {
			end = (i/4 + 1) * 4
		}
		b, err := base64.StdEncoding.DecodeString(s[:end])
		if err != nil {
			tb.Fatalf("base64 %q: %v", s[:end], err)
		}
		out = append(out, b...)
		s = s[end:]
	}
	return out
}

// trailerLines parses a trailers frame, checking that names are lowercase.
func trailerLines(tb testing.TB, payload []byte) map[string]string {
	tb.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimRight(string(payload), "\r\n"), "\r\n") {
		name, value, ok := strings.Cut(line, ": ")
		if !ok {
			tb.Fatalf("bad trailer line %q", line)
		}
		if name != strings.ToLower(name) {
			tb.Errorf("trailer name %q is not lowercase", name)
		}
		out[name] = value
	}
	return out
}

// TestGRPCWebText speaks gRPC-Web text (the grpc-web JS default) by hand:
// a base64 request in two padded chunks, a base64 response.
func TestGRPCWebText(t *testing.T) {
	t.Parallel()
	backend := startBackend(t, nil)
	g, gwURL := startGateway(t, backend)
	waitReady(t, g)

	tests := []struct {
		name        string
		path        string
		msg         proto.Message
		wantFrames  int
		wantStatus  string
		wantTrailer string
	}{
		{name: "unary", path: "/greet.v1.GreetService/Greet", msg: &greetv1.GreetRequest{Name: "Ada"}, wantFrames: 1, wantStatus: "0", wantTrailer: "x-greet-trailer"},
		{name: "server stream", path: "/greet.v1.GreetService/GreetStream", msg: &greetv1.GreetStreamRequest{Name: "Bo", Count: 4}, wantFrames: 4, wantStatus: "0"},
		{name: "error", path: "/greet.v1.GreetService/Greet", msg: &greetv1.GreetRequest{}, wantFrames: 0, wantStatus: "3", wantTrailer: "grpc-status-details-bin"},
		// A gateway-made error without metadata: trailers-only.
		{name: "unknown", path: "/greet.v1.GreetService/Nope", msg: &greetv1.GreetRequest{}, wantFrames: -1, wantStatus: "12"},
	}
	for _, tt := range tests {
		for _, h2 := range []bool{false, true} {
			name := tt.name + map[bool]string{false: "/h1", true: "/h2c"}[h2]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				data, err := proto.Marshal(tt.msg)
				if err != nil {
					t.Fatal(err)
				}
				raw := encodeFrame(0, data)
				// Two chunks, each padded on its own, as a streaming client sends.
				body := base64.StdEncoding.EncodeToString(raw[:4]) + base64.StdEncoding.EncodeToString(raw[4:])
				req, err := http.NewRequest(http.MethodPost, gwURL+tt.path, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/grpc-web-text")
				req.Header.Set("Accept", "application/grpc-web-text")
				req.Header.Set("X-Grpc-Web", "1")
				res, err := httpClient(t, h2).Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Fatalf("status %d", res.StatusCode)
				}
				if ct := res.Header.Get("Content-Type"); ct != "application/grpc-web-text" {
					t.Errorf("Content-Type = %q", ct)
				}
				frames := parseFrames(t, decodeTextBody(t, string(readAll(t, res.Body))))
				if tt.wantFrames < 0 {
					if len(frames) != 0 || res.Header.Get("Grpc-Status") != tt.wantStatus {
						t.Errorf("%d frames, grpc-status header %q; want trailers-only with %s", len(frames), res.Header.Get("Grpc-Status"), tt.wantStatus)
					}
					return
				}
				if len(frames) != tt.wantFrames+1 {
					t.Fatalf("got %d frames, want %d messages and trailers", len(frames), tt.wantFrames)
				}
				for i, f := range frames[:tt.wantFrames] {
					if f.flags != 0 {
						t.Errorf("frame %d flags %#x", i, f.flags)
					}
				}
				last := frames[len(frames)-1]
				if last.flags != 0x80 {
					t.Fatalf("last frame flags %#x, want 0x80", last.flags)
				}
				trailers := trailerLines(t, last.payload)
				if trailers["grpc-status"] != tt.wantStatus {
					t.Errorf("grpc-status = %q, want %q (%v)", trailers["grpc-status"], tt.wantStatus, trailers)
				}
				if tt.wantTrailer != "" && trailers[tt.wantTrailer] == "" {
					t.Errorf("no %s trailer in %v", tt.wantTrailer, trailers)
				}
				wantACAO := testOrigin
				if tt.name == "unknown" {
					wantACAO = ""
				}
				if got := res.Header.Get("Access-Control-Allow-Origin"); got != wantACAO {
					t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, wantACAO)
				}
			})
		}
	}
}

// TestConnectGet calls a NO_SIDE_EFFECTS method with Connect GET, through
// connect-go and by hand, and checks that other methods refuse GET.
func TestConnectGet(t *testing.T) {
	t.Parallel()
	backend := startBackend(t, nil)
	g, gwURL := startGateway(t, backend)
	waitReady(t, g)

	t.Run("connect-go", func(t *testing.T) {
		t.Parallel()
		var sawGet bool
		hc := httpClient(t, false)
		hc.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sawGet = sawGet || r.Method == http.MethodGet
			return originTransport{http.DefaultTransport}.RoundTrip(r)
		})
		client := connect.NewClient[greetv1.GreetRequest, greetv1.GreetResponse](hc, gwURL+"/greet.v1.GreetService/Greet",
			connect.WithHTTPGet(), connect.WithIdempotency(connect.IdempotencyNoSideEffects))
		res, err := client.CallUnary(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "Gi"}))
		if err != nil {
			t.Fatal(err)
		}
		if !sawGet {
			t.Error("connect-go did not use GET")
		}
		if res.Msg.GetGreeting() != "Hello, Gi!" || res.Header().Get("Access-Control-Allow-Origin") != testOrigin {
			t.Errorf("res = %v %v", res.Msg, res.Header())
		}
		if got := res.Trailer().Get("X-Greet-Trailer"); got != "greeted" {
			t.Errorf("trailer = %q", got)
		}
	})

	tests := []struct {
		name       string
		path       string
		query      url.Values
		wantStatus int
		wantBody   string
	}{
		{name: "json", path: "/greet.v1.GreetService/Greet", query: url.Values{"encoding": {"json"}, "message": {`{"name":"Jo"}`}, "connect": {"v1"}}, wantStatus: 200, wantBody: `"Hello, Jo!"`},
		{name: "proto base64", path: "/greet.v1.GreetService/Greet", query: url.Values{"encoding": {"proto"}, "base64": {"1"}, "message": {base64.RawURLEncoding.EncodeToString(mustMarshal(t, &greetv1.GreetRequest{Name: "Pb"}))}}, wantStatus: 200, wantBody: "Hello, Pb!"},
		{name: "error", path: "/greet.v1.GreetService/Greet", query: url.Values{"encoding": {"json"}, "message": {`{}`}}, wantStatus: 400, wantBody: `"invalid_argument"`},
		{name: "side effects", path: "/greet.v1.GreetService/SetGreeting", query: url.Values{"encoding": {"json"}, "message": {`{"greeting":"Yo"}`}}, wantStatus: 405},
		{name: "unknown encoding", path: "/greet.v1.GreetService/Greet", query: url.Values{"encoding": {"xml"}}, wantStatus: 415},
		{name: "unknown procedure", path: "/greet.v1.GreetService/Nope", query: url.Values{"encoding": {"json"}}, wantStatus: 404, wantBody: `"unimplemented"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := httpClient(t, false).Get(gwURL + tt.path + "?" + tt.query.Encode())
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body := readAll(t, res.Body)
			if res.StatusCode != tt.wantStatus || !bytes.Contains(body, []byte(tt.wantBody)) {
				t.Errorf("got %d %q, want %d with %q", res.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func mustMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestMessageTooLarge checks the size limit in every protocol, for a unary
// request and for a later message of a client stream.
func TestMessageTooLarge(t *testing.T) {
	t.Parallel()
	backend := startBackend(t, nil)
	g, gwURL := startGateway(t, backend, func(c *gateway.Config) { c.MaxMessageSize = 1024 })
	waitReady(t, g)
	for _, k := range clientKinds() {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			client := newGreetClient(t, gwURL, k)
			ctx := context.Background()
			if _, err := client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: strings.Repeat("a", 1000)})); err != nil {
				t.Errorf("message under the limit: %v", err)
			}
			_, err := client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: strings.Repeat("a", 2000)}))
			if got := connect.CodeOf(err); got != connect.CodeResourceExhausted {
				t.Errorf("unary: code = %v (%v), want resource_exhausted", got, err)
			}
			var cerr *connect.Error
			if k.proto != "grpc" && errAs(err, &cerr) && cerr.Meta().Get("Access-Control-Allow-Origin") != testOrigin {
				t.Errorf("no CORS on the error: %v", cerr.Meta())
			}
			stream := client.GreetMany(ctx)
			_ = stream.Send(&greetv1.GreetManyRequest{Name: "small"})
			_ = stream.Send(&greetv1.GreetManyRequest{Name: strings.Repeat("b", 4000)})
			_, err = stream.CloseAndReceive()
			if got := connect.CodeOf(err); got != connect.CodeResourceExhausted {
				t.Errorf("client stream: code = %v (%v), want resource_exhausted", got, err)
			}
		})
	}
}

// TestRawGRPCWeb checks wire details connect-go hides: the response
// content type follows the request's spelling, trailers are lowercase, and
// hop-by-hop request headers do not reach the backend.
func TestRawGRPCWeb(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	backend := startBackend(t, rec)
	g, gwURL := startGateway(t, backend)
	waitReady(t, g)
	for _, ct := range []string{"application/grpc-web", "application/grpc-web+proto"} {
		t.Run(ct, func(t *testing.T) {
			t.Parallel()
			id := "raw-" + ct
			req, err := http.NewRequest(http.MethodPost, gwURL+"/greet.v1.GreetService/Greet",
				bytes.NewReader(encodeFrame(0, mustMarshal(t, &greetv1.GreetRequest{Name: "Raw"}))))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", ct)
			req.Header.Set("X-Request-Id", id)
			req.Header.Set("Connection", "keep-alive, X-Hop")
			req.Header.Set("X-Hop", "secret")
			req.Header.Set("Keep-Alive", "timeout=5")
			res, err := httpClient(t, false).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			if got := res.Header.Get("Content-Type"); got != ct {
				t.Errorf("Content-Type = %q, want %q", got, ct)
			}
			frames := parseFrames(t, readAll(t, res.Body))
			if len(frames) != 2 {
				t.Fatalf("%d frames", len(frames))
			}
			var out greetv1.GreetResponse
			if err := proto.Unmarshal(frames[0].payload, &out); err != nil || out.GetGreeting() != "Hello, Raw!" {
				t.Errorf("message %v (%v)", &out, err)
			}
			trailers := trailerLines(t, frames[1].payload)
			if trailers["grpc-status"] != "0" || trailers["x-greet-trailer"] != "greeted" {
				t.Errorf("trailers %v", trailers)
			}
			if got := res.Header.Get("X-Greet-Version"); got != "1" {
				t.Errorf("header x-greet-version = %q", got)
			}
			seen := rec.findByRequestID(t, id)
			for _, h := range []string{"x-hop", "keep-alive", "connection"} {
				if v := seen.Header.Values(h); len(v) > 0 {
					t.Errorf("backend saw %s: %v", h, v)
				}
			}
		})
	}
}

func errAs(err error, target **connect.Error) bool {
	if err == nil {
		return false
	}
	ce, ok := err.(*connect.Error) //nolint:errorlint // connect-go returns *connect.Error directly
	if ok {
		*target = ce
	}
	return ok
}
