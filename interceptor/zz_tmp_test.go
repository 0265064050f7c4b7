package interceptor

import (
	"net/http"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

func threadCPU() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// cpuLoop runs f b.N times and reports thread CPU ns/op.
func cpuLoop(b *testing.B, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	n := 0
	start := threadCPU()
	for b.Loop() {
		f()
		n++
	}
	b.ReportMetric(float64(threadCPU()-start)/float64(n), "cpu-ns/op")
}

func BenchmarkTmpCheckHeaders(b *testing.B) {
	p := mustNew(b, WithAllowedOrigins(appOrigin))
	h := p.Handler(greetTable(b), noop).(*handler)
	rt := h.route(pathSet)
	lines := []string{"connect-protocol-version,content-type"}
	cpuLoop(b, func() {
		if _, ok := rt.checkHeaders(lines); !ok {
			b.Fatal()
		}
	})
}

func BenchmarkTmpOrigin(b *testing.B) {
	p := mustNew(b, WithAllowedOrigins(appOrigin))
	h := p.Handler(greetTable(b), noop).(*handler)
	o := []string{appOrigin}
	cpuLoop(b, func() {
		if h.checkOrigin(o) == nil {
			b.Fatal()
		}
	})
}

func BenchmarkTmpRoute(b *testing.B) {
	p := mustNew(b, WithAllowedOrigins(appOrigin))
	h := p.Handler(greetTable(b), noop).(*handler)
	cpuLoop(b, func() {
		if h.route(pathSet) == nil {
			b.Fatal()
		}
	})
}

func tmpPeers(b *testing.B, name string, r *http.Request, origins []string, extra ...string) {
	cg, rs := peers(b, origins, extra...)
	for _, pe := range []struct {
		name string
		h    http.Handler
	}{{"corsgate", cg}, {"rscors", rs}} {
		b.Run(name+"/"+pe.name, func(b *testing.B) {
			w := &fakeWriter{header: make(http.Header)}
			cpuLoop(b, func() {
				clear(w.header)
				pe.h.ServeHTTP(w, r)
			})
		})
	}
}

func BenchmarkTmpAll(b *testing.B) {
	tmpPeers(b, "Preflight", preflightRequest(pathSet, appOrigin, "POST", "connect-protocol-version,content-type"), []string{appOrigin})
	tmpPeers(b, "PreflightDeclaredHeaders", preflightRequest(pathGreet, appOrigin, "GET", "authorization,connect-protocol-version,x-request-id"), []string{appOrigin}, "Authorization", "X-Request-Id")
	tmpPeers(b, "PreflightSubdomain", preflightRequest(pathSet, "https://app.example.com", "POST", "connect-protocol-version,content-type"), []string{"https://*.example.com"})
	tmpPeers(b, "PreflightRefusedOrigin", preflightRequest(pathSet, "https://evil.example.net", "POST", "connect-protocol-version,content-type"), []string{appOrigin})
	tmpPeers(b, "PreflightUnknownProcedure", preflightRequest("/greet.v1.GreetService/Nope", appOrigin, "POST", "connect-protocol-version,content-type"), []string{appOrigin})
	tmpPeers(b, "PreflightHostileACRH/1KiB", preflightRequest(pathSet, appOrigin, "POST", strings.Repeat(",", 1<<10)), []string{appOrigin})
	tmpPeers(b, "PreflightHostileACRH/1MiB", preflightRequest(pathSet, appOrigin, "POST", strings.Repeat(",", 1<<20)), []string{appOrigin})
	tmpPeers(b, "Actual", actualRequest(pathSet, appOrigin), []string{appOrigin})
	tmpPeers(b, "ActualSubdomain", actualRequest(pathSet, "https://app.example.com"), []string{"https://*.example.com"})
	tmpPeers(b, "ActualRefusedOrigin", actualRequest(pathSet, "https://evil.example.net"), []string{appOrigin})
}

func BenchmarkTmpFloor(b *testing.B) {
	acao := []string{appOrigin}
	aceh := []string{"Grpc-Status, Grpc-Message"}
	vary := []string{"Origin"}
	floor := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o := r.Header["Origin"]
		h := w.Header()
		h["Vary"] = vary
		if len(o) == 1 {
			h["Access-Control-Allow-Origin"] = acao
			h["Access-Control-Expose-Headers"] = aceh
		}
		noop.ServeHTTP(w, r)
	})
	_, rs := peers(b, []string{appOrigin})
	r := actualRequest(pathSet, appOrigin)
	for _, pe := range []struct {
		name string
		h    http.Handler
	}{{"floor", floor}, {"rscors", rs}} {
		b.Run(pe.name, func(b *testing.B) {
			w := &fakeWriter{header: make(http.Header)}
			cpuLoop(b, func() {
				clear(w.header)
				pe.h.ServeHTTP(w, r)
			})
		})
	}
}
