package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

// TestCredentials: with credentials allowed, a cookie that origin B set is
// sent with credentials "include" and the call succeeds; without "include"
// the cookie stays home; and a policy without credentials makes the browser
// refuse such a call before it is sent.
func TestCredentials(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			e := startEnv(t, envConfig{mode: m, credentials: true})
			refusing := startEnv(t, envConfig{mode: m, credentials: false})
			for _, client := range clients {
				t.Run(client, func(t *testing.T) {
					t.Parallel()
					// Cookies are per host, not per port: a name of its own
					// keeps parallel tests apart.
					name := fmt.Sprintf("corsgate_%s_%s", strings.ReplaceAll(string(m), "-", ""), strings.ReplaceAll(client, "-", ""))
					value := newRequestID()
					p := openPage(t, e.pageURL, e.apiURL)
					p.navigate(e.apiURL + cookiePath + "?" + url.Values{"name": {name}, "value": {value}}.Encode())
					p.navigate(e.pageURL + "/?api=" + url.QueryEscape(e.apiURL))
					want := name + "=" + value

					id := newRequestID()
					r := p.run(runOptions{Client: client, Method: "Greet", Target: e.apiURL, Name: "Cy", Headers: authHeaders(id), Credentials: true})
					wantOK(t, r)
					calls := e.calls.withRequestID(id)
					if len(calls) != 1 {
						t.Fatalf("the service saw %d calls with x-request-id %s, want 1", len(calls), id)
					}
					// HTTP/2 may split cookies into several fields (the gateway's
					// backend gets them so): look at all.
					if got := strings.Join(calls[0].Header.Values("Cookie"), "; "); !strings.Contains(got, want) {
						t.Errorf("cookie at the service = %q, want it to hold %q", got, want)
					}

					id = newRequestID()
					r = p.run(runOptions{Client: client, Method: "Greet", Target: e.apiURL, Name: "Cy", Headers: authHeaders(id)})
					wantOK(t, r)
					calls = e.calls.withRequestID(id)
					if len(calls) != 1 {
						t.Fatalf("the service saw %d calls with x-request-id %s, want 1", len(calls), id)
					}
					if got := strings.Join(calls[0].Header.Values("Cookie"), "; "); strings.Contains(got, name) {
						t.Errorf("cookie sent without credentials: %q", got)
					}

					q := openPage(t, refusing.pageURL, refusing.apiURL)
					id = newRequestID()
					r = q.run(runOptions{Client: client, Method: "Greet", Target: refusing.apiURL, Name: "Cy", Headers: authHeaders(id), Credentials: true})
					if r.OK {
						t.Errorf("credentialed call succeeded though the policy does not allow credentials: %v", r)
					}
					if reqs := refusing.requests.withRequestID(id); len(reqs) != 0 {
						t.Errorf("the browser sent the credentialed call after a preflight without credentials: %d requests", len(reqs))
					}
				})
			}
		})
	}
}

// TestDisallowedOrigin: the page on origin C, which the policy does not
// allow, can't call the API; a preflighted call never reaches the service.
// A header the procedure does not declare is refused the same way.
func TestDisallowedOrigin(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			e := startEnv(t, envConfig{mode: m})
			for _, client := range clients {
				t.Run(client, func(t *testing.T) {
					t.Parallel()
					p := openPage(t, e.otherURL, e.apiURL)
					id := newRequestID()
					r := p.run(runOptions{Client: client, Method: "Greet", Target: e.apiURL, Name: "Eve", Headers: authHeaders(id)})
					if r.OK {
						t.Fatalf("call from a disallowed origin succeeded: %v", r)
					}
					if reqs := e.requests.withRequestID(id); len(reqs) != 0 {
						t.Errorf("the browser sent the call after a refused preflight: %d requests", len(reqs))
					}
					if calls := e.calls.withRequestID(id); len(calls) != 0 {
						t.Errorf("the service ran for a disallowed origin: %v", calls)
					}

					// From the allowed origin, a header SetGreeting does not
					// declare (x-request-id is Greet's) is refused too.
					q := openPage(t, e.pageURL, e.apiURL)
					id = newRequestID()
					r = q.run(runOptions{Client: client, Method: "SetGreeting", Target: e.apiURL, Greeting: "Hello", Headers: map[string]string{"x-request-id": id}})
					if r.OK {
						t.Fatalf("call with an undeclared header succeeded: %v", r)
					}
					if reqs := e.requests.withRequestID(id); len(reqs) != 0 {
						t.Errorf("the browser sent a call with an undeclared header: %d requests", len(reqs))
					}
				})
			}
		})
	}
}

// TestDisallowedSimpleRequest: connect-web's GET for Greet without extra
// headers is a simple request: the browser sends it without a preflight and
// hides the answer from a disallowed origin. The handler runs, unless the
// policy is strict, which answers PERMISSION_DENIED before the handler.
func TestDisallowedSimpleRequest(t *testing.T) {
	t.Parallel()
	const path = "/" + greetv1connect.GreetServiceName + "/Greet"
	for _, m := range modes {
		for _, strict := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/strict=%t", m, strict), func(t *testing.T) {
				t.Parallel()
				e := startEnv(t, envConfig{mode: m, strict: strict})
				p := openPage(t, e.otherURL, e.apiURL)
				r := p.run(runOptions{Client: clientConnect, Method: "Greet", Target: e.apiURL, Name: "Eve", TimeoutMs: -1})
				if r.OK {
					t.Fatalf("call from a disallowed origin succeeded: %v", r)
				}
				if n := e.requests.count(path, http.MethodOptions); n != 0 {
					t.Errorf("the browser preflighted a simple GET %d times", n)
				}
				if n := e.requests.count(path, http.MethodGet); n != 1 {
					t.Fatalf("the simple GET reached origin B %d times, want 1", n)
				}
				want := 1
				if strict {
					want = 0
				}
				if n := e.calls.count("Greet"); n != want {
					t.Errorf("the service ran %d times for the simple GET, want %d", n, want)
				}
			})
		}
	}
}
