package gateway_test

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// hardLimit is the message size limit of the bad-input tests.
const hardLimit = 1024

// hardFrameHeader is a frame header announcing size bytes.
func hardFrameHeader(flags byte, size uint32) []byte {
	h := []byte{flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[1:], size)
	return h
}

// hardBadInputEnv is a backend counting arrivals behind a gateway with a small
// message limit, one per subtest so that counts never mix.
type hardBadInputEnv struct {
	arr   *hardArrivals
	rec   *recorder
	gwURL string
}

func newHardBadInputEnv(tb testing.TB) *hardBadInputEnv {
	tb.Helper()
	e := &hardBadInputEnv{arr: &hardArrivals{}, rec: &recorder{}}
	backend := startBackend(tb, e.rec, e.arr.option())
	_, e.gwURL = startGateway(tb, backend, hardFilesOption(tb), func(c *gateway.Config) { c.MaxMessageSize = hardLimit })
	return e
}

// reached returns how many calls reached the backend's transport, after a
// valid sentinel call through the gateway has completed: the backend reads
// the headers of earlier calls before the sentinel's, so a late arrival
// cannot be missed. The sentinel itself is not counted.
func (e *hardBadInputEnv) reached(tb testing.TB) int64 {
	tb.Helper()
	before, _ := e.arr.snapshot()
	res := hardPost(tb, e.gwURL, hardGreetPrefix+"Greet", "application/grpc-web+proto",
		encodeFrame(0, mustMarshal(tb, &greetv1.GreetRequest{Name: "sentinel"})), nil)
	if n, tr := hardGRPCWebStatus(tb, res.body, false); n != 1 || tr["grpc-status"] != "0" {
		tb.Fatalf("sentinel call failed: %v", tr)
	}
	after, _ := e.arr.snapshot()
	if after <= before {
		tb.Fatalf("the sentinel call was not counted (%d, %d)", before, after)
	}
	return after - 1
}

// TestGRPCWebBadInput sends malformed gRPC-Web requests, binary
// and text, and checks that each gets a well-formed gRPC-Web error with the
// code the protocol asks for, with CORS headers, and that none of them
// reaches the backend.
func TestGRPCWebBadInput(t *testing.T) {
	t.Parallel()
	valid := mustMarshal(t, &greetv1.GreetRequest{Name: "Ok"})
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name string
		path string
		body []byte
		// wantCode is the grpc-status expected in the trailers.
		wantCode string
		// stream marks a client-streaming call, whose headers reach the
		// backend before the bad frame is seen: only the messages count.
		stream bool
	}{
		{name: "truncated header", path: "Greet", body: []byte{0, 0, 0}, wantCode: "3"},
		{name: "truncated payload", path: "Greet", body: cat(hardFrameHeader(0, 10), []byte("abcd")), wantCode: "3"},
		{name: "valid message then truncated one", path: "Greet", body: cat(encodeFrame(0, valid), hardFrameHeader(0, 50), []byte("x")), wantCode: "3"},
		{name: "length prefix 4 GiB", path: "Greet", body: hardFrameHeader(0, 0xFFFFFFFF), wantCode: "8"},
		{name: "length prefix just over the limit", path: "Greet", body: cat(hardFrameHeader(0, hardLimit+1), make([]byte, hardLimit+1)), wantCode: "8"},
		{name: "length prefix over the limit, no payload", path: "Greet", body: hardFrameHeader(0, hardLimit+1), wantCode: "8"},
		{name: "body far over the limit", path: "Greet", body: cat(encodeFrame(0, valid), make([]byte, 64<<10)), wantCode: "8"},
		{name: "client stream: length prefix over the limit", path: "GreetMany", body: cat(encodeFrame(0, valid), hardFrameHeader(0, 0x7FFFFFFF)), wantCode: "8", stream: true},
		{name: "client stream: truncated", path: "GreetMany", body: cat(encodeFrame(0, valid), hardFrameHeader(0, 9), []byte("ab")), wantCode: "3", stream: true},
	}
	for _, tt := range tests {
		for _, text := range []bool{false, true} {
			name := tt.name + map[bool]string{false: "/binary", true: "/text"}[text]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e := newHardBadInputEnv(t)
				body, ct := tt.body, "application/grpc-web+proto"
				if text {
					body, ct = []byte(base64.StdEncoding.EncodeToString(body)), "application/grpc-web-text"
				}
				res := hardPost(t, e.gwURL, hardGreetPrefix+tt.path, ct, body, nil)
				hardCheckGRPCWebError(t, res, text, tt.wantCode)
				calls := e.reached(t)
				if !tt.stream && calls != 0 {
					t.Errorf("the backend saw %d calls, want none", calls)
				}
				// The sentinel is one message; a stream may have delivered
				// the valid message before the bad frame, never more.
				if _, msgs := e.arr.snapshot(); tt.stream && msgs-1 > 1 {
					t.Errorf("the backend's handlers received %d messages, want at most the valid one", msgs-1)
				}
			})
		}
	}

	textTests := []struct {
		name     string
		body     string
		wantCode string
	}{
		{name: "not base64", body: "!!!!", wantCode: "3"},
		{name: "base64 cut mid-group", body: base64.StdEncoding.EncodeToString(encodeFrame(0, valid))[:9], wantCode: "3"},
		{name: "base64url alphabet", body: strings.Repeat("-_-_", 4), wantCode: "3"},
		{name: "NUL bytes", body: "AAAA\x00\x00\x00\x00", wantCode: "3"},
		{name: "padding in the middle", body: "AA==AA==AA=", wantCode: "3"},
	}
	for _, tt := range textTests {
		t.Run("invalid base64/"+tt.name, func(t *testing.T) {
			t.Parallel()
			e := newHardBadInputEnv(t)
			res := hardPost(t, e.gwURL, hardGreetPrefix+"Greet", "application/grpc-web-text", []byte(tt.body), nil)
			hardCheckGRPCWebError(t, res, true, tt.wantCode)
			if calls := e.reached(t); calls != 0 {
				t.Errorf("the backend saw %d calls, want none", calls)
			}
		})
	}

	t.Run("message at the limit passes", func(t *testing.T) {
		t.Parallel()
		e := newHardBadInputEnv(t)
		// SetGreeting answers with a short message; Greet would echo the
		// name and make the response too large.
		msg := mustMarshal(t, &greetv1.SetGreetingRequest{Greeting: strings.Repeat("n", hardLimit-3)})
		if len(msg) != hardLimit {
			t.Fatalf("message of %d bytes, want %d", len(msg), hardLimit)
		}
		res := hardPost(t, e.gwURL, hardGreetPrefix+"SetGreeting", "application/grpc-web+proto", encodeFrame(0, msg), nil)
		n, trailers := hardGRPCWebStatus(t, res.body, false)
		if n != 1 || trailers["grpc-status"] != "0" {
			t.Errorf("%d messages, trailers %v; want one message and status 0", n, trailers)
		}
	})

	ctTests := []string{
		"text/plain", "application/grpc-web+thrift", "application/grpc-web-text+json", "application/grpc-webby",
		"application/x-www-form-urlencoded", "", "application/connect+xml", "application/grpc-web+", "multipart/form-data",
	}
	for _, ct := range ctTests {
		t.Run("content type "+strconv.Quote(ct), func(t *testing.T) {
			t.Parallel()
			e := newHardBadInputEnv(t)
			res := hardPost(t, e.gwURL, hardGreetPrefix+"Greet", ct, encodeFrame(0, valid), nil)
			if res.status != http.StatusUnsupportedMediaType {
				t.Errorf("status %d, want 415", res.status)
			}
			if got := res.header.Get("Access-Control-Allow-Origin"); got != testOrigin {
				t.Errorf("415 without CORS headers (Access-Control-Allow-Origin %q): the page cannot read why", got)
			}
			if calls := e.reached(t); calls != 0 {
				t.Errorf("the backend saw %d calls, want none", calls)
			}
		})
	}
}

// TestGRPCWebClientTrailers sends frames a client must never send:
// a trailers frame (flag 0x80) and frames with unknown flag bits. The
// gRPC-Web spec reserves the trailers frame for responses and gRPC knows only
// the compressed bit, so the gateway must refuse them with INVALID_ARGUMENT
// instead of handing a frame the backend cannot parse to it.
func TestGRPCWebClientTrailers(t *testing.T) {
	t.Parallel()
	valid := mustMarshal(t, &greetv1.GreetRequest{Name: "Ok"})
	trailer := []byte("grpc-status: 0\r\n")
	tests := []struct {
		name string
		body []byte
	}{
		{name: "trailers frame alone", body: encodeFrame(0x80, trailer)},
		{name: "message then trailers frame", body: append(encodeFrame(0, valid), encodeFrame(0x80, trailer)...)},
		{name: "empty trailers frame", body: encodeFrame(0x80, nil)},
		{name: "unknown flag 0x40", body: encodeFrame(0x40, valid)},
		{name: "end-stream flag 0x02", body: encodeFrame(0x02, valid)},
	}
	for _, tt := range tests {
		for _, text := range []bool{false, true} {
			name := tt.name + map[bool]string{false: "/binary", true: "/text"}[text]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e := newHardBadInputEnv(t)
				body, ct := tt.body, "application/grpc-web+proto"
				if text {
					body, ct = []byte(base64.StdEncoding.EncodeToString(body)), "application/grpc-web-text"
				}
				res := hardPost(t, e.gwURL, hardGreetPrefix+"Greet", ct, body, nil)
				hardCheckGRPCWebError(t, res, text, "3")
				if calls := e.reached(t); calls != 0 {
					t.Errorf("the backend saw %d calls, want none", calls)
				}
			})
		}
		// Connect streaming requests use the same frames; a client never
		// sends the end-stream flag (0x02) or the trailers flag.
		t.Run(tt.name+"/connect stream", func(t *testing.T) {
			t.Parallel()
			e := newHardBadInputEnv(t)
			res := hardPost(t, e.gwURL, hardGreetPrefix+"GreetMany", "application/connect+proto", tt.body, nil)
			if res.status != http.StatusOK {
				t.Fatalf("HTTP status %d", res.status)
			}
			frames := parseFrames(t, res.body)
			if len(frames) != 1 || frames[0].flags != 0x02 || !bytes.Contains(frames[0].payload, []byte(`"invalid_argument"`)) {
				t.Errorf("frames %q, want one end-stream message with invalid_argument", frames)
			}
			// The handler may start (the stream's headers go first), but it
			// must never receive the bad frame as a message.
			e.reached(t)
			if _, msgs := e.arr.snapshot(); msgs-1 > 1 {
				t.Errorf("the backend's handlers received %d messages, want at most the valid one", msgs-1)
			}
		})
	}
}

// hardCheckGRPCWebError checks a gateway-made gRPC-Web error: HTTP 200, a
// gRPC-Web content type, CORS headers for the test origin, and the
// trailers-only shape: grpc-status wantCode in the headers, exposed to the
// script, and an empty body.
func hardCheckGRPCWebError(tb testing.TB, res hardResponse, text bool, wantCode string) {
	tb.Helper()
	if res.status != http.StatusOK {
		tb.Fatalf("HTTP status %d (%q), want 200 with the status in the headers", res.status, res.body)
	}
	wantCT := "application/grpc-web"
	if text {
		wantCT = "application/grpc-web-text"
	}
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, wantCT) {
		tb.Errorf("Content-Type %q, want %s", ct, wantCT)
	}
	if got := res.header.Get("Access-Control-Allow-Origin"); got != testOrigin {
		tb.Errorf("Access-Control-Allow-Origin %q, want %q", got, testOrigin)
	}
	if len(res.body) != 0 {
		tb.Errorf("body %q, want none (trailers-only)", res.body)
	}
	if got := res.header.Get("Grpc-Status"); got != wantCode {
		tb.Errorf("grpc-status %q (message %q), want %s", got, res.header.Get("Grpc-Message"), wantCode)
	}
	aceh := strings.ToLower(strings.Join(res.header.Values("Access-Control-Expose-Headers"), ","))
	for _, name := range []string{"grpc-status", "grpc-message", "grpc-status-details-bin"} {
		if !strings.Contains(aceh, name) {
			tb.Errorf("Access-Control-Expose-Headers %q does not expose %s", aceh, name)
		}
	}
}

// TestConnectBadInput sends malformed Connect requests: GET with a
// bad, oversized or missing message, unknown encodings and compressions, and
// a decompression bomb. Each must get the Connect error the protocol asks
// for, with CORS headers, and only those the backend must judge may reach
// it (never its handler).
func TestConnectBadInput(t *testing.T) {
	t.Parallel()
	valid := mustMarshal(t, &greetv1.GreetRequest{Name: "Ok"})
	b64 := base64.RawURLEncoding.EncodeToString
	var bomb bytes.Buffer
	zw := gzip.NewWriter(&bomb)
	_, _ = zw.Write([]byte(`{"name":"`))
	_, _ = zw.Write(bytes.Repeat([]byte("a"), 1<<20))
	_, _ = zw.Write([]byte(`"}`))
	_ = zw.Close()

	tests := []struct {
		name   string
		method string
		path   string
		query  url.Values
		ct     string
		header http.Header
		body   []byte
		// wantStatus is the HTTP status; wantCode the Connect code in the
		// JSON body ("" for a bare HTTP refusal).
		wantStatus int
		wantCode   string
		// mayReach allows the call to reach the backend's transport (the
		// backend alone knows its compressions and message types); its
		// handler must still not run.
		mayReach bool
		// noCORS: CORS does not allow the HTTP method for the procedure,
		// so the answer must carry no CORS headers.
		noCORS bool
	}{
		{name: "GET message not base64", method: "GET", path: "Greet", query: url.Values{"encoding": {"proto"}, "base64": {"1"}, "message": {"!!!*"}}, wantStatus: 400, wantCode: "invalid_argument"},
		{name: "GET message not JSON", method: "GET", path: "Greet", query: url.Values{"encoding": {"json"}, "message": {`{"name":`}}, wantStatus: 400, wantCode: "invalid_argument"},
		{name: "GET JSON of the wrong type", method: "GET", path: "Greet", query: url.Values{"encoding": {"json"}, "message": {`{"name": 5}`}}, wantStatus: 400, wantCode: "invalid_argument"},
		{name: "GET message over the limit", method: "GET", path: "Greet", query: url.Values{"encoding": {"proto"}, "base64": {"1"}, "message": {b64(make([]byte, hardLimit+1))}}, wantStatus: 429, wantCode: "resource_exhausted"},
		{name: "GET message param far over the limit", method: "GET", path: "Greet", query: url.Values{"encoding": {"json"}, "message": {strings.Repeat("a", 8*hardLimit)}}, wantStatus: 429, wantCode: "resource_exhausted"},
		{name: "GET bad base64 flag", method: "GET", path: "Greet", query: url.Values{"encoding": {"proto"}, "base64": {"yes"}, "message": {b64(valid)}}, wantStatus: 400, wantCode: "invalid_argument"},
		{name: "GET unknown connect version", method: "GET", path: "Greet", query: url.Values{"connect": {"v2"}, "encoding": {"proto"}, "base64": {"1"}, "message": {b64(valid)}}, wantStatus: 400, wantCode: "invalid_argument"},
		{name: "GET unknown encoding", method: "GET", path: "Greet", query: url.Values{"encoding": {"xml"}, "message": {"<x/>"}}, wantStatus: 415},
		{name: "GET no encoding", method: "GET", path: "Greet", query: url.Values{"message": {b64(valid)}}, wantStatus: 415},
		{name: "GET method with side effects", method: "GET", path: "SetGreeting", query: url.Values{"encoding": {"json"}, "message": {`{"greeting":"x"}`}}, wantStatus: 405, noCORS: true},
		{name: "GET streaming method", method: "GET", path: "GreetStream", query: url.Values{"encoding": {"json"}, "message": {`{}`}}, wantStatus: 405, noCORS: true},
		{name: "GET unsupported compression, JSON", method: "GET", path: "Greet", query: url.Values{"encoding": {"json"}, "compression": {"br"}, "message": {`{"name":"x"}`}}, wantStatus: 501, wantCode: "unimplemented"},
		{name: "GET unsupported compression, proto", method: "GET", path: "Greet", query: url.Values{"encoding": {"proto"}, "base64": {"1"}, "compression": {"br"}, "message": {b64(valid)}}, wantStatus: 501, wantCode: "unimplemented", mayReach: true},
		{name: "GET gzip that is not gzip, JSON", method: "GET", path: "Greet", query: url.Values{"encoding": {"json"}, "compression": {"gzip"}, "message": {"not gzip"}}, wantStatus: 400, wantCode: "invalid_argument"},
		{name: "POST unsupported compression, JSON", method: "POST", path: "Greet", ct: "application/json", header: http.Header{"Content-Encoding": {"br"}}, body: []byte(`{"name":"x"}`), wantStatus: 501, wantCode: "unimplemented"},
		{name: "POST unsupported compression, proto", method: "POST", path: "Greet", ct: "application/proto", header: http.Header{"Content-Encoding": {"zstd"}}, body: valid, wantStatus: 501, wantCode: "unimplemented", mayReach: true},
		{name: "POST gzip bomb, JSON", method: "POST", path: "Greet", ct: "application/json", header: http.Header{"Content-Encoding": {"gzip"}}, body: bomb.Bytes(), wantStatus: 429, wantCode: "resource_exhausted"},
		{name: "POST body over the limit", method: "POST", path: "Greet", ct: "application/proto", body: make([]byte, hardLimit+1), wantStatus: 429, wantCode: "resource_exhausted"},
		{name: "POST bad timeout", method: "POST", path: "Greet", ct: "application/proto", header: http.Header{"Connect-Timeout-Ms": {"soon"}}, body: valid, wantStatus: 400, wantCode: "invalid_argument"},
		{name: "POST stream content type for unary", method: "POST", path: "Greet", ct: "application/connect+proto", body: encodeFrame(0, valid), wantStatus: 415},
		{name: "POST unary content type for stream", method: "POST", path: "GreetStream", ct: "application/proto", body: valid, wantStatus: 415},
		{name: "PUT", method: "PUT", path: "Greet", ct: "application/proto", body: valid, wantStatus: 405, noCORS: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newHardBadInputEnv(t)
			u := e.gwURL + hardGreetPrefix + tt.path
			if tt.query != nil {
				u += "?" + tt.query.Encode()
			}
			req, err := http.NewRequest(tt.method, u, bytes.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			if tt.ct != "" {
				req.Header.Set("Content-Type", tt.ct)
			}
			res := hardDo(t, req)
			if res.status != tt.wantStatus {
				t.Errorf("status %d (%q), want %d", res.status, res.body, tt.wantStatus)
			}
			if tt.wantCode != "" {
				var wire struct {
					Code    string `json:"code"`
					Message string `json:"message"`
				}
				if err := json.Unmarshal(res.body, &wire); err != nil || wire.Code != tt.wantCode {
					t.Errorf("body %q (%v), want a Connect error with code %q", res.body, err, tt.wantCode)
				}
				if ct := res.header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type %q, want application/json", ct)
				}
			}
			wantACAO := testOrigin
			if tt.noCORS {
				wantACAO = ""
			}
			if got := res.header.Get("Access-Control-Allow-Origin"); got != wantACAO {
				t.Errorf("Access-Control-Allow-Origin %q, want %q", got, wantACAO)
			}
			if calls := e.reached(t); calls != 0 && !tt.mayReach {
				t.Errorf("the backend saw %d calls, want none", calls)
			}
			// Every handler run but the sentinel's is one too many.
			if got := hardProcedures(e.rec); len(got) != 1 {
				t.Errorf("the backend's handlers ran for %v, want only the sentinel", got)
			}
		})
	}
}

// hardProcedures returns the procedures of the calls r saw so far.
func hardProcedures(r *recorder) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.calls))
	for i, c := range r.calls {
		out[i] = c.Procedure
	}
	return out
}
