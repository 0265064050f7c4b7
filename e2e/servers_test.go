package e2e

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/corsgate/corsgate/example/web"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// mode is how the API is served.
type mode string

const (
	// dropIn: connect-go's handler wrapped by the interceptor, as `corsgate demo` does.
	dropIn mode = "drop-in"
	// viaGateway: the gateway in front of greetd's grpc-go server, as `corsgate serve` does.
	viaGateway mode = "gateway"
)

var modes = []mode{dropIn, viaGateway}

// envConfig says how to start an env.
type envConfig struct {
	mode        mode
	credentials bool
	strict      bool
}

// env is one two-origin setup: the page on origin A (allowed), the same page
// on origin C (not allowed), and the API on origin B.
type env struct {
	mode mode
	// pageURL is origin A, allowed by the policy.
	pageURL string
	// otherURL is origin C, which the policy does not allow.
	otherURL string
	// apiURL is origin B.
	apiURL string
	// calls sees every call that reached the service.
	calls *callLog
	// requests sees every HTTP request that reached origin B, preflights
	// included, before any CORS handling.
	requests *requestLog
}

// cookiePath on the API origin sets the cookie named by ?name= to ?value=
// (SameSite=Lax, HttpOnly): a cookie of origin B for the credentials tests.
const cookiePath = "/e2e/set-cookie"

// startEnv starts the three origins on 127.0.0.1; they stop when the test ends.
func startEnv(t *testing.T, cfg envConfig) *env {
	t.Helper()
	page := httptest.NewServer(http.FileServerFS(web.FS))
	t.Cleanup(page.Close)
	other := httptest.NewServer(http.FileServerFS(web.FS))
	t.Cleanup(other.Close)

	policy, err := interceptor.New(
		interceptor.WithAllowedOrigins(page.URL),
		interceptor.WithCredentials(cfg.credentials),
		interceptor.WithStrict(cfg.strict),
	)
	if err != nil {
		t.Fatal(err)
	}
	calls := &callLog{}
	greeter := &greetsvc.Greeter{Record: calls.add}

	mux := http.NewServeMux()
	mux.HandleFunc("GET "+cookiePath, setCookie)
	switch cfg.mode {
	case dropIn:
		mux.Handle(policy.Wrap(greetv1connect.NewGreetServiceHandler(greetsvc.NewConnect(greeter))))
	case viaGateway:
		mux.Handle("/", startGateway(t, greeter, policy))
	default:
		t.Fatalf("unknown mode %q", cfg.mode)
	}
	requests := &requestLog{}
	api := httptest.NewUnstartedServer(requests.wrap(mux))
	api.Config.Protocols = new(http.Protocols)
	api.Config.Protocols.SetHTTP1(true)
	api.Config.Protocols.SetUnencryptedHTTP2(true)
	api.Start()
	t.Cleanup(api.Close)
	return &env{mode: cfg.mode, pageURL: page.URL, otherURL: other.URL, apiURL: api.URL, calls: calls, requests: requests}
}

func setCookie(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	http.SetCookie(w, &http.Cookie{
		Name:     q.Get("name"),
		Value:    q.Get("value"),
		Path:     "/",
		HttpOnly: true,
		SameSite: http.SameSiteLaxMode,
	})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("cookie set\n"))
}

// callLog keeps every call the service saw.
type callLog struct {
	mu    sync.Mutex
	calls []greetsvc.Call
}

func (l *callLog) add(c greetsvc.Call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, c)
}

// withRequestID returns the calls whose x-request-id is id.
func (l *callLog) withRequestID(id string) []greetsvc.Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []greetsvc.Call
	for _, c := range l.calls {
		if slices.Contains(c.Header.Values("X-Request-Id"), id) {
			out = append(out, c)
		}
	}
	return out
}

// count returns how many calls of the procedure arrived.
func (l *callLog) count(procedure string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.calls {
		if c.Procedure == procedure {
			n++
		}
	}
	return n
}

// request is what origin B saw of one HTTP request.
type request struct {
	method string
	path   string
	header http.Header
}

// requestLog keeps every HTTP request that reached origin B.
type requestLog struct {
	mu   sync.Mutex
	reqs []request
}

func (l *requestLog) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.reqs = append(l.reqs, request{method: r.Method, path: r.URL.Path, header: r.Header.Clone()})
		l.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

// withRequestID returns the requests whose x-request-id is id.
func (l *requestLog) withRequestID(id string) []request {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []request
	for _, r := range l.reqs {
		if slices.Contains(r.header.Values("X-Request-Id"), id) {
			out = append(out, r)
		}
	}
	return out
}

// count returns how many requests of the method reached path.
func (l *requestLog) count(path, method string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reqs {
		if r.path == path && r.method == method {
			n++
		}
	}
	return n
}
