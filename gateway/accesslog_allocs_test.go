//go:build !race

package gateway

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"google.golang.org/protobuf/reflect/protodesc"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/testutil"
)

// discardWriter is a ResponseWriter whose header map is reused, so that the
// allocations measured are the gateway's.
type discardWriter struct {
	header http.Header
	code   int
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// TestAccessLogOffAllocs: with no access log, a preflight through the
// gateway allocates nothing (the CORS policy's answers are precomputed, and
// the access log costs a nil check); with one, the same request allocates,
// so the measure sees the access log's path.
// Built without -race: the race detector allocates.
func TestAccessLogOffAllocs(t *testing.T) {
	files, err := protodesc.NewFiles(testutil.DescriptorSet(greetv1.File_greet_v1_greet_proto))
	if err != nil {
		t.Fatal(err)
	}
	policy, err := interceptor.New(interceptor.WithAllowedOrigins("https://app.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	preflight := func(path, origin string) *http.Request {
		r := httptest.NewRequest(http.MethodOptions, path, nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", "POST")
		r.Header.Set("Access-Control-Request-Headers", "content-type,traceparent")
		return r
	}
	requests := []struct {
		name string
		r    *http.Request
	}{
		{name: "allowed", r: preflight("/greet.v1.GreetService/Greet", "https://app.example.com")},
		{name: "refused origin", r: preflight("/greet.v1.GreetService/Greet", "https://evil.example.net")},
		{name: "unknown procedure", r: preflight("/greet.v1.GreetService/Nope", "https://app.example.com")},
	}
	for _, on := range []bool{false, true} {
		cfg := Config{Backend: "127.0.0.1:1", Files: files, Policy: policy, Logger: slog.New(slog.DiscardHandler)}
		if on {
			cfg.AccessLog = slog.New(slog.DiscardHandler)
		}
		g, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = g.Close() })
		for _, tc := range requests {
			w := &discardWriter{header: http.Header{}}
			g.ServeHTTP(w, tc.r)
			n := testing.AllocsPerRun(200, func() {
				clear(w.header)
				g.ServeHTTP(w, tc.r)
			})
			switch {
			case !on && n != 0:
				t.Errorf("access log off, preflight %s: %v allocations per request, want 0", tc.name, n)
			case on && n == 0:
				t.Errorf("access log on, preflight %s: no allocation; the measure misses the access log", tc.name)
			}
		}
	}
}
