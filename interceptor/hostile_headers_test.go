package interceptor

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// hardHostileACRH are Access-Control-Request-Headers a browser never sends,
// built to cost a naive parser time or memory (GHSA-mh55-gqvf-xfwm), each
// with the lines of one request.
func hardHostileACRH() []struct {
	name  string
	lines []string
} {
	many := func(n int, line string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = line
		}
		return out
	}
	name8K := strings.Repeat("a", 8<<10)
	return []struct {
		name  string
		lines []string
	}{
		{name: "1 MiB of commas", lines: []string{strings.Repeat(",", 1<<20)}},
		{name: "1 MiB of comma-space", lines: []string{strings.Repeat(", ", 1<<19)}},
		{name: "1 MiB of allowed names", lines: []string{strings.Repeat("content-type,", (1<<20)/13)}},
		{name: "10 000 lines of an allowed name", lines: many(10000, "content-type")},
		{name: "10 000 empty lines", lines: many(10000, "")},
		{name: "10 000 lines of commas", lines: many(10000, ",,,,")},
		{name: "65 allowed names", lines: []string{strings.TrimSuffix(strings.Repeat("content-type,", 65), ",")}},
		{name: "17 empty elements", lines: []string{"content-type" + strings.Repeat(",", 18) + "x-grpc-web"}},
		{name: "NUL in a name", lines: []string{"content-type\x00"}},
		{name: "control bytes", lines: []string{"x-grpc-web,\x01\x02\x03"}},
		{name: "DEL", lines: []string{"content\x7ftype"}},
		{name: "CR LF inside", lines: []string{"content-type\r\nx-evil: 1"}},
		{name: "tab inside a name", lines: []string{"content-type\tx-grpc-web"}},
		{name: "space inside a name", lines: []string{"content type"}},
		{name: "colon", lines: []string{"content-type:"}},
		{name: "non-ASCII", lines: []string{"content-typé"}},
		{name: "UTF-8 lookalike", lines: []string{"соntent-type"}}, // Cyrillic о
		{name: "8 KiB name", lines: []string{name8K}},
		{name: "8 KiB name after allowed ones", lines: []string{"content-type,x-grpc-web," + name8K}},
		{name: "8 KiB name, 1000 lines", lines: many(1000, name8K)},
		{name: "allowed name plus one byte", lines: []string{"content-typee"}},
		{name: "authorization not declared", lines: []string{"authorization"}},
	}
}

// TestHostileRequestHeaders sends each hostile header list in a
// preflight for a procedure that would otherwise be allowed, and checks that
// it is refused without CORS headers, without allocating, in bounded time,
// and that the same preflight with a sane list is granted. Not parallel:
// testing.AllocsPerRun refuses to run beside parallel tests.
func TestHostileRequestHeaders(t *testing.T) {
	p := mustNew(t, WithAllowedOrigins(appOrigin))
	h := p.Handler(greetTable(t), noop)

	control := preflightRequest(pathSet, appOrigin, "POST", "content-type,x-grpc-web")
	w := &fakeWriter{header: make(http.Header)}
	h.ServeHTTP(w, control)
	if w.code != http.StatusNoContent {
		t.Fatalf("control preflight: status %d, want 204", w.code)
	}

	for _, tt := range hardHostileACRH() {
		t.Run(tt.name, func(t *testing.T) {
			r := preflightRequest(pathSet, appOrigin, "POST", "")
			r.Header[hACRH] = tt.lines
			w := &fakeWriter{header: make(http.Header)}
			h.ServeHTTP(w, r)
			if w.code != http.StatusForbidden {
				t.Fatalf("status %d, want 403", w.code)
			}
			for _, k := range []string{hACAO, hACAH, hACAM, hACAC, hMaxAge} {
				if v, ok := w.header[k]; ok {
					t.Errorf("refused preflight carries %s: %q", k, v)
				}
			}
			if got := w.header.Get(hVary); got != varyPreflight {
				t.Errorf("Vary %q, want %q", got, varyPreflight)
			}

			// Time: 200 refusals of the worst inputs take microseconds each
			// on an idle machine; the bound leaves room for a busy one while
			// catching a parser that walks every byte of 1 MiB (about 1 ms
			// each, 200 ms for the loop) more than once.
			const rounds = 200
			start := time.Now()
			for range rounds {
				clear(w.header)
				h.ServeHTTP(w, r)
			}
			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("%d refusals took %v, want under 500ms", rounds, took)
			}

			if raceEnabled {
				return // the race detector makes sync.Pool drop items and allocate
			}
			if n := testing.AllocsPerRun(rounds, func() {
				clear(w.header)
				h.ServeHTTP(w, r)
			}); n != 0 {
				t.Errorf("allocations per refusal = %v, want 0", n)
			}
		})
	}
}

// TestHostileRequestHeadersMemory measures the bytes allocated
// while refusing every hostile list 100 times: nothing proportional to the
// input may be allocated (the inputs total several MiB per round).
func TestHostileRequestHeadersMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	// Not parallel: MemStats counts the whole process.
	p := mustNew(t, WithAllowedOrigins(appOrigin))
	h := p.Handler(greetTable(t), noop)
	var reqs []*http.Request
	for _, tt := range hardHostileACRH() {
		r := preflightRequest(pathSet, appOrigin, "POST", "")
		r.Header[hACRH] = tt.lines
		reqs = append(reqs, r)
	}
	w := &fakeWriter{header: make(http.Header)}
	for _, r := range reqs {
		h.ServeHTTP(w, r) // warm the pools
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range 100 {
		for _, r := range reqs {
			clear(w.header)
			h.ServeHTTP(w, r)
			if w.code != http.StatusForbidden {
				t.Fatalf("status %d", w.code)
			}
		}
	}
	runtime.ReadMemStats(&after)
	// 2200 refusals; anything the runtime or a parallel test allocates
	// meanwhile also counts, hence a bound well above zero but far below
	// one copy of one input (1 MiB).
	if got := after.TotalAlloc - before.TotalAlloc; got > 256<<10 {
		t.Errorf("refusing %d hostile preflights allocated %d bytes, want under 256 KiB", 100*len(reqs), got)
	}
}

// TestHostileActualRequest sends an actual (non-preflight) request
// with hostile headers: they are the backend's business, but the CORS
// layer must not spend time or memory on them and must still answer CORS
// by the Origin alone.
func TestHostileActualRequest(t *testing.T) {
	t.Parallel()
	p := mustNew(t, WithAllowedOrigins(appOrigin))
	h := p.Handler(greetTable(t), noop)
	r := actualRequest(pathSet, appOrigin)
	r.Header[hACRH] = []string{strings.Repeat(",", 1<<20)}
	r.Header["X-Junk"] = make([]string, 10000)
	w := &fakeWriter{header: make(http.Header)}
	start := time.Now()
	h.ServeHTTP(w, r)
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("took %v", took)
	}
	if w.code != http.StatusOK || w.header.Get(hACAO) != appOrigin {
		t.Errorf("status %d, ACAO %q; want the next handler's 200 with ACAO %q", w.code, w.header.Get(hACAO), appOrigin)
	}
	// Several Origin lines: ambiguous, never echoed.
	r = actualRequest(pathSet, appOrigin)
	r.Header[hOrigin] = []string{appOrigin, "https://evil.example"}
	w = &fakeWriter{header: make(http.Header)}
	h.ServeHTTP(w, r)
	if v, ok := w.header[hACAO]; ok {
		t.Errorf("two Origin lines got ACAO %q", v)
	}
	r = preflightRequest(pathSet, appOrigin, "POST", "content-type")
	r.Header[hOrigin] = []string{appOrigin, appOrigin}
	w = &fakeWriter{header: make(http.Header)}
	h.ServeHTTP(w, r)
	if w.code != http.StatusForbidden {
		t.Errorf("preflight with two Origin lines: status %d, want 403", w.code)
	}
	// Several Access-Control-Request-Method lines.
	r = preflightRequest(pathSet, appOrigin, "POST", "content-type")
	r.Header[hACRM] = []string{"POST", "POST"}
	w = &fakeWriter{header: make(http.Header)}
	h.ServeHTTP(w, r)
	if w.code != http.StatusForbidden {
		t.Errorf("preflight with two ACRM lines: status %d, want 403", w.code)
	}
}
