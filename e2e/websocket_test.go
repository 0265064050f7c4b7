package e2e

import (
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/corsgate/corsgate/example/web"
	"github.com/corsgate/corsgate/internal/greetd"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// TestWebSocketStreams: @improbable-eng/grpc-web's WebsocketTransport, in
// headless Chromium, streams request bodies through the gateway in front of
// greetd: GreetMany (client stream) and Chat (bidi, each message sent after
// the answer to the one before), plus unary and server stream, metadata
// both ways and an error with details.
func TestWebSocketStreams(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envConfig{mode: viaGateway})
	p := openPage(t, e.pageURL, e.apiURL)

	r := p.run(runOptions{Client: clientImprobableWS, Method: "GreetMany", Target: e.apiURL, Name: "Ada"})
	wantOK(t, r)
	wantMessages(t, r, `{"greeting":"Hello, Ada and Bo and Cy!","count":3}`)

	r = p.run(runOptions{Client: clientImprobableWS, Method: "Chat", Target: e.apiURL, Name: "Ada"})
	wantOK(t, r)
	wantMessages(t, r, `{"text":"you said: hello from Ada"}`, `{"text":"you said: how are you?"}`, `{"text":"you said: bye"}`)

	id := newRequestID()
	r = p.run(runOptions{Client: clientImprobableWS, Method: "Greet", Target: e.apiURL, Name: "Ada", Headers: authHeaders(id)})
	wantOK(t, r)
	wantMessages(t, r, `{"greeting":"Hello, Ada!"}`)
	if r.Headers["x-greet-version"] != "1" || r.Trailers["x-greet-trailer"] != "greeted" {
		t.Errorf("headers %v, trailers %v: want x-greet-version and x-greet-trailer", r.Headers, r.Trailers)
	}
	if calls := e.calls.withRequestID(id); len(calls) != 1 || calls[0].Header.Get("Authorization") != testToken {
		t.Errorf("the service saw %v, want one Greet with the authorization", calls)
	}

	r = p.run(runOptions{Client: clientImprobableWS, Method: "GreetStream", Target: e.apiURL, Name: "Bo", Count: 3, IntervalMs: 10})
	wantOK(t, r)
	if len(r.Messages) != 3 {
		t.Errorf("GreetStream: %v", r)
	}

	r = p.run(runOptions{Client: clientImprobableWS, Method: "Greet", Target: e.apiURL, Name: ""})
	if r.OK || r.Code != "invalid_argument" || len(r.Details) != 1 || r.Details[0].Type != "greet.v1.GreetErrorDetail" {
		t.Errorf("Greet with an empty name: want invalid_argument with a detail, got %v", r)
	}
	if n := e.calls.count("GreetMany") + e.calls.count("Chat"); n != 2 {
		t.Errorf("the service saw %d GreetMany and Chat calls, want 2", n)
	}
}

// TestWebSocketDisallowedOrigin: the same page on an origin the policy does
// not allow cannot open the stream: the upgrade is refused (403 before
// upgrading) and greetd sees no call. WebSockets are not covered by CORS,
// so without the gateway's check the page could stream with the user's
// cookies.
func TestWebSocketDisallowedOrigin(t *testing.T) {
	t.Parallel()
	e := startEnv(t, envConfig{mode: viaGateway})
	p := openPage(t, e.otherURL, e.apiURL)
	for _, method := range []string{"Chat", "GreetMany", "Greet"} {
		r := p.run(runOptions{Client: clientImprobableWS, Method: method, Target: e.apiURL, Name: "Eve"})
		if r.OK || len(r.Headers) != 0 || !strings.Contains(r.Message, "refused the WebSocket upgrade") {
			t.Errorf("%s from a disallowed origin: %v; want a stream closed without headers", method, r)
		}
		path := "/greet.v1.GreetService/" + method
		if n := e.requests.count(path, http.MethodGet); n == 0 {
			t.Errorf("no upgrade for %s reached the API: the browser did not try", path)
		}
		if n := e.calls.count(method); n != 0 {
			t.Errorf("greetd saw %d %s calls from the disallowed origin", n, method)
		}
	}
	// The refusal as the browser got it: 403 to an upgrade from origin C.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, e.apiURL+"/greet.v1.GreetService/Chat", nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"Origin": e.otherURL, "Connection": "Upgrade", "Upgrade": "websocket",
		"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "grpc-websockets"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("upgrade from %s answered %d, want %d", e.otherURL, resp.StatusCode, http.StatusForbidden)
	}
	if n := e.calls.count("Chat"); n != 0 {
		t.Errorf("greetd saw %d Chat calls", n)
	}
}

// TestWebSocketCorsgateServe runs the binary as an operator would,
// `corsgate serve --websockets` in front of greetd, and streams GreetMany
// and Chat to it from the page in Chromium; the same page on a disallowed
// origin is refused and greetd sees no call from it.
func TestWebSocketCorsgateServe(t *testing.T) {
	t.Parallel()
	tab := newTab(t) // skips before the build when there is no browser
	bin := buildCorsgate(t)
	calls := &callLog{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := greetd.NewServer(&greetsvc.Greeter{Record: calls.add})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	site := httptest.NewServer(http.FileServerFS(web.FS))
	t.Cleanup(site.Close)
	other := httptest.NewServer(http.FileServerFS(web.FS))
	t.Cleanup(other.Close)

	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--backend", lis.Addr().String(),
		"--allow-origin", site.URL, "--websockets")
	out := &gatewayURLWriter{found: make(chan string, 1)}
	cmd.Stdout = out
	cmd.Stderr = &testWriter{t: t, prefix: "corsgate serve: "}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	})
	var gw string
	select {
	case gw = <-out.found:
	case <-time.After(20 * time.Second):
		t.Fatal("corsgate serve printed no Gateway URL within 20s")
	}

	p := &page{t: t, ctx: tab}
	p.navigate(site.URL + "/?gateway=" + url.QueryEscape(gw))
	var r runResult
	for range 50 { // reflection loads the descriptors in the background
		if r = p.run(runOptions{Client: clientImprobableWS, Method: "GreetMany", Target: gw, Name: "Ada"}); r.OK {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantOK(t, r)
	wantMessages(t, r, `{"greeting":"Hello, Ada and Bo and Cy!","count":3}`)
	r = p.run(runOptions{Client: clientImprobableWS, Method: "Chat", Target: gw, Name: "Ada"})
	wantOK(t, r)
	wantMessages(t, r, `{"text":"you said: hello from Ada"}`, `{"text":"you said: how are you?"}`, `{"text":"you said: bye"}`)

	before := calls.count("Chat")
	evil := &page{t: t, ctx: newTab(t)}
	evil.navigate(other.URL + "/?gateway=" + url.QueryEscape(gw))
	r = evil.run(runOptions{Client: clientImprobableWS, Method: "Chat", Target: gw, Name: "Eve"})
	if r.OK || !strings.Contains(r.Message, "refused the WebSocket upgrade") {
		t.Errorf("Chat from a disallowed origin: %v; want a refused upgrade", r)
	}
	if n := calls.count("Chat") - before; n != 0 {
		t.Errorf("greetd saw %d Chat calls from the disallowed origin", n)
	}
}

// gatewayURLWriter finds the "Gateway: " line of corsgate serve's stdout.
type gatewayURLWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	sent  bool
	found chan string
}

func (w *gatewayURLWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for _, line := range strings.Split(w.buf.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "Gateway: "); ok && !w.sent && strings.HasSuffix(w.buf.String(), "\n") {
			w.sent = true
			w.found <- strings.TrimSpace(v)
		}
	}
	return len(p), nil
}
