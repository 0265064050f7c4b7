package interceptor

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestDecideIsWhatTheHandlerDecides: for preflights and actual requests,
// allowed and refused for every reason, same-origin and without Origin,
// strict or not, Decide returns the verdict the handler gives its observer,
// says cross-origin exactly when the observer is told, and says answered
// exactly when the next handler is not called.
func TestDecideIsWhatTheHandlerDecides(t *testing.T) {
	t.Parallel()
	sameOriginReq := actualRequest(pathGreet, "http://gateway.example")
	sameOriginReq.Host = "gateway.example"
	requests := map[string]*http.Request{
		"preflight granted":        preflightRequest(pathGreet, appOrigin, "GET", "authorization,content-type"),
		"preflight foreign origin": preflightRequest(pathGreet, "https://evil.example.net", "POST", ""),
		"preflight unknown":        preflightRequest("/a.b/C", appOrigin, "POST", ""),
		"preflight barred":         preflightRequest(pathReset, appOrigin, "POST", ""),
		"preflight method":         preflightRequest(pathSet, appOrigin, "GET", ""),
		"preflight header":         preflightRequest(pathSet, appOrigin, "POST", "x-secret"),
		"actual granted":           actualRequest(pathGreet, appOrigin),
		"actual foreign origin":    actualRequest(pathGreet, "https://evil.example.net"),
		"actual unknown":           actualRequest("/a.b/C", appOrigin),
		"actual barred":            actualRequest(pathReset, appOrigin),
		"actual barred foreign":    actualRequest(pathReset, "https://evil.example.net"),
		"actual no origin":         actualRequest(pathGreet, ""),
		"actual same origin":       sameOriginReq,
	}
	for _, strict := range []bool{false, true} {
		var seen []Verdict
		p := mustNew(t, WithAllowedOrigins(appOrigin), WithStrict(strict), WithObserver(func(v Verdict) { seen = append(seen, v) }))
		var reached bool
		h := p.Handler(greetTable(t), http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
		for name, r := range requests {
			seen, reached = nil, false
			h.ServeHTTP(httptest.NewRecorder(), r)
			d, ok := Decide(h, r)
			if !ok {
				t.Fatal("Decide does not know the policy's own handler")
			}
			if d.CrossOrigin != (len(seen) == 1) {
				t.Errorf("strict %v, %s: cross-origin %v, observer told %v", strict, name, d.CrossOrigin, seen)
			}
			if len(seen) == 1 && d.Verdict != seen[0] {
				t.Errorf("strict %v, %s: Decide %+v, handler %+v", strict, name, d.Verdict, seen[0])
			}
			if d.Answered == reached {
				t.Errorf("strict %v, %s: answered %v, next handler reached %v", strict, name, d.Answered, reached)
			}
		}
	}
	if _, ok := Decide(http.NotFoundHandler(), requests["actual granted"]); ok {
		t.Error("Decide knows a handler that is not a policy's")
	}
}
