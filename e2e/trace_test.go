package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/corsgate/corsgate/internal/greetsvc"
)

// withTraceID returns the calls whose traceparent is of trace id.
func (l *callLog) withTraceID(id string) []greetsvc.Call {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []greetsvc.Call
	for _, c := range l.calls {
		if tp := c.Header.Get("Traceparent"); len(tp) == 55 && tp[3:35] == id {
			out = append(out, c)
		}
	}
	return out
}

// TestTraceparent: a page instrumented with OpenTelemetry web sends
// traceparent and tracestate on every fetch. SetGreeting declares no
// request header, so only the default trace headers let Chromium's preflight
// through (whatwg/fetch#911); the trace reaches the service.
func TestTraceparent(t *testing.T) {
	t.Parallel()
	for _, m := range modes {
		t.Run(string(m), func(t *testing.T) {
			t.Parallel()
			e := startEnv(t, envConfig{mode: m})
			for _, client := range []string{clientConnect, clientGRPCWebText} {
				t.Run(client, func(t *testing.T) {
					t.Parallel()
					p := openPage(t, e.pageURL, e.apiURL)
					var b [16]byte
					_, _ = rand.Read(b[:])
					traceID := hex.EncodeToString(b[:])
					headers := map[string]string{
						"traceparent": "00-" + traceID + "-b7ad6b7169203331-01",
						"tracestate":  "page=1",
					}
					r := p.run(runOptions{Client: client, Method: "SetGreeting", Target: e.apiURL, Greeting: "Hello", Headers: headers})
					wantOK(t, r)
					calls := e.calls.withTraceID(traceID)
					if len(calls) != 1 || calls[0].Procedure != "SetGreeting" {
						t.Fatalf("the service saw %d calls of trace %s, want one SetGreeting: %v", len(calls), traceID, calls)
					}
					if got := calls[0].Header.Values("Tracestate"); !slices.Contains(got, "page=1") {
						t.Errorf("tracestate at the service = %v, want page=1", got)
					}
				})
			}
		})
	}
}
