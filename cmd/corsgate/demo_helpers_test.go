package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/internal/testutil"
)

const (
	evilOrigin  = "https://evil.example"
	otherOrigin = "https://app.example.com"
	startWait   = 20 * time.Second
)

// exposedForAll are the response headers a script must be able to read after
// calling any procedure: a trailers-only gRPC-Web error puts them in headers.
var exposedForAll = []string{"grpc-status", "grpc-message", "grpc-status-details-bin"}

// exposedForGreet adds what Greet declares in the proto: a response header and
// a trailer, which Connect unary sends as the header Trailer-X-Greet-Trailer.
var exposedForGreet = append(slices.Clone(exposedForAll), "x-greet-version", "x-greet-trailer", "trailer-x-greet-trailer")

// runningDemo is a `corsgate demo` run in-process through the command line,
// on free ports of 127.0.0.1.
type runningDemo struct {
	api    string // the API's URL, as printed
	web    string // the page's URL, as printed; also its origin
	stderr *testutil.SyncBuffer
}

// startDemo runs corsgate demo with args added to free listen addresses,
// waits for the printed URLs, and stops it at cleanup, failing the test
// unless it exits with status 0.
func startDemo(t *testing.T, args ...string) *runningDemo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &testutil.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		all := append([]string{"demo", "--listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0"}, args...)
		done <- run(ctx, all, pw, stderr)
		pw.Close()
	}()
	urls := make(chan printedURLs, 1)
	go readURLs(pr, urls)
	var d *runningDemo
	select {
	case u := <-urls:
		d = &runningDemo{api: u.api, web: u.web, stderr: stderr}
	case code := <-done:
		cancel()
		t.Fatalf("corsgate demo %q exited with %d before printing its URLs; stderr:\n%s", args, code, stderr)
	case <-time.After(startWait):
		cancel()
		t.Fatalf("corsgate demo %q printed no URLs within %v; stderr:\n%s", args, startWait, stderr)
	}
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("corsgate demo exited with %d after stop, want 0; stderr:\n%s", code, stderr)
			}
		case <-time.After(startWait):
			t.Errorf("corsgate demo did not stop within %v", startWait)
		}
	})
	return d
}

type printedURLs struct{ api, web string }

// readURLs reads "API: url" and "Web: url" lines from r, sends them once both
// are seen, and drains r.
func readURLs(r io.Reader, out chan<- printedURLs) {
	var u printedURLs
	sent := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "API: "); ok {
			u.api = v
		}
		if v, ok := strings.CutPrefix(line, "Web: "); ok {
			u.web = v
		}
		if !sent && u.api != "" && u.web != "" {
			out <- u
			sent = true
		}
	}
	_, _ = io.Copy(io.Discard, r)
}

// recorder is an http.RoundTripper that sets Origin on every request (when
// not empty) and keeps the headers of the last response.
type recorder struct {
	base   http.RoundTripper
	origin string

	mu   sync.Mutex
	last http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if r.origin != "" {
		req = req.Clone(req.Context())
		req.Header.Set("Origin", r.origin)
	}
	res, err := r.base.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.last = res.Header.Clone()
		r.mu.Unlock()
	}
	return res, err
}

// header returns the headers of the last response.
func (r *recorder) header() http.Header {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// newHTTPClient returns a client speaking HTTP/1.1, or HTTP/2 without TLS
// when h2c is set, that sends Origin: origin.
func newHTTPClient(t *testing.T, origin string, h2c bool) (*http.Client, *recorder) {
	t.Helper()
	tr := &http.Transport{}
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	t.Cleanup(tr.CloseIdleConnections)
	rec := &recorder{base: tr, origin: origin}
	return &http.Client{Transport: rec, Timeout: 30 * time.Second}, rec
}

// protocol is one way a client reaches the demo.
type protocol struct {
	name       string
	opts       []connect.ClientOption
	h2c        bool   // HTTP/2 without TLS instead of HTTP/1.1
	httpMethod string // what the server sees for Greet
}

var protocols = []protocol{
	{name: "connect", httpMethod: http.MethodPost},
	{name: "connect GET", opts: []connect.ClientOption{connect.WithHTTPGet()}, httpMethod: http.MethodGet},
	{name: "grpc-web", opts: []connect.ClientOption{connect.WithGRPCWeb()}, httpMethod: http.MethodPost},
	{name: "grpc-web h2c", opts: []connect.ClientOption{connect.WithGRPCWeb()}, h2c: true, httpMethod: http.MethodPost},
	{name: "grpc h2c", opts: []connect.ClientOption{connect.WithGRPC()}, h2c: true, httpMethod: http.MethodPost},
}

// client returns a greet client for p calling d from origin.
func (d *runningDemo) client(t *testing.T, p protocol, origin string) (greetv1connect.GreetServiceClient, *recorder) {
	t.Helper()
	hc, rec := newHTTPClient(t, origin, p.h2c)
	return greetv1connect.NewGreetServiceClient(hc, d.api, p.opts...), rec
}

var requestIDs atomic.Int64

// newRequestID returns a request id no other call of this test binary uses.
func newRequestID(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "."), requestIDs.Add(1))
}

// callsWithID returns the calls /debug/calls lists with X-Request-Id id.
func (d *runningDemo) callsWithID(t *testing.T, id string) []loggedCall {
	t.Helper()
	res, err := http.Get(d.api + "/debug/calls")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /debug/calls: status %d", res.StatusCode)
	}
	var all []loggedCall
	if err := json.NewDecoder(res.Body).Decode(&all); err != nil {
		t.Fatalf("GET /debug/calls: %v", err)
	}
	var out []loggedCall
	for _, c := range all {
		if c.Header.Get("X-Request-Id") == id {
			out = append(out, c)
		}
	}
	return out
}

func greetRequest(name, id string) *connect.Request[greetv1.GreetRequest] {
	req := connect.NewRequest(&greetv1.GreetRequest{Name: name})
	req.Header().Set("Authorization", "Bearer demo-token")
	req.Header().Set("X-Request-Id", id)
	return req
}

// headerList splits comma-separated header lines into lowercase names.
func headerList(lines []string) []string {
	var out []string
	for _, line := range lines {
		for f := range strings.SplitSeq(line, ",") {
			if f = strings.ToLower(strings.TrimSpace(f)); f != "" {
				out = append(out, f)
			}
		}
	}
	return out
}

// corsHeaders returns the Access-Control-* headers of h.
func corsHeaders(h http.Header) http.Header {
	out := http.Header{}
	for k, v := range h {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			out[k] = v
		}
	}
	return out
}

// wantAllowed checks the CORS headers of an allowed actual response: the
// exact origin, the exposed headers, Vary.
func wantAllowed(t *testing.T, h http.Header, origin string, exposedNames []string) {
	t.Helper()
	if got := h.Values("Access-Control-Allow-Origin"); !slices.Equal(got, []string{origin}) {
		t.Errorf("Access-Control-Allow-Origin = %q, want exactly [%q]", got, origin)
	}
	exposed := headerList(h.Values("Access-Control-Expose-Headers"))
	for _, name := range exposedNames {
		if !slices.Contains(exposed, name) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %q", exposed, name)
		}
	}
	if !slices.Contains(headerList(h.Values("Vary")), "origin") {
		t.Errorf("Vary = %q, want Origin", h.Values("Vary"))
	}
}

// wantStreamAllowed checks an allowed streaming response: Greet's declared
// headers are exposed for Greet only.
func wantStreamAllowed(t *testing.T, h http.Header, origin string) {
	t.Helper()
	wantAllowed(t, h, origin, exposedForAll)
	if exposed := headerList(h.Values("Access-Control-Expose-Headers")); slices.Contains(exposed, "x-greet-version") {
		t.Errorf("Access-Control-Expose-Headers %q exposes Greet's x-greet-version on another procedure", exposed)
	}
}
