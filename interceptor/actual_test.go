package interceptor

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

const greetACEH = protocolACEH + ", X-Greet-Version, X-Greet-Trailer, Trailer-X-Greet-Trailer"

func TestActualHeaders(t *testing.T) {
	t.Parallel()
	for _, pr := range protocols {
		t.Run(pr.name, func(t *testing.T) {
			t.Parallel()
			tests := []struct {
				name       string
				opts       []Option
				origin     string
				reqName    string
				wantCode   connect.Code // 0: success
				wantHeader map[string]string
			}{
				{
					name: "allowed", origin: appOrigin, reqName: "Ada",
					wantHeader: map[string]string{hACAO: appOrigin, hACEH: greetACEH, hACAC: ""},
				},
				{
					name: "allowed error response", origin: appOrigin, reqName: "", wantCode: connect.CodeInvalidArgument,
					wantHeader: map[string]string{hACAO: appOrigin, hACEH: greetACEH},
				},
				{
					name: "credentials", opts: []Option{WithCredentials(true)}, origin: appOrigin, reqName: "Ada",
					wantHeader: map[string]string{hACAO: appOrigin, hACAC: "true"},
				},
				{
					name: "exposed extra", opts: []Option{WithExposedHeaders("x-extra")}, origin: appOrigin, reqName: "Ada",
					wantHeader: map[string]string{hACEH: greetACEH + ", X-Extra"},
				},
				{
					name: "disallowed origin reaches handler without CORS", origin: "https://evil.example.net", reqName: "Ada",
					wantHeader: map[string]string{hACAO: "", hACEH: "", hACAC: ""},
				},
				{
					name: "no origin", origin: "", reqName: "Ada",
					wantHeader: map[string]string{hACAO: "", hACEH: ""},
				},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					p := mustNew(t, append([]Option{WithAllowedOrigins(appOrigin)}, tt.opts...)...)
					srv := startGreet(t, p, nil)
					client, cap := newClient(t, srv.URL, tt.origin, pr)
					ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
					defer cancel()
					_, err := client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: tt.reqName}))
					if connect.CodeOf(err) != tt.wantCode && !(tt.wantCode == 0 && err == nil) {
						t.Fatalf("Greet() error = %v, want code %v", err, tt.wantCode)
					}
					hdr, _ := cap.last()
					assertHeaders(t, hdr, tt.wantHeader)
					if !varyHasOrigin(hdr.Values(hVary)) {
						t.Errorf("Vary = %q, want Origin in it", hdr.Values(hVary))
					}
					calls := srv.Calls()
					if len(calls) != 1 {
						t.Fatalf("handler saw %d calls, want 1", len(calls))
					}
					wantMethod := "POST"
					if pr.name == "connect-get" {
						wantMethod = "GET"
					}
					if pr.name != "grpc" && calls[0].HTTPMethod != wantMethod {
						t.Errorf("HTTP method = %q, want %q", calls[0].HTTPMethod, wantMethod)
					}
				})
			}
		})
	}
}

// appCORS plays an application (or a wrapper such as improbable's grpcweb)
// that sets its own, different CORS headers.
func appCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set(hACAO, "*")
		h.Add(hACAO, "https://other.example")
		h.Set(hACAC, "true")
		h.Set(hACEH, "X-Secret")
		h.Set(hACAM, "DELETE")
		h.Set(hVary, "Accept-Encoding")
		next.ServeHTTP(w, r)
	})
}

// TestNoDoubledCORS: CORS headers the wrapped handler sets never reach the
// browser; the policy's do, once (improbable-eng/grpc-web#61, rs/cors#172).
func TestNoDoubledCORS(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		origin     string
		reqName    string
		wantHeader map[string]string
	}{
		{name: "allowed", origin: appOrigin, reqName: "Ada", wantHeader: map[string]string{hACAO: appOrigin, hACAC: "", hACEH: greetACEH, hACAM: ""}},
		{name: "allowed error", origin: appOrigin, reqName: "", wantHeader: map[string]string{hACAO: appOrigin, hACAC: "", hACEH: greetACEH, hACAM: ""}},
		{name: "refused origin", origin: "https://evil.example.net", reqName: "Ada", wantHeader: map[string]string{hACAO: "", hACAC: "", hACEH: "", hACAM: ""}},
		{name: "no origin", origin: "", reqName: "Ada", wantHeader: map[string]string{hACAO: "", hACAC: "", hACEH: ""}},
	}
	for _, pr := range protocols {
		for _, tt := range tests {
			t.Run(pr.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				srv := startGreet(t, mustNew(t, WithAllowedOrigins(appOrigin)), appCORS)
				client, cap := newClient(t, srv.URL, tt.origin, pr)
				_, _ = client.Greet(t.Context(), connect.NewRequest(&greetv1.GreetRequest{Name: tt.reqName}))
				hdr, _ := cap.last()
				assertHeaders(t, hdr, tt.wantHeader)
				vary := strings.Join(hdr.Values(hVary), ",")
				if !strings.Contains(vary, "Origin") || !strings.Contains(vary, "Accept-Encoding") {
					t.Errorf("Vary = %q, want Origin and the handler's Accept-Encoding", vary)
				}
			})
		}
	}
}

func TestStrict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		origin    string // "self" is replaced by the server's own origin
		path      string
		wantCode  connect.Code
		wantCalls int
	}{
		{name: "disallowed origin denied", origin: "https://evil.example.net", path: pathGreet, wantCode: connect.CodePermissionDenied},
		{name: "null denied", origin: "null", path: pathGreet, wantCode: connect.CodePermissionDenied},
		{name: "allowed origin passes", origin: appOrigin, path: pathGreet, wantCalls: 1},
		{name: "same origin passes", origin: "self", path: pathGreet, wantCalls: 1},
		{name: "no origin passes", origin: "", path: pathGreet, wantCalls: 1},
		{name: "barred from allowed origin denied", origin: appOrigin, path: pathReset, wantCode: connect.CodePermissionDenied},
		{name: "barred same origin passes", origin: "self", path: pathReset, wantCalls: 1},
		{name: "stream from disallowed origin denied", origin: "https://evil.example.net", path: "/greet.v1.GreetService/GreetStream", wantCode: connect.CodePermissionDenied},
	}
	for _, pr := range protocols {
		for _, tt := range tests {
			if pr.name == "connect-get" && tt.path != pathGreet {
				continue // GET exists for Greet only
			}
			t.Run(pr.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				srv := startGreet(t, mustNew(t, WithAllowedOrigins(appOrigin), WithStrict(true)), nil)
				origin := tt.origin
				if origin == "self" {
					origin = srv.URL
				}
				client, cap := newClient(t, srv.URL, origin, pr)
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				var err error
				switch tt.path {
				case pathGreet:
					_, err = client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "Ada"}))
				case pathReset:
					_, err = client.ResetGreetings(ctx, connect.NewRequest(&greetv1.ResetGreetingsRequest{}))
				default:
					var stream *connect.ServerStreamForClient[greetv1.GreetStreamResponse]
					stream, err = client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "Ada", Count: 2}))
					if err == nil {
						for stream.Receive() {
						}
						err = errors.Join(stream.Err(), stream.Close())
					}
				}
				if tt.wantCode == 0 && err != nil {
					t.Fatalf("call error = %v, want success", err)
				}
				if tt.wantCode != 0 {
					if got := connect.CodeOf(err); got != tt.wantCode {
						t.Fatalf("call error = %v (code %v), want code %v", err, got, tt.wantCode)
					}
					var cerr *connect.Error
					if !errors.As(err, &cerr) || !strings.Contains(cerr.Message(), "cross-origin call refused") {
						t.Errorf("error message = %v, want corsgate's", err)
					}
					hdr, _ := cap.last()
					if hdr.Get(hACAO) != "" {
						t.Errorf("denied response carries ACAO %q", hdr.Get(hACAO))
					}
				}
				if got := len(srv.Calls()); got != tt.wantCalls {
					t.Errorf("handler saw %d calls, want %d", got, tt.wantCalls)
				}
			})
		}
	}
}

// TestBarredProcedureRunsCrossOriginWithoutStrict is the regression test
// of a browser-barred procedure that ran for another origin: without strict
// mode its actual request reached the handler (its preflight is refused,
// but a preflight granted earlier, or none at all, let it through). It is
// now refused in every mode, whatever the origin; same-origin and
// non-browser calls still pass.
func TestBarredProcedureRunsCrossOriginWithoutStrict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		origin    string // "self" is replaced by the server's own origin
		wantCode  connect.Code
		wantCalls int
	}{
		{name: "allowed origin denied", origin: appOrigin, wantCode: connect.CodePermissionDenied},
		{name: "disallowed origin denied", origin: "https://evil.example.net", wantCode: connect.CodePermissionDenied},
		{name: "same origin passes", origin: "self", wantCalls: 1},
		{name: "no origin passes", origin: "", wantCalls: 1},
	}
	for _, pr := range protocols {
		if pr.name == "connect-get" {
			continue // ResetGreetings has no GET
		}
		for _, tt := range tests {
			t.Run(pr.name+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				srv := startGreet(t, mustNew(t, WithAllowedOrigins(appOrigin)), nil)
				origin := tt.origin
				if origin == "self" {
					origin = srv.URL
				}
				client, cap := newClient(t, srv.URL, origin, pr)
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				defer cancel()
				_, err := client.ResetGreetings(ctx, connect.NewRequest(&greetv1.ResetGreetingsRequest{}))
				if got := connect.CodeOf(err); err != nil && got != tt.wantCode || err == nil && tt.wantCode != 0 {
					t.Fatalf("call error = %v (code %v), want code %v", err, got, tt.wantCode)
				}
				if tt.wantCode != 0 {
					if hdr, _ := cap.last(); hdr.Get(hACAO) != "" {
						t.Errorf("denied response carries ACAO %q", hdr.Get(hACAO))
					}
				}
				if got := len(srv.Calls()); got != tt.wantCalls {
					t.Errorf("handler saw %d calls, want %d", got, tt.wantCalls)
				}
			})
		}
	}
}

// TestUnknownPath: paths not in the table pass to next untouched unless
// strict and cross-origin.
func TestUnknownPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		strict     bool
		origin     string
		wantStatus int
		wantACAO   string
	}{
		{name: "passes untouched", origin: "https://evil.example.net", wantStatus: nextMarker, wantACAO: "https://mine.example"},
		{name: "strict cross-origin denied", strict: true, origin: appOrigin, wantStatus: http.StatusForbidden},
		{name: "strict no origin passes", strict: true, wantStatus: nextMarker, wantACAO: "https://mine.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustNew(t, WithAllowedOrigins(appOrigin), WithStrict(tt.strict))
			h := p.Handler(greetTable(t), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set(hACAO, "https://mine.example")
				w.WriteHeader(nextMarker)
			}))
			r := httptest.NewRequest(http.MethodPost, "/static/app.js", nil)
			if tt.origin != "" {
				r.Header.Set(hOrigin, tt.origin)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if got := w.Header().Get(hACAO); got != tt.wantACAO {
				t.Errorf("ACAO = %q, want %q", got, tt.wantACAO)
			}
		})
	}
}

// TestWriterKeepsResponseController: http.ResponseController reaches the
// real writer through the policy's wrapper, and headers are fixed before a
// flush sends them.
func TestWriterKeepsResponseController(t *testing.T) {
	t.Parallel()
	p := mustNew(t, WithAllowedOrigins(appOrigin))
	errs := make(chan error, 3)
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set(hACAO, "*")
		rc := http.NewResponseController(w)
		errs <- rc.SetWriteDeadline(time.Now().Add(time.Minute))
		errs <- rc.Flush()
		_, err := w.Write([]byte("hello"))
		errs <- err
	})
	srv := httptest.NewServer(p.Handler(greetTable(t), next))
	t.Cleanup(srv.Close)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL+pathGreet, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(hOrigin, appOrigin)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	for range 3 {
		if err := <-errs; err != nil {
			t.Errorf("through the wrapper: %v", err)
		}
	}
	if got := res.Header.Values(hACAO); !slices.Equal(got, []string{appOrigin}) {
		t.Errorf("ACAO = %q, want [%q]", got, appOrigin)
	}
}

func TestActualObserver(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		origin string
		path   string
		method string
		want   []Verdict
	}{
		{name: "allowed", origin: appOrigin, path: pathGreet, method: "POST", want: []Verdict{{Allowed: true, Reason: ReasonOK, Procedure: pathGreet}}},
		{name: "origin", origin: "https://evil.example.net", path: pathGreet, method: "POST", want: []Verdict{{Reason: ReasonOrigin, Procedure: pathGreet}}},
		{name: "method", origin: appOrigin, path: pathSet, method: "GET", want: []Verdict{{Reason: ReasonMethod, Procedure: pathSet}}},
		{name: "barred", origin: appOrigin, path: pathReset, method: "POST", want: []Verdict{{Reason: ReasonBarred, Procedure: pathReset}}},
		{name: "unknown", origin: appOrigin, path: "/a/b", method: "POST", want: []Verdict{{Reason: ReasonProcedure}}},
		{name: "same origin not told", origin: "http://example.com", path: pathGreet, method: "POST", want: nil},
		{name: "same origin unknown not told", origin: "http://example.com", path: "/a/b", method: "POST", want: nil},
		{name: "no origin not told", origin: "", path: pathGreet, method: "POST", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []Verdict
			p := mustNew(t, WithAllowedOrigins(appOrigin), WithObserver(func(v Verdict) { got = append(got, v) }))
			h := p.Handler(greetTable(t), http.NotFoundHandler())
			r := httptest.NewRequest(tt.method, tt.path, nil) // Host example.com
			if tt.origin != "" {
				r.Header.Set(hOrigin, tt.origin)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if !slices.Equal(got, tt.want) {
				t.Errorf("verdicts = %+v, want %+v", got, tt.want)
			}
		})
	}
}
