package e2e

import (
	"net/http"
	"strings"
	"testing"
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
