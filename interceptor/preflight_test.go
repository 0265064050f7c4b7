package interceptor

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/corsgate/corsgate/internal/testutil"
)

const (
	pathGreet = "/greet.v1.GreetService/Greet"
	pathSet   = "/greet.v1.GreetService/SetGreeting"
	pathReset = "/greet.v1.GreetService/ResetGreetings"
	pathChat  = "/greet.v1.GreetService/Chat"
	appOrigin = "https://app.example.com"
)

// protocolACAH is the Access-Control-Allow-Headers of a procedure without
// declared headers.
const protocolACAH = "content-type, connect-protocol-version, connect-timeout-ms, grpc-timeout, x-grpc-web, " +
	"x-user-agent, content-encoding, accept-encoding, connect-content-encoding, connect-accept-encoding, " +
	"grpc-message-type, grpc-encoding, grpc-accept-encoding, traceparent, tracestate, baggage"

const protocolACEH = "Grpc-Status, Grpc-Message, Grpc-Status-Details-Bin, Content-Encoding, Connect-Content-Encoding, " +
	"Grpc-Encoding, Accept-Encoding, Connect-Accept-Encoding, Grpc-Accept-Encoding"

const varyPreflight = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"

// nextMarker is the status the next handler of handler tests answers with.
const nextMarker = 299

func greetTable(tb testing.TB) *Table {
	tb.Helper()
	t, err := NewTable(greetService(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

func mustNew(tb testing.TB, opts ...Option) *Policy {
	tb.Helper()
	p, err := New(opts...)
	if err != nil {
		tb.Fatalf("New() error = %v", err)
	}
	return p
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	base := []Option{WithAllowedOrigins(appOrigin, "https://*.corp.example")}
	tests := []struct {
		name       string
		opts       []Option
		path       string
		origin     []string
		acrm       []string
		acrh       []string
		acrpn      string
		wantStatus int
		wantHeader map[string]string // exact values; "" means absent
	}{
		{
			name: "allowed exact GET with declared headers", path: pathGreet, origin: []string{appOrigin},
			acrm: []string{"GET"}, acrh: []string{"authorization,x-request-id"}, wantStatus: 204,
			wantHeader: map[string]string{
				hACAO: appOrigin, hACAM: "GET, POST", hACAH: protocolACAH + ", authorization, x-request-id",
				hMaxAge: "7200", hACAC: "", hACAPN: "", hVary: varyPreflight,
			},
		},
		{
			name: "allowed POST protocol headers only", path: pathSet, origin: []string{appOrigin},
			acrm: []string{"POST"}, acrh: []string{"connect-protocol-version,content-type"}, wantStatus: 204,
			wantHeader: map[string]string{hACAO: appOrigin, hACAM: "POST", hACAH: protocolACAH},
		},
		{
			name: "grpc-web headers", path: pathChat, origin: []string{appOrigin},
			acrm: []string{"POST"}, acrh: []string{"content-type,x-grpc-web,x-user-agent,grpc-timeout"}, wantStatus: 204,
			wantHeader: map[string]string{hACAO: appOrigin},
		},
		{
			name: "no ACRH", path: pathSet, origin: []string{appOrigin}, acrm: []string{"POST"}, wantStatus: 204,
			wantHeader: map[string]string{hACAO: appOrigin},
		},
		{
			name: "pattern origin echoed", path: pathGreet, origin: []string{"https://a.corp.example"},
			acrm: []string{"POST"}, wantStatus: 204, wantHeader: map[string]string{hACAO: "https://a.corp.example"},
		},
		{
			name: "ACRH any case, order, spacing, empties, lines", path: pathGreet, origin: []string{appOrigin},
			acrm: []string{"POST"}, acrh: []string{" X-Request-ID ,, Content-Type", "", "AUTHORIZATION\t, connect-protocol-version"},
			wantStatus: 204, wantHeader: map[string]string{hACAO: appOrigin},
		},
		{name: "origin refused", path: pathGreet, origin: []string{"https://evil.example.net"}, acrm: []string{"POST"}, wantStatus: 403, wantHeader: map[string]string{hVary: varyPreflight}},
		{name: "origin suffix trick refused", path: pathGreet, origin: []string{"https://app.example.com.evil.com"}, acrm: []string{"POST"}, wantStatus: 403},
		{name: "null refused", path: pathGreet, origin: []string{"null"}, acrm: []string{"POST"}, wantStatus: 403},
		{name: "two origins refused", path: pathGreet, origin: []string{appOrigin, appOrigin}, acrm: []string{"POST"}, wantStatus: 403},
		{name: "unknown procedure refused", path: "/greet.v1.GreetService/Nope", origin: []string{appOrigin}, acrm: []string{"POST"}, wantStatus: 403},
		{name: "unknown service refused", path: "/other.v1.S/Do", origin: []string{appOrigin}, acrm: []string{"POST"}, wantStatus: 403},
		{name: "barred refused", path: pathReset, origin: []string{appOrigin}, acrm: []string{"POST"}, wantStatus: 403},
		{name: "GET on side-effect method refused", path: pathSet, origin: []string{appOrigin}, acrm: []string{"GET"}, wantStatus: 403},
		{name: "GET on streaming method refused", path: pathChat, origin: []string{appOrigin}, acrm: []string{"GET"}, wantStatus: 403},
		{name: "PUT refused", path: pathGreet, origin: []string{appOrigin}, acrm: []string{"PUT"}, wantStatus: 403},
		{name: "lowercase post refused", path: pathGreet, origin: []string{appOrigin}, acrm: []string{"post"}, wantStatus: 403},
		{name: "undeclared header refused", path: pathGreet, origin: []string{appOrigin}, acrm: []string{"POST"}, acrh: []string{"content-type,x-secret"}, wantStatus: 403},
		{name: "authorization not declared refused", path: pathSet, origin: []string{appOrigin}, acrm: []string{"POST"}, acrh: []string{"authorization"}, wantStatus: 403},
		{name: "malformed ACRH refused", path: pathGreet, origin: []string{appOrigin}, acrm: []string{"POST"}, acrh: []string{"content-type x"}, wantStatus: 403},
		{name: "1 MiB of commas refused", path: pathGreet, origin: []string{appOrigin}, acrm: []string{"POST"}, acrh: []string{strings.Repeat(",", 1<<20)}, wantStatus: 403},
		{name: "65 names refused", path: pathGreet, origin: []string{appOrigin}, acrm: []string{"POST"}, acrh: []string{strings.Repeat("content-type,", 65)}, wantStatus: 403},
		{
			name: "configured header", opts: []Option{WithAllowedHeaders("X-Tenant")}, path: pathSet, origin: []string{appOrigin},
			acrm: []string{"POST"}, acrh: []string{"x-tenant"}, wantStatus: 204,
			wantHeader: map[string]string{hACAH: protocolACAH + ", x-tenant"},
		},
		{
			name: "credentials", opts: []Option{WithCredentials(true)}, path: pathGreet, origin: []string{appOrigin},
			acrm: []string{"POST"}, wantStatus: 204, wantHeader: map[string]string{hACAO: appOrigin, hACAC: "true"},
		},
		{
			name: "max-age zero omitted", opts: []Option{WithMaxAge(0)}, path: pathGreet, origin: []string{appOrigin},
			acrm: []string{"POST"}, wantStatus: 204, wantHeader: map[string]string{hMaxAge: ""},
		},
		{
			name: "max-age rounded down", opts: []Option{WithMaxAge(90*time.Second + 500*time.Millisecond)}, path: pathGreet,
			origin: []string{appOrigin}, acrm: []string{"POST"}, wantStatus: 204, wantHeader: map[string]string{hMaxAge: "90"},
		},
		{
			name: "private network granted", opts: []Option{WithPrivateNetwork(true)}, path: pathGreet, origin: []string{appOrigin},
			acrm: []string{"POST"}, acrpn: "true", wantStatus: 204,
			wantHeader: map[string]string{hACAPN: "true", hVary: varyPreflight + ", Access-Control-Request-Private-Network"},
		},
		{
			name: "private network not asked", opts: []Option{WithPrivateNetwork(true)}, path: pathGreet, origin: []string{appOrigin},
			acrm: []string{"POST"}, wantStatus: 204,
			wantHeader: map[string]string{hACAPN: "", hVary: varyPreflight + ", Access-Control-Request-Private-Network"},
		},
		{
			name: "private network refused vary", opts: []Option{WithPrivateNetwork(true)}, path: pathGreet, origin: []string{"https://evil.example.net"},
			acrm: []string{"POST"}, acrpn: "true", wantStatus: 403,
			wantHeader: map[string]string{hVary: varyPreflight + ", Access-Control-Request-Private-Network"},
		},
		{
			name: "private network disabled", path: pathGreet, origin: []string{appOrigin}, acrm: []string{"POST"}, acrpn: "true",
			wantStatus: 204, wantHeader: map[string]string{hACAPN: "", hVary: varyPreflight},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustNew(t, append(append([]Option(nil), base...), tt.opts...)...)
			h := p.Handler(greetTable(t), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(nextMarker)
			}))
			r := httptest.NewRequest(http.MethodOptions, tt.path, nil)
			r.Header[hOrigin] = tt.origin
			r.Header[hACRM] = tt.acrm
			if tt.acrh != nil {
				r.Header[hACRH] = tt.acrh
			}
			if tt.acrpn != "" {
				r.Header.Set(hACRPN, tt.acrpn)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d; header %v", w.Code, tt.wantStatus, w.Header())
			}
			assertHeaders(t, w.Header(), tt.wantHeader)
			if got := w.Header().Values(hVary); len(got) != 1 || !strings.HasPrefix(got[0], varyPreflight) {
				t.Errorf("Vary = %q, want %q", got, varyPreflight)
			}
			if w.Code != http.StatusNoContent {
				for k := range w.Header() {
					if strings.HasPrefix(k, headerStart) {
						t.Errorf("refused preflight carries %s", k)
					}
				}
			}
		})
	}
}

func TestPreflightAnyHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		origins    []string
		path       string
		acrh       string
		wantStatus int
		wantACAH   string
	}{
		{name: "custom header echoed", path: pathSet, acrh: "x-anything,content-type", wantStatus: 204, wantACAH: "x-anything,content-type"},
		{name: "authorization not covered by star", path: pathSet, acrh: "x-anything,authorization", wantStatus: 403},
		{name: "authorization declared", path: pathGreet, acrh: "x-anything,Authorization", wantStatus: 204, wantACAH: "x-anything,Authorization"},
		{name: "no ACRH gets the list", path: pathSet, wantStatus: 204, wantACAH: protocolACAH},
		{name: "malformed still refused", path: pathSet, acrh: "x y", wantStatus: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustNew(t, WithAllowedOrigins("*"), WithAllowedHeaders("*"))
			h := p.Handler(greetTable(t), http.NotFoundHandler())
			r := httptest.NewRequest(http.MethodOptions, tt.path, nil)
			r.Header.Set(hOrigin, appOrigin)
			r.Header.Set(hACRM, "POST")
			if tt.acrh != "" {
				r.Header.Set(hACRH, tt.acrh)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if tt.wantStatus == 204 {
				assertHeaders(t, w.Header(), map[string]string{hACAO: "*", hACAH: tt.wantACAH})
			}
		})
	}
}

// TestNotPreflight: OPTIONS without ACRM, or without Origin, is an ordinary
// request and reaches the next handler.
func TestNotPreflight(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		header map[string]string
	}{
		{name: "no ACRM", header: map[string]string{hOrigin: appOrigin}},
		{name: "no Origin", header: map[string]string{hACRM: "POST"}},
		{name: "neither", header: map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := mustNew(t, WithAllowedOrigins(appOrigin))
			h := p.Handler(greetTable(t), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(nextMarker) }))
			r := httptest.NewRequest(http.MethodOptions, pathGreet, nil)
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != nextMarker {
				t.Errorf("status = %d, want %d (the next handler)", w.Code, nextMarker)
			}
		})
	}
}

func TestPreflightRefusalLogAndObserver(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		path       string
		origin     string
		acrm       string
		acrh       string
		wantCheck  Reason
		wantDetail string
		wantProc   string
	}{
		{name: "origin", path: pathGreet, origin: "https://evil.example.net", acrm: "POST", wantCheck: ReasonOrigin, wantProc: pathGreet},
		{name: "procedure", path: "/x.v1.S/Do", origin: appOrigin, acrm: "POST", wantCheck: ReasonProcedure, wantProc: ""},
		{name: "barred", path: pathReset, origin: appOrigin, acrm: "POST", wantCheck: ReasonBarred, wantProc: pathReset},
		{name: "method", path: pathSet, origin: appOrigin, acrm: "GET", wantCheck: ReasonMethod, wantDetail: "GET", wantProc: pathSet},
		{name: "header", path: pathSet, origin: appOrigin, acrm: "POST", acrh: "content-type,x-secret", wantCheck: ReasonHeader, wantDetail: "x-secret", wantProc: pathSet},
		{name: "allowed", path: pathSet, origin: appOrigin, acrm: "POST", wantCheck: ReasonOK, wantProc: pathSet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf testutil.SyncBuffer
			var verdicts []Verdict
			logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			p := mustNew(t, WithAllowedOrigins(appOrigin), WithLogger(logger), WithObserver(func(v Verdict) { verdicts = append(verdicts, v) }))
			h := p.Handler(greetTable(t), http.NotFoundHandler())
			r := httptest.NewRequest(http.MethodOptions, tt.path, nil)
			r.Header.Set(hOrigin, tt.origin)
			r.Header.Set(hACRM, tt.acrm)
			if tt.acrh != "" {
				r.Header.Set(hACRH, tt.acrh)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			want := Verdict{Preflight: true, Allowed: tt.wantCheck == ReasonOK, Reason: tt.wantCheck, Procedure: tt.wantProc}
			if len(verdicts) != 1 || verdicts[0] != want {
				t.Errorf("verdicts = %+v, want [%+v]", verdicts, want)
			}
			logged := buf.String()
			if tt.wantCheck == ReasonOK {
				if logged != "" {
					t.Errorf("allowed preflight logged %q", logged)
				}
				return
			}
			for _, s := range []string{"level=DEBUG", "preflight refused", "check=" + tt.wantCheck.String(), "detail=" + tt.wantDetail} {
				if !strings.Contains(logged, s) {
					t.Errorf("log = %q, want it to contain %q", logged, s)
				}
			}
		})
	}
}

// assertHeaders checks exact single values; "" means the header is absent.
func assertHeaders(tb testing.TB, got http.Header, want map[string]string) {
	tb.Helper()
	for k, v := range want {
		vals := got.Values(k)
		switch {
		case v == "" && len(vals) != 0:
			tb.Errorf("%s = %q, want absent", k, vals)
		case v != "" && (len(vals) != 1 || vals[0] != v):
			tb.Errorf("%s = %q, want [%q]", k, vals, v)
		}
	}
}
