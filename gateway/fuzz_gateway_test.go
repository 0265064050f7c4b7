package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// hardFuzzContentTypes are the Content-Types FuzzGatewayRequest picks from.
var hardFuzzContentTypes = []string{
	"application/grpc-web+proto", "application/grpc-web-text", "application/grpc-web+json",
	"application/proto", "application/json", "application/connect+proto", "application/connect+json",
	"application/grpc-web", "text/plain",
}

var hardFuzzProcedures = []string{"Greet", "SetGreeting", "GreetStream", "GreetMany", "Chat", "ResetGreetings", "Nope"}

// FuzzGatewayRequest sends arbitrary bodies, in every protocol the gateway
// accepts, to every kind of procedure of a real grpc-go backend, through
// the gateway's handler, and checks the answer is well-formed in the
// client's protocol: a gRPC-Web body that ends with exactly one trailers
// frame carrying a numeric grpc-status (or a trailers-only error: an empty
// body and a non-zero grpc-status header), a Connect stream that ends with an
// end-stream message, a Connect unary error as JSON with a code, or a bare
// HTTP refusal (405, 415). It must never panic nor hang.
func FuzzGatewayRequest(f *testing.F) {
	msg := mustMarshal(f, &greetv1.GreetRequest{Name: "fuzz"})
	frame := func(flags byte, p []byte) []byte {
		out := []byte{flags, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(out[1:], uint32(len(p)))
		return append(out, p...)
	}
	f.Add(uint8(0), uint8(0), frame(0, msg), "")
	f.Add(uint8(1), uint8(0), []byte(base64.StdEncoding.EncodeToString(frame(0, msg))), "1S")
	f.Add(uint8(2), uint8(2), frame(0, []byte(`{"name":"j","count":2}`)), "")
	f.Add(uint8(3), uint8(0), msg, "")
	f.Add(uint8(4), uint8(1), []byte(`{"greeting":"x"}`), "soon")
	f.Add(uint8(5), uint8(3), append(frame(0, msg), frame(0, msg)...), "")
	f.Add(uint8(6), uint8(4), frame(0, []byte(`{"text":"hi"}`)), "")
	f.Add(uint8(0), uint8(0), []byte{0, 0xff, 0xff, 0xff, 0xff}, "")
	f.Add(uint8(0), uint8(0), frame(0x80, []byte("grpc-status: 0\r\n")), "")
	f.Add(uint8(0), uint8(0), frame(1, []byte("not gzip")), "")

	var arr hardArrivals
	backend := startBackend(f, nil, arr.option())
	g, err := gateway.New(gateway.Config{
		Backend:        backend,
		Files:          hardGreetFiles(f),
		MaxMessageSize: 1 << 10,
		Logger:         hardDiscardLogger(),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = g.Close() })

	f.Fuzz(func(t *testing.T, ctIdx, procIdx uint8, body []byte, timeout string) {
		ct := hardFuzzContentTypes[int(ctIdx)%len(hardFuzzContentTypes)]
		path := hardGreetPrefix + hardFuzzProcedures[int(procIdx)%len(hardFuzzProcedures)]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r := httptest.NewRequestWithContext(ctx, http.MethodPost, path, bytes.NewReader(body))
		r.Header.Set("Content-Type", ct)
		if timeout != "" && !strings.ContainsAny(timeout, "\r\n\x00") {
			r.Header.Set("Grpc-Timeout", timeout)
			r.Header.Set("Connect-Timeout-Ms", timeout)
		}
		w := httptest.NewRecorder()
		g.ServeHTTP(w, r)
		if ctx.Err() != nil {
			t.Fatalf("%s %s: no answer within 10s", ct, path)
		}
		res := w.Result()
		out := w.Body.Bytes()
		if res.StatusCode == http.StatusUnsupportedMediaType || res.StatusCode == http.StatusMethodNotAllowed {
			return
		}
		switch {
		case strings.HasPrefix(ct, "application/grpc-web"):
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%s %s: HTTP %d", ct, path, res.StatusCode)
			}
			if strings.HasPrefix(ct, "application/grpc-web-text") {
				dec, err := hardDecodeText(string(out))
				if err != nil {
					t.Fatalf("%s %s: response is not base64: %v", ct, path, err)
				}
				out = dec
			}
			if len(out) == 0 {
				// Trailers-only: the error's status is in the headers.
				if code, err := strconv.Atoi(res.Header.Get("Grpc-Status")); err != nil || code == 0 {
					t.Fatalf("%s %s: empty body with grpc-status %q, want a trailers-only error", ct, path, res.Header.Get("Grpc-Status"))
				}
				return
			}
			hardCheckFrames(t, out, 0x80, func(p []byte) {
				tr := string(p)
				code, ok := strings.CutPrefix(tr, "grpc-status: ")
				if i := strings.Index(tr, "grpc-status: "); i >= 0 {
					code, ok = tr[i+len("grpc-status: "):], true
				}
				code, _, _ = strings.Cut(code, "\r\n")
				if _, err := strconv.Atoi(code); !ok || err != nil {
					t.Fatalf("%s %s: trailers %q without a numeric grpc-status", ct, path, tr)
				}
			})
		case strings.HasPrefix(ct, "application/connect+"):
			if res.StatusCode == http.StatusNotFound {
				return // unknown procedure: a Connect unary-style 404
			}
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%s %s: HTTP %d", ct, path, res.StatusCode)
			}
			hardCheckFrames(t, out, 0x02, func(p []byte) {
				if !json.Valid(p) {
					t.Fatalf("%s %s: end-stream message %q is not JSON", ct, path, p)
				}
			})
		default: // Connect unary
			if res.StatusCode == http.StatusOK {
				return
			}
			var wire struct {
				Code string `json:"code"`
			}
			if err := json.Unmarshal(out, &wire); err != nil || wire.Code == "" {
				t.Fatalf("%s %s: HTTP %d with body %q, want a Connect error", ct, path, res.StatusCode, out)
			}
		}
	})
}

// hardCheckFrames checks that b is a sequence of frames ending with exactly one
// frame flagged last, which check inspects.
func hardCheckFrames(tb testing.TB, b []byte, last byte, check func([]byte)) {
	tb.Helper()
	var frames [][]byte
	var flags []byte
	for len(b) > 0 {
		if len(b) < 5 {
			tb.Fatalf("truncated frame header %x", b)
		}
		n := binary.BigEndian.Uint32(b[1:5])
		if uint64(len(b)-5) < uint64(n) {
			tb.Fatalf("truncated frame: %d of %d bytes", len(b)-5, n)
		}
		flags = append(flags, b[0])
		frames = append(frames, b[5:5+n])
		b = b[5+n:]
	}
	if len(frames) == 0 || flags[len(flags)-1]&last == 0 {
		tb.Fatalf("%d frames (flags %x), want a final frame flagged %#x", len(frames), flags, last)
	}
	for _, fl := range flags[:len(flags)-1] {
		if fl&last != 0 {
			tb.Fatalf("a frame flagged %#x before the last one (flags %x)", last, flags)
		}
	}
	check(frames[len(frames)-1])
}

// hardDecodeText decodes a gRPC-Web text body, each padded chunk on its own.
func hardDecodeText(s string) ([]byte, error) {
	var out []byte
	for len(s) > 0 {
		end := len(s)
		if i := strings.IndexByte(s, '='); i >= 0 {
			end = (i/4 + 1) * 4
			if end > len(s) {
				end = len(s)
			}
		}
		b, err := base64.StdEncoding.DecodeString(s[:end])
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
		s = s[end:]
	}
	return out, nil
}
