package interceptor

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

const textOrigin = "https://app.example.com"

// textFrame is one frame of a gRPC-Web response.
type textFrame struct {
	flag byte
	data []byte
}

// textResult is what a hand-rolled gRPC-Web text client got.
type textResult struct {
	status   int
	header   http.Header
	messages [][]byte    // data frames
	trailer  http.Header // the 0x80 frame, or the header of a trailers-only answer
	raw      string      // the body as received
}

// grpcStatus is the call's grpc-status: from the trailer frame, else the
// headers (trailers-only).
func (r textResult) grpcStatus() string {
	if v := r.trailer.Get("grpc-status"); v != "" {
		return v
	}
	return r.header.Get("Grpc-Status")
}

// encodeFrame is a gRPC-Web data frame holding msg.
func encodeFrame(tb testing.TB, msg proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(msg)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	return append(out, b...)
}

// decodeText decodes a body of concatenated, separately padded base64
// chunks, as grpc-web JS does.
func decodeText(tb testing.TB, s string) []byte {
	tb.Helper()
	var out []byte
	for s != "" {
		end := len(s)
		if i := strings.IndexByte(s, '='); i >= 0 {
			end = (i/4 + 1) * 4
			if end > len(s) {
				tb.Fatalf("base64 chunk cut short: %q", s)
			}
		}
		b, err := base64.StdEncoding.DecodeString(s[:end])
		if err != nil {
			tb.Fatalf("response body %q is not base64: %v", s, err)
		}
		out = append(out, b...)
		s = s[end:]
	}
	return out
}

// splitFrames splits a decoded gRPC-Web body into frames.
func splitFrames(tb testing.TB, b []byte) []textFrame {
	tb.Helper()
	var frames []textFrame
	for len(b) > 0 {
		if len(b) < 5 {
			tb.Fatalf("body ends inside a frame prefix: %x", b)
		}
		n := int(binary.BigEndian.Uint32(b[1:5]))
		if len(b) < 5+n {
			tb.Fatalf("body ends inside a frame of %d bytes: %x", n, b)
		}
		frames = append(frames, textFrame{flag: b[0], data: b[5 : 5+n]})
		b = b[5+n:]
	}
	return frames
}

// parseTrailer reads the "name: value\r\n" lines of a trailer frame.
func parseTrailer(tb testing.TB, b []byte) http.Header {
	tb.Helper()
	h := http.Header{}
	for _, line := range strings.Split(string(b), "\r\n") {
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			tb.Fatalf("trailer line %q has no colon", line)
		}
		if name != strings.ToLower(name) {
			tb.Errorf("trailer name %q is not lowercase", name)
		}
		h.Add(textproto.TrimString(name), textproto.TrimString(value))
	}
	return h
}

// callText makes a gRPC-Web text call as the grpc-web JS client does (its
// headers, the body in base64) and decodes the answer.
func callText(tb testing.TB, baseURL, procedure, contentType, body string) textResult {
	tb.Helper()
	req, err := http.NewRequestWithContext(tb.Context(), http.MethodPost, baseURL+procedure, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", "application/grpc-web-text")
	req.Header.Set("X-Grpc-Web", "1")
	req.Header.Set("X-User-Agent", "grpc-web-javascript/0.1")
	req.Header.Set("Origin", textOrigin)
	req.Header.Set("X-Request-Id", "text-1")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	r := textResult{status: res.StatusCode, header: res.Header, trailer: http.Header{}, raw: string(raw)}
	if res.StatusCode != http.StatusOK {
		return r
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/grpc-web-text+proto" {
		tb.Fatalf("response Content-Type = %q, want application/grpc-web-text+proto", ct)
	}
	frames := splitFrames(tb, decodeText(tb, string(raw)))
	for i, f := range frames {
		switch {
		case f.flag&0x80 != 0:
			if i != len(frames)-1 {
				tb.Fatalf("trailer frame %d of %d is not the last", i, len(frames))
			}
			r.trailer = parseTrailer(tb, f.data)
		case f.flag == 0:
			r.messages = append(r.messages, f.data)
		default:
			tb.Fatalf("frame %d has flag %#x", i, f.flag)
		}
	}
	return r
}

func newTextServer(tb testing.TB) *greetServer {
	tb.Helper()
	p, err := New(WithAllowedOrigins(textOrigin))
	if err != nil {
		tb.Fatal(err)
	}
	return startGreet(tb, p, nil)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestGRPCWebText: connect-go, which serves binary gRPC-Web only, answers
// the grpc-web JS client's text mode through the policy, with the CORS
// headers the binary mode gets.
func TestGRPCWebText(t *testing.T) {
	t.Parallel()
	gs := newTextServer(t)
	greet := encodeFrame(t, &greetv1.GreetRequest{Name: "Ada"})
	for _, ct := range []string{"application/grpc-web-text", "application/grpc-web-text+proto"} {
		t.Run(ct, func(t *testing.T) {
			t.Parallel()
			r := callText(t, gs.URL, "/greet.v1.GreetService/Greet", ct, b64(greet))
			if r.status != http.StatusOK || r.grpcStatus() != "0" {
				t.Fatalf("status %d, grpc-status %q, body %q", r.status, r.grpcStatus(), r.raw)
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != textOrigin {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, textOrigin)
			}
			if aceh := strings.ToLower(r.header.Get("Access-Control-Expose-Headers")); !strings.Contains(aceh, "x-greet-version") || !strings.Contains(aceh, "grpc-status") {
				t.Errorf("Access-Control-Expose-Headers = %q, want x-greet-version and grpc-status among them", aceh)
			}
			if got := r.header.Get("X-Greet-Version"); got != "1" {
				t.Errorf("x-greet-version = %q, want 1", got)
			}
			if got := r.trailer.Get("x-greet-trailer"); got != "greeted" {
				t.Errorf("trailer x-greet-trailer = %q, want greeted (trailer %v)", got, r.trailer)
			}
			if len(r.messages) != 1 {
				t.Fatalf("got %d messages, want 1", len(r.messages))
			}
			var res greetv1.GreetResponse
			if err := proto.Unmarshal(r.messages[0], &res); err != nil {
				t.Fatal(err)
			}
			if res.GetGreeting() != "Hello, Ada!" {
				t.Errorf("greeting = %q, want %q", res.GetGreeting(), "Hello, Ada!")
			}
		})
	}
	t.Run("reaches the service as binary gRPC-Web", func(t *testing.T) {
		t.Parallel()
		gs := newTextServer(t)
		callText(t, gs.URL, "/greet.v1.GreetService/Greet", "application/grpc-web-text", b64(greet))
		calls := gs.Calls()
		if len(calls) != 1 {
			t.Fatalf("the service saw %d calls, want 1", len(calls))
		}
		h := calls[0].Header
		if got := h.Get("Content-Type"); got != "application/grpc-web+proto" {
			t.Errorf("the service saw Content-Type %q, want application/grpc-web+proto", got)
		}
		if got := h.Get("Accept"); got != "application/grpc-web" {
			t.Errorf("the service saw Accept %q, want application/grpc-web", got)
		}
		if got := h.Get("X-Request-Id"); got != "text-1" {
			t.Errorf("the service saw x-request-id %q, want text-1", got)
		}
	})
	t.Run("request in separately padded chunks", func(t *testing.T) {
		t.Parallel()
		body := b64(greet[:1]) + b64(greet[1:5]) + "\r\n" + b64(greet[5:])
		r := callText(t, gs.URL, "/greet.v1.GreetService/Greet", "application/grpc-web-text", body)
		if r.grpcStatus() != "0" || len(r.messages) != 1 {
			t.Fatalf("grpc-status %q, %d messages; body %q", r.grpcStatus(), len(r.messages), r.raw)
		}
	})
}

// TestGRPCWebTextError: an error reaches a text client with its code,
// message and details.
func TestGRPCWebTextError(t *testing.T) {
	t.Parallel()
	gs := newTextServer(t)
	r := callText(t, gs.URL, "/greet.v1.GreetService/Greet", "application/grpc-web-text", b64(encodeFrame(t, &greetv1.GreetRequest{})))
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %q", r.status, r.raw)
	}
	if got := r.grpcStatus(); got != "3" {
		t.Fatalf("grpc-status = %q, want 3 (trailer %v, header %v)", got, r.trailer, r.header)
	}
	if got := r.header.Get("Access-Control-Allow-Origin"); got != textOrigin {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, textOrigin)
	}
	msg := r.trailer.Get("grpc-message")
	if msg == "" {
		msg = r.header.Get("Grpc-Message")
	}
	if m, _ := url.PathUnescape(msg); m != "name is required" {
		t.Errorf("grpc-message = %q, want %q", msg, "name is required")
	}
	bin := r.trailer.Get("grpc-status-details-bin")
	if bin == "" {
		bin = r.header.Get("Grpc-Status-Details-Bin")
	}
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(bin, "="))
	if err != nil {
		t.Fatalf("grpc-status-details-bin %q: %v", bin, err)
	}
	var st spb.Status
	if err := proto.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	if len(st.GetDetails()) != 1 {
		t.Fatalf("got %d details, want 1: %v", len(st.GetDetails()), &st)
	}
	var d greetv1.GreetErrorDetail
	if err := st.GetDetails()[0].UnmarshalTo(&d); err != nil {
		t.Fatal(err)
	}
	if d.GetField() != "name" {
		t.Errorf("detail field = %q, want name", d.GetField())
	}
}

// TestGRPCWebTextStream: a server stream reaches a text client whole, each
// message in its own padded chunk as soon as the handler flushes.
func TestGRPCWebTextStream(t *testing.T) {
	t.Parallel()
	gs := newTextServer(t)
	t.Run("all messages", func(t *testing.T) {
		t.Parallel()
		r := callText(t, gs.URL, "/greet.v1.GreetService/GreetStream", "application/grpc-web-text", b64(encodeFrame(t, &greetv1.GreetStreamRequest{Name: "Ada", Count: 5})))
		if r.grpcStatus() != "0" {
			t.Fatalf("grpc-status %q; body %q", r.grpcStatus(), r.raw)
		}
		if len(r.messages) != 5 {
			t.Fatalf("got %d messages, want 5", len(r.messages))
		}
		for i, m := range r.messages {
			var res greetv1.GreetStreamResponse
			if err := proto.Unmarshal(m, &res); err != nil {
				t.Fatal(err)
			}
			if res.GetIndex() != int32(i+1) || res.GetGreeting() != "Hello, Ada!" {
				t.Errorf("message %d = %v", i, &res)
			}
		}
	})
	t.Run("first message before the stream ends", func(t *testing.T) {
		t.Parallel()
		body := b64(encodeFrame(t, &greetv1.GreetStreamRequest{Name: "Ada", Count: 2, IntervalMs: 1000}))
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, gs.URL+"/greet.v1.GreetService/GreetStream", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/grpc-web-text")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		// Read until the base64 received so far holds a whole data frame;
		// the stream must not have ended by then.
		var got bytes.Buffer
		buf := make([]byte, 512)
		for {
			n, err := res.Body.Read(buf)
			got.Write(buf[:n])
			if s := got.String(); len(s)%4 == 0 && len(s) > 0 {
				if b, derr := base64.StdEncoding.DecodeString(s); derr == nil && len(b) >= 5 && len(b) >= 5+int(binary.BigEndian.Uint32(b[1:5])) {
					break
				}
			}
			if err != nil {
				t.Fatalf("the body ended (%v) before a whole first message arrived: %q", err, got.String())
			}
		}
		rest, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		frames := splitFrames(t, decodeText(t, got.String()+string(rest)))
		if len(frames) != 3 || frames[2].flag != 0x80 {
			t.Fatalf("got %d frames, want 2 messages and the trailer frame", len(frames))
		}
	})
}

// TestGRPCWebTextInvalid: a body that is not base64 ends the call with
// INVALID_ARGUMENT, in text mode.
func TestGRPCWebTextInvalid(t *testing.T) {
	t.Parallel()
	gs := newTextServer(t)
	valid := b64(encodeFrame(t, &greetv1.GreetRequest{Name: "Ada"}))
	tests := []struct {
		name string
		body string
	}{
		{name: "not base64", body: "!!!!"},
		{name: "base64url alphabet", body: strings.Repeat("-_-_", 4)},
		{name: "cut mid-group", body: valid[:9]},
		{name: "padding mid-group", body: "A=AA" + valid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := callText(t, gs.URL, "/greet.v1.GreetService/Greet", "application/grpc-web-text", tt.body)
			if r.status != http.StatusOK {
				t.Fatalf("status %d, want 200 with a gRPC-Web error; body %q", r.status, r.raw)
			}
			if got := r.grpcStatus(); got != "3" {
				t.Fatalf("grpc-status = %q, want 3 (trailer %v, header %v)", got, r.trailer, r.header)
			}
			if len(r.messages) != 0 {
				t.Errorf("got %d messages, want none", len(r.messages))
			}
			if got := r.header.Get("Access-Control-Allow-Origin"); got != textOrigin {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, textOrigin)
			}
		})
	}
}

// TestHandlerLeavesGRPCWebText: Policy.Handler, which the gateway and the
// improbable adapter use (they serve text mode themselves), passes a text
// request on as it came; only the drop-in entry points translate.
func TestHandlerLeavesGRPCWebText(t *testing.T) {
	t.Parallel()
	p, err := New(WithAllowedOrigins(textOrigin))
	if err != nil {
		t.Fatal(err)
	}
	table := MustNewTable(Service{Name: "greet.v1.GreetService", Procedures: []Procedure{{Name: "Greet", Methods: []string{http.MethodPost}}}})
	body := b64(encodeFrame(t, &greetv1.GreetRequest{Name: "Ada"}))
	var gotCT, gotBody string
	h := p.Handler(table, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotCT, gotBody = r.Header.Get("Content-Type"), string(b)
		w.Header().Set("Content-Type", "application/grpc-web-text")
		_, _ = w.Write([]byte("AAAA"))
	}))
	req := httptest.NewRequest(http.MethodPost, "/greet.v1.GreetService/Greet", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/grpc-web-text")
	req.Header.Set("Origin", textOrigin)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if gotCT != "application/grpc-web-text" || gotBody != body {
		t.Errorf("next saw Content-Type %q and body %q, want the request as sent", gotCT, gotBody)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/grpc-web-text" || rec.Body.String() != "AAAA" {
		t.Errorf("response Content-Type %q, body %q: want next's, untouched", ct, rec.Body.String())
	}
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != textOrigin {
		t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, textOrigin)
	}
}

// TestGRPCWebTextWriter: the text writer keeps http.ResponseController
// working (Flush pads the held-back bytes and flushes; Unwrap reaches the
// server's writer), and a response that is not gRPC-Web passes unchanged.
func TestGRPCWebTextWriter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
		writes      []string // a "" entry is a Flush
		wantCT      string
		wantBody    string
		wantFlushed bool
	}{
		{
			name:        "gRPC-Web",
			contentType: "application/grpc-web+proto",
			writes:      []string{"a", "bcd", "", "ef"},
			wantCT:      "application/grpc-web-text+proto",
			wantBody:    b64([]byte("abcd")) + b64([]byte("ef")),
			wantFlushed: true,
		},
		{
			name:        "not gRPC-Web",
			contentType: "text/plain; charset=utf-8",
			writes:      []string{"404 page not found", ""},
			wantCT:      "text/plain; charset=utf-8",
			wantBody:    "404 page not found",
			wantFlushed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := withGRPCWebText(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, ok := w.(interface{ Unwrap() http.ResponseWriter }); !ok {
					t.Error("the writer has no Unwrap")
				}
				w.Header().Set("Content-Type", tt.contentType)
				rc := http.NewResponseController(w)
				for _, s := range tt.writes {
					if s == "" {
						if err := rc.Flush(); err != nil {
							t.Errorf("Flush: %v", err)
						}
						continue
					}
					_, _ = w.Write([]byte(s))
				}
			}), DefaultMaxMessageSize)
			req := httptest.NewRequest(http.MethodPost, "/greet.v1.GreetService/Greet", strings.NewReader(""))
			req.Header.Set("Content-Type", "application/grpc-web-text+proto")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if ct := rec.Header().Get("Content-Type"); ct != tt.wantCT {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantCT)
			}
			if rec.Body.String() != tt.wantBody {
				t.Errorf("body = %q, want %q", rec.Body.String(), tt.wantBody)
			}
			if rec.Flushed != tt.wantFlushed {
				t.Errorf("flushed = %v, want %v", rec.Flushed, tt.wantFlushed)
			}
		})
	}
}

// TestGRPCWebTextBodyUnbounded is the regression test of the drop-in
// translation reading a gRPC-Web text body of any length: the raw body is
// now bounded by twice the base64 length of one largest message
// (WithMaxMessageSize), whitespace included, and a longer one reads as
// RESOURCE_EXHAUSTED.
func TestGRPCWebTextBodyUnbounded(t *testing.T) {
	t.Parallel()
	const limit = 1024
	tests := []struct {
		name    string
		body    string
		wantErr bool
	}{
		{name: "base64 over the limit", body: b64(make([]byte, 1<<20)), wantErr: true},
		{name: "whitespace over the limit", body: strings.Repeat(" ", 1<<20), wantErr: true},
		{name: "one message at the limit", body: b64(append([]byte{0, 0, 0, 4, 0}, make([]byte, limit)...))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var n int64
			var readErr error
			h := withGRPCWebText(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, readErr = io.Copy(io.Discard, r.Body)
			}), limit)
			req := httptest.NewRequest(http.MethodPost, "/greet.v1.GreetService/Greet", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", ctGRPCWebTextPrefix)
			h.ServeHTTP(httptest.NewRecorder(), req)
			if !tt.wantErr {
				if readErr != nil {
					t.Errorf("read %d bytes, error %v; want the whole body", n, readErr)
				}
				return
			}
			if connect.CodeOf(readErr) != connect.CodeResourceExhausted {
				t.Errorf("read %d decoded bytes, error %v; want resource_exhausted", n, readErr)
			}
			if n > 2*limit {
				t.Errorf("read %d decoded bytes of a body bounded to one message of %d", n, limit)
			}
		})
	}
}
