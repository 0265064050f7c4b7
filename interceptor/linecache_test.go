package interceptor

import (
	"net/http"
	"strings"
	"sync"
	"testing"
)

func TestLineCache(t *testing.T) {
	t.Parallel()
	for n := 0; n <= 8*lineCacheWords+2; n++ {
		line := strings.Repeat("abcdefghij", 14)[:n]
		var c lineCache
		c.store(line)
		fits := n >= 8 && n <= 8*lineCacheWords
		if got := c.has(line); got != fits {
			t.Errorf("len %d: has after store = %v, want %v", n, got, fits)
		}
		for i := range n {
			// Every byte counts, whichever word holds it.
			other := line[:i] + "#" + line[i+1:]
			if c.has(other) {
				t.Errorf("len %d: has(%q) = true after store(%q)", n, other, line)
			}
		}
		if n > 0 && c.has(line[:n-1]) {
			t.Errorf("len %d: has(prefix) = true", n)
		}
		if c.has(line + "k") {
			t.Errorf("len %d: has(longer) = true", n)
		}
		if fits {
			next := strings.ToUpper(line)
			c.store(next)
			if c.has(line) || !c.has(next) {
				t.Errorf("len %d: a second store did not replace the first", n)
			}
		}
	}
}

// TestLineCacheConcurrent stores two lines of the same length from several
// goroutines while others look up every line made of the start of one and
// the rest of the other, split at a word: a reader that mixed two stores
// would find one. Under the race detector it also shows that the cache is
// race-free.
func TestLineCacheConcurrent(t *testing.T) {
	t.Parallel()
	a := strings.Repeat("a", 8*lineCacheWords)
	b := strings.Repeat("b", 8*lineCacheWords)
	var mixed []string
	for i := 8; i < len(a); i += 8 {
		mixed = append(mixed, a[:i]+b[i:], b[:i]+a[i:])
	}
	var c lineCache
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			for i := range 20000 {
				if (g+i)%2 == 0 {
					c.store(a)
				} else {
					c.store(b)
				}
			}
		})
		wg.Go(func() {
			for range 2000 {
				for _, m := range mixed {
					if c.has(m) {
						t.Errorf("has(%q) = true: never stored", m)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	if !c.has(a) && !c.has(b) {
		t.Error("neither stored line is cached once the stores are done")
	}
}

// TestPreflightRemembersGrantedLine checks that the line a route remembers
// grants only itself: other lines to the same route are checked in full.
func TestPreflightRemembersGrantedLine(t *testing.T) {
	t.Parallel()
	h := mustNew(t, WithAllowedOrigins(appOrigin)).Handler(greetTable(t), noop)
	for _, tt := range []struct {
		acrh string
		want int
	}{
		{acrh: "connect-protocol-version,content-type", want: http.StatusNoContent},
		{acrh: "connect-protocol-version,content-type", want: http.StatusNoContent},
		{acrh: "connect-protocol-version,content-typf", want: http.StatusForbidden},
		{acrh: "connect-protocol-version,content-type,x-secret", want: http.StatusForbidden},
		{acrh: "Connect-Protocol-Version, Content-Type", want: http.StatusNoContent},
		{acrh: "connect-protocol-version,content-type", want: http.StatusNoContent},
		{acrh: "x-secret,connect-protocol-version", want: http.StatusForbidden},
	} {
		w := &fakeWriter{header: make(http.Header)}
		h.ServeHTTP(w, preflightRequest(pathSet, appOrigin, "POST", tt.acrh))
		if w.code != tt.want {
			t.Errorf("ACRH %q: status %d, want %d", tt.acrh, w.code, tt.want)
		}
	}
}

// TestLineCacheZeroAllocs holds preflights whose lines keep replacing each
// other in the cache to zero allocations, as TestZeroAllocs does for one
// line.
func TestLineCacheZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items and allocates")
	}
	h := mustNew(t, WithAllowedOrigins(appOrigin)).Handler(greetTable(t), noop)
	reqs := []*http.Request{
		preflightRequest(pathSet, appOrigin, "POST", "connect-protocol-version,content-type"),
		preflightRequest(pathSet, appOrigin, "POST", "content-type,x-grpc-web,x-user-agent"),
	}
	w := &fakeWriter{header: make(http.Header)}
	i := 0
	if n := testing.AllocsPerRun(200, func() {
		clear(w.header)
		h.ServeHTTP(w, reqs[i%2])
		i++
	}); n != 0 {
		t.Errorf("allocs per request = %v, want 0", n)
	}
	if w.code != http.StatusNoContent {
		t.Errorf("status %d, want %d", w.code, http.StatusNoContent)
	}
}
