package main

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"time"

	"connectrpc.com/connect"
)

// Outcomes that are not a gRPC code.
const (
	outcomeOK        = "ok"
	outcomeRefused   = "refused"        // a disallowed origin (or a barred procedure) refused, as it must be
	outcomeForeign   = "served-foreign" // non-strict: a disallowed origin answered without CORS headers
	outcomeBroken    = "broken"         // a violation with no code to file it under
	suffixClient     = " (client)"      // the client's own cancel or deadline ended the call
	acao             = "Access-Control-Allow-Origin"
	maxDeadlineExtra = time.Second
)

// Violation classes, as the report groups them.
const (
	vPayload      = "wrong payload or malformed response"
	vNotWire      = "failure not written in the caller's protocol"
	vCode         = "unexpected status code"
	vNoCORS       = "no Access-Control-Allow-Origin for an allowed origin"
	vForeignCORS  = "Access-Control-Allow-Origin for a disallowed origin"
	vForeignOK    = "disallowed origin served in strict mode"
	vOverrun      = "call outlived its deadline by more than 1 s"
	vNotConnErr   = "error is not a *connect.Error"
	vRecovery     = "gateway did not recover after the chaos"
	vGoroutines   = "gateway goroutines did not return to the baseline"
	vHeap         = "gateway heap did not return to the baseline"
	vPanic        = "panic in the logs"
	vGatewayDied  = "gateway exited during the soak"
	vGatewayClose = "gateway did not exit cleanly on SIGTERM"
	vReload       = "config reload failed"
)

// judge decides what a call's result was and whether it broke an invariant
// (class and detail are empty when it did not). allowed says whether the
// call came from the allowed origin; clientEnded whether its context ended
// (a random cancel or its deadline) before it returned.
func judge(r callResult, allowed, strict, clientEnded bool) (outcome, class, detail string) {
	if r.bad != "" {
		return outcomeBroken, vPayload, r.bad
	}
	if r.outcome != "" {
		return r.outcome, "", ""
	}
	if r.err == nil {
		got := r.header.Get(acao)
		switch {
		case allowed && got != allowedOrigin:
			return outcomeOK, vNoCORS, fmt.Sprintf("answer with ACAO %q", got)
		case !allowed && strict:
			return outcomeOK, vForeignOK, "answered"
		case !allowed && got != "":
			return outcomeForeign, vForeignCORS, fmt.Sprintf("answer with ACAO %q", got)
		case !allowed:
			return outcomeForeign, "", ""
		}
		return outcomeOK, "", ""
	}
	var ce *connect.Error
	if !errors.As(r.err, &ce) {
		return outcomeBroken, vNotConnErr, r.err.Error()
	}
	code := ce.Code()
	if !connect.IsWireError(r.err) {
		if clientEnded && (code == connect.CodeCanceled || code == connect.CodeDeadlineExceeded) {
			return code.String() + suffixClient, "", ""
		}
		return code.String(), vNotWire, r.err.Error()
	}
	got := mergedHeader(r.header, ce.Meta()).Get(acao)
	switch {
	case allowed && got != allowedOrigin:
		return code.String(), vNoCORS, fmt.Sprintf("%v (ACAO %q)", r.err, got)
	case !allowed && got != "":
		return code.String(), vForeignCORS, fmt.Sprintf("%v (ACAO %q)", r.err, got)
	}
	switch {
	case !allowed && strict && code == connect.CodePermissionDenied:
		return outcomeRefused, "", ""
	case !allowed && strict && !clientEnded:
		return code.String(), vCode, fmt.Sprintf("disallowed origin: %v; want permission_denied", r.err)
	case code == connect.CodeUnavailable, code == connect.CodeDeadlineExceeded:
		return code.String(), "", ""
	case code == connect.CodeCanceled && clientEnded:
		return code.String() + suffixClient, "", ""
	}
	return code.String(), vCode, r.err.Error()
}

func mergedHeader(a, b http.Header) http.Header {
	h := http.Header{}
	for k, v := range a {
		h[k] = v
	}
	for k, v := range b {
		if _, ok := h[k]; !ok {
			h[k] = v
		}
	}
	return h
}

// kindStats are the counts of one kind of call.
type kindStats struct {
	calls      int
	outcomes   map[string]int // outcome → calls
	violations int            // calls that broke at least one invariant
	maxTook    time.Duration
}

// tally counts every call's outcome and every broken invariant; safe for
// concurrent use.
type tally struct {
	mu         sync.Mutex
	kinds      map[string]*kindStats
	classes    map[string]int      // violation class → occurrences
	examples   map[string][]string // class → the first few details
	maxOverrun time.Duration
	overrunBy  string // the kind of call with maxOverrun
	// errors holds, per failure outcome, distinct messages and their counts
	// (at most maxErrorMessages each), for the report.
	errors map[string]map[string]int
}

const maxErrorMessages = 8

const examplesPerClass = 5

func newTally() *tally {
	return &tally{kinds: map[string]*kindStats{}, classes: map[string]int{}, examples: map[string][]string{}, errors: map[string]map[string]int{}}
}

// call records one call of kind k that ended with err (nil when it did not
// fail); classes and details pair up.
func (t *tally) call(k string, outcome string, err error, took, overrun time.Duration, classes, details []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		m := t.errors[outcome]
		if m == nil {
			m = map[string]int{}
			t.errors[outcome] = m
		}
		msg := err.Error()
		if ce := (*connect.Error)(nil); errors.As(err, &ce) {
			msg = ce.Message()
		}
		if _, ok := m[msg]; ok || len(m) < maxErrorMessages {
			m[msg]++
		}
	}
	ks := t.kinds[k]
	if ks == nil {
		ks = &kindStats{outcomes: map[string]int{}}
		t.kinds[k] = ks
	}
	ks.calls++
	ks.outcomes[outcome]++
	ks.maxTook = max(ks.maxTook, took)
	if overrun > t.maxOverrun {
		t.maxOverrun, t.overrunBy = overrun, k
	}
	if len(classes) > 0 {
		ks.violations++
	}
	for i, c := range classes {
		t.addLocked(c, k+": "+details[i])
	}
}

// invariant records a broken invariant that is not one call's.
func (t *tally) invariant(class, detail string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.addLocked(class, detail)
}

func (t *tally) addLocked(class, detail string) {
	t.classes[class]++
	if len(t.examples[class]) < examplesPerClass {
		t.examples[class] = append(t.examples[class], clip2(detail, 300))
	}
}

// violations is the number of broken invariants.
func (t *tally) violations() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, c := range t.classes {
		n += c
	}
	return n
}

// kindNames returns the kinds seen, in the mix's order.
func (t *tally) kindNames() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, k := range mix {
		if t.kinds[k.name] != nil {
			out = append(out, k.name)
		}
	}
	return out
}

func (t *tally) stats(k string) kindStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	ks := t.kinds[k]
	if ks == nil {
		return kindStats{outcomes: map[string]int{}}
	}
	c := *ks
	c.outcomes = map[string]int{}
	for o, n := range ks.outcomes {
		c.outcomes[o] = n
	}
	return c
}

// classNames returns the violation classes seen, most frequent first.
func (t *tally) classNames() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for c := range t.classes {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if t.classes[out[i]] != t.classes[out[j]] {
			return t.classes[out[i]] > t.classes[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}

func clip2(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
