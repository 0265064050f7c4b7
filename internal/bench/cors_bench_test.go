package main

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/interceptor"
)

// The CORS layer alone, corsgate's interceptor next to rs/cors v1.11.1
// configured with connectrpc.com/cors's lists, one request at a time on a
// reused writer: run with
//
//	go test -run='^$' -bench=. -benchmem -count=5 ./internal/bench
//
// and compare each case's corsgate and rscors sub-benchmarks (cpu-ns/op
// holds steady on a shared machine). The zero-allocation guarantee of the
// hot paths is a test of the interceptor package itself (TestZeroAllocs).

const (
	pathGreet = "/greet.v1.GreetService/Greet"
	pathSet   = "/greet.v1.GreetService/SetGreeting"
	appOrigin = "https://app.example.com"
)

var varyOrigin = []string{"Origin"}

// fakeWriter is a ResponseWriter whose header map is reused, as rs/cors's
// own benchmarks do, so allocations measured are the middleware's.
type fakeWriter struct {
	header http.Header
	code   int
}

func (w *fakeWriter) Header() http.Header         { return w.header }
func (w *fakeWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *fakeWriter) WriteHeader(code int)        { w.code = code }

var noop = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })

func newPolicy(tb testing.TB, opts ...interceptor.Option) *interceptor.Policy {
	tb.Helper()
	p, err := interceptor.New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func greetTable(tb testing.TB) *interceptor.Table {
	tb.Helper()
	s, err := interceptor.ServiceOf(greetv1.File_greet_v1_greet_proto.Services().ByName("GreetService"))
	if err != nil {
		tb.Fatal(err)
	}
	t, err := interceptor.NewTable(s)
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// peers returns corsgate and rs/cors v1.11.1 configured with
// connectrpc.com/cors's lists (plus extra allowed headers), both allowing
// origins.
func peers(tb testing.TB, origins []string, extraHeaders ...string) (corsgate, rscors http.Handler) {
	tb.Helper()
	return peersAround(tb, noop, origins, extraHeaders...)
}

// peersAround is peers with next as the wrapped handler.
func peersAround(tb testing.TB, next http.Handler, origins []string, extraHeaders ...string) (corsgate, rscors http.Handler) {
	tb.Helper()
	p := newPolicy(tb, interceptor.WithAllowedOrigins(origins...))
	rs := cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: connectcors.AllowedMethods(),
		AllowedHeaders: append(connectcors.AllowedHeaders(), extraHeaders...),
		ExposedHeaders: connectcors.ExposedHeaders(),
		MaxAge:         7200,
	})
	return p.Handler(greetTable(tb), next), rs.Handler(next)
}

func preflightRequest(path, origin, method, acrh string) *http.Request {
	r := httptest.NewRequest(http.MethodOptions, path, nil)
	r.Header.Set("Origin", origin)
	r.Header.Set("Access-Control-Request-Method", method)
	if acrh != "" {
		r.Header.Set("Access-Control-Request-Headers", acrh)
	}
	return r
}

func actualRequest(path, origin string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, nil)
	if origin != "" {
		r.Header.Set("Origin", origin)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Connect-Protocol-Version", "1")
	return r
}

// runPeers runs the same request through both peers, as sub-benchmarks
// "corsgate" and "rscors". wantStatus checks corsgate's answer once.
func runPeers(b *testing.B, corsgate, rscors http.Handler, r *http.Request, wantStatus int) {
	b.Helper()
	w := &fakeWriter{header: make(http.Header)}
	corsgate.ServeHTTP(w, r)
	if w.code != wantStatus {
		b.Fatalf("corsgate status = %d, want %d", w.code, wantStatus)
	}
	runHandlers(b, r, namedHandler{name: "corsgate", h: corsgate}, namedHandler{name: "rscors", h: rscors})
}

type namedHandler struct {
	name string
	h    http.Handler
}

// runHandlers runs r through each handler as a sub-benchmark of that name.
// Besides ns/op it reports cpu-ns/op where the OS tells a thread's CPU time
// (see threadCPU): compare peers with it on a busy machine.
func runHandlers(b *testing.B, r *http.Request, handlers ...namedHandler) {
	b.Helper()
	for _, peer := range handlers {
		b.Run(peer.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			w := &fakeWriter{header: make(http.Header)}
			b.ReportAllocs()
			n := 0
			start, ok := threadCPU()
			for b.Loop() {
				clear(w.header)
				peer.h.ServeHTTP(w, r)
				n++
			}
			if end, _ := threadCPU(); ok && n > 0 {
				b.ReportMetric(float64(end-start)/float64(n), "cpu-ns/op")
			}
		})
	}
}

func BenchmarkPreflight(b *testing.B) {
	cg, rs := peers(b, []string{appOrigin})
	runPeers(b, cg, rs, preflightRequest(pathSet, appOrigin, "POST", "connect-protocol-version,content-type"), http.StatusNoContent)
}

func BenchmarkPreflightDeclaredHeaders(b *testing.B) {
	cg, rs := peers(b, []string{appOrigin}, "Authorization", "X-Request-Id")
	runPeers(b, cg, rs, preflightRequest(pathGreet, appOrigin, "GET", "authorization,connect-protocol-version,x-request-id"), http.StatusNoContent)
}

func BenchmarkPreflightSubdomain(b *testing.B) {
	cg, rs := peers(b, []string{"https://*.example.com"})
	runPeers(b, cg, rs, preflightRequest(pathSet, "https://app.example.com", "POST", "connect-protocol-version,content-type"), http.StatusNoContent)
}

func BenchmarkPreflightRefusedOrigin(b *testing.B) {
	cg, rs := peers(b, []string{appOrigin})
	runPeers(b, cg, rs, preflightRequest(pathSet, "https://evil.example.net", "POST", "connect-protocol-version,content-type"), http.StatusForbidden)
}

func BenchmarkPreflightUnknownProcedure(b *testing.B) {
	// rs/cors knows no procedures: it grants this one.
	cg, rs := peers(b, []string{appOrigin})
	runPeers(b, cg, rs, preflightRequest("/greet.v1.GreetService/Nope", appOrigin, "POST", "connect-protocol-version,content-type"), http.StatusForbidden)
}

func BenchmarkPreflightHostileACRH(b *testing.B) {
	for _, size := range []struct {
		name string
		n    int
	}{{name: "1KiB", n: 1 << 10}, {name: "1MiB", n: 1 << 20}} {
		b.Run(size.name, func(b *testing.B) {
			cg, rs := peers(b, []string{appOrigin})
			runPeers(b, cg, rs, preflightRequest(pathSet, appOrigin, "POST", strings.Repeat(",", size.n)), http.StatusForbidden)
		})
	}
}

func BenchmarkActual(b *testing.B) {
	cg, rs := peers(b, []string{appOrigin})
	runPeers(b, cg, rs, actualRequest(pathSet, appOrigin), http.StatusOK)
}

// BenchmarkActualHandlerHeaders is Actual with a handler that sets its own
// headers before answering, as every RPC handler does (connect-go sets the
// content type and the encodings it accepts), so the writer's check after
// the handler sees a map holding more than the CORS headers.
func BenchmarkActualHandlerHeaders(b *testing.B) {
	ct, ae := []string{"application/json"}, []string{"gzip"}
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"] = ct
		h["Accept-Encoding"] = ae
		w.WriteHeader(http.StatusOK)
	})
	cg, rs := peersAround(b, next, []string{appOrigin})
	runPeers(b, cg, rs, actualRequest(pathSet, appOrigin), http.StatusOK)
}

func BenchmarkActualSubdomain(b *testing.B) {
	cg, rs := peers(b, []string{"https://*.example.com"})
	runPeers(b, cg, rs, actualRequest(pathSet, "https://app.example.com"), http.StatusOK)
}

func BenchmarkActualRefusedOrigin(b *testing.B) {
	cg, rs := peers(b, []string{appOrigin})
	runPeers(b, cg, rs, actualRequest(pathSet, "https://evil.example.net"), http.StatusOK)
}

// BenchmarkActualFloor measures no CORS layer but the least any can cost
// here for a granted actual request: read Origin, write Vary,
// Access-Control-Allow-Origin and Access-Control-Expose-Headers, from
// precomputed values, with no check and no writer wrapper, next to rs/cors.
// Those three map writes and the harness's clear of the header map are most
// of the Actual cases' time, so floor/rscors is the best ratio any
// implementation of the Actual cases could reach in this harness.
func BenchmarkActualFloor(b *testing.B) {
	floor := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		floorHeaders(w, r)
		noop.ServeHTTP(w, r)
	})
	// floor+guard adds to the floor only what the guarantee of no doubled
	// CORS header needs, with nothing of corsgate's: a pooled wrapper of
	// the writer and, before the header goes out, one lookup of each header
	// the layer set (a handler's Set replaces the slice, which only a
	// lookup sees). It is the floor of any layer that keeps that guarantee.
	guard := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		floorHeaders(w, r)
		gw := guardPool.Get().(*guardWriter)
		gw.ResponseWriter, gw.vary, gw.acao, gw.aceh = w, varyOrigin, floorACAO, floorACEH
		noop.ServeHTTP(gw, r)
		*gw = guardWriter{}
		guardPool.Put(gw)
	})
	_, rs := peers(b, []string{appOrigin})
	runHandlers(b, actualRequest(pathSet, appOrigin), namedHandler{name: "floor", h: floor},
		namedHandler{name: "floor+guard", h: guard}, namedHandler{name: "rscors", h: rs})
}

// The floor's header values, built once.
var floorACAO, floorACEH = []string{appOrigin}, []string{"Grpc-Status, Grpc-Message, Grpc-Status-Details-Bin"}

// floorHeaders is the floor's whole CORS work: read Origin and write Vary,
// and for the allowed origin ACAO and ACEH, from precomputed values.
func floorHeaders(w http.ResponseWriter, r *http.Request) {
	origin := r.Header["Origin"]
	hdr := w.Header()
	hdr["Vary"] = varyOrigin
	if len(origin) == 1 && origin[0] == appOrigin {
		hdr["Access-Control-Allow-Origin"] = floorACAO
		hdr["Access-Control-Expose-Headers"] = floorACEH
	}
}

// guardWriter is floor+guard's writer: at WriteHeader it checks that the
// headers it was given still hold their slices.
type guardWriter struct {
	http.ResponseWriter
	vary, acao, aceh []string
}

var guardPool = sync.Pool{New: func() any { return new(guardWriter) }}

func (g *guardWriter) WriteHeader(code int) {
	h := g.ResponseWriter.Header()
	if !same(h["Vary"], g.vary) || !same(h["Access-Control-Allow-Origin"], g.acao) ||
		!same(h["Access-Control-Expose-Headers"], g.aceh) || h["Access-Control-Allow-Credentials"] != nil {
		panic("floor+guard: a header changed")
	}
	g.ResponseWriter.WriteHeader(code)
}

func same(a, b []string) bool { return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0] }
