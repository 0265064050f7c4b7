package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/corsgate/corsgate/gateway"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/testutil"
)

// TestOriginBypassCorpusThroughGateway runs the origin bypass corpus (see
// internal/testutil/origins.go) through a gateway in front of greetd, the
// way the interceptor's own test runs it through the middleware: a
// preflight and an actual request (a Connect GET of Greet) per origin,
// strict or not, and exactly the origins the reference allows get
// Access-Control-Allow-Origin, byte for byte.
func TestOriginBypassCorpusThroughGateway(t *testing.T) {
	t.Parallel()
	ref := testutil.NewOriginReference(t)
	corpus := testutil.OriginCorpus()
	backend := startBackend(t, nil)
	for _, strict := range []bool{false, true} {
		name := map[bool]string{false: "default", true: "strict"}[strict]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			policy, err := interceptor.New(interceptor.WithAllowedOrigins(testutil.CorpusOrigins...), interceptor.WithStrict(strict))
			if err != nil {
				t.Fatal(err)
			}
			g, _ := startGateway(t, backend, func(c *gateway.Config) { c.Policy = policy })
			waitReady(t, g)
			var mu sync.Mutex
			var bypasses, refused []string
			var wg sync.WaitGroup
			work := make(chan string)
			for range 4 {
				wg.Go(func() {
					for o := range work {
						want := ref.Allows(o)
						for _, preflight := range []bool{true, false} {
							var r *http.Request
							if preflight {
								r, _ = http.NewRequest(http.MethodOptions, "http://gateway"+greetPath+"Greet", nil)
								r.Header.Set("Access-Control-Request-Method", "POST")
								r.Header.Set("Access-Control-Request-Headers", "content-type")
							} else {
								r, _ = http.NewRequest(http.MethodGet, "http://gateway"+greetPath+"Greet?encoding=json&message=%7B%7D", nil)
							}
							r.Header["Origin"] = []string{o}
							w := httptest.NewRecorder()
							g.ServeHTTP(w, r)
							acao, got := w.Header()["Access-Control-Allow-Origin"]
							mu.Lock()
							switch {
							case got && !want:
								bypasses = append(bypasses, testutil.Short(o))
							case !got && want:
								refused = append(refused, testutil.Short(o))
							case got && (len(acao) != 1 || acao[0] != o):
								t.Errorf("origin %q got Access-Control-Allow-Origin %q, want it byte for byte", o, acao)
							}
							mu.Unlock()
							if !preflight && strict && !got && w.Code == http.StatusOK {
								t.Errorf("origin %q: strict mode let a refused call through", o)
							}
						}
					}
				})
			}
			for _, o := range corpus {
				work <- o
			}
			close(work)
			wg.Wait()
			if len(bypasses) > 0 {
				t.Errorf("%d bypasses through the gateway: %s", len(bypasses), strings.Join(bypasses, ", "))
			}
			if len(refused) > 0 {
				t.Errorf("%d legitimate origins refused by the gateway: %s", len(refused), strings.Join(refused, ", "))
			}
		})
	}
}
