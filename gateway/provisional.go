package gateway

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/corsgate/corsgate/interceptor"
)

// Before the first descriptors arrive by reflection the gateway knows no
// procedure, so the CORS policy would refuse every preflight and a browser
// would report a CORS failure instead of the UNAVAILABLE the gateway
// answers. Until then, a provisional table holds the one procedure a
// request names: the policy's origin check still applies, the answer
// allows the protocol's headers and the policy's own lists only (nothing a
// procedure declares), and preflights carry Access-Control-Max-Age: 0 so
// that no browser keeps the provisional answer. The state built from the
// first descriptors replaces it.

// maxProvisional bounds the provisional handlers kept; paths beyond it are
// built for their request and dropped.
const maxProvisional = 1024

// provisional is the CORS handler of the state before the first load.
type provisional struct {
	g        *Gateway
	policy   *interceptor.Policy // the policy of the route the path may belong to
	fallback http.Handler        // the policy with the empty table
	rpc      http.Handler
	handlers sync.Map // path → http.Handler
	n        atomic.Int32
}

func (p *provisional) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := p.handler(r.URL.Path)
	if h == nil {
		p.fallback.ServeHTTP(w, r)
		return
	}
	if r.Method == http.MethodOptions && len(r.Header["Access-Control-Request-Method"]) > 0 {
		w = &noMaxAgeWriter{ResponseWriter: w}
	}
	h.ServeHTTP(w, r)
}

// handler returns the policy's handler for a table holding only the
// procedure of path, nil when path names no procedure.
func (p *provisional) handler(path string) http.Handler {
	if h, ok := p.handlers.Load(path); ok {
		return h.(http.Handler) //nolint:errcheck // the map holds only http.Handler
	}
	service, method, ok := splitProcedure(path)
	if !ok {
		return nil
	}
	table, err := interceptor.NewTable(interceptor.Service{
		Name:       service,
		Procedures: []interceptor.Procedure{{Name: method, Methods: []string{http.MethodGet, http.MethodPost}}},
	})
	if err != nil {
		return nil
	}
	h := p.policy.Handler(table, p.rpc)
	if p.n.Add(1) <= maxProvisional {
		p.handlers.Store(path, h)
	}
	return h
}

// splitProcedure splits "/pkg.Service/Method".
func splitProcedure(path string) (service, method string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/")
	if !ok {
		return "", "", false
	}
	service, method, ok = strings.Cut(rest, "/")
	if !ok || service == "" || method == "" || strings.IndexByte(method, '/') >= 0 {
		return "", "", false
	}
	return service, method, true
}

// noMaxAgeWriter makes an allowed preflight answer uncacheable.
type noMaxAgeWriter struct {
	http.ResponseWriter
	done bool
}

var valueZero = []string{"0"}

func (w *noMaxAgeWriter) WriteHeader(code int) {
	if !w.done {
		w.done = true
		if h := w.Header(); len(h["Access-Control-Allow-Origin"]) > 0 {
			h["Access-Control-Max-Age"] = valueZero
		}
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *noMaxAgeWriter) Write(p []byte) (int, error) {
	if !w.done {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets [http.ResponseController] reach the writer underneath.
func (w *noMaxAgeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
