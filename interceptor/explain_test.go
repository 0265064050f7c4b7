package interceptor

import (
	"slices"
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		opts         []Option
		origin       string
		path         string
		method       string
		headers      []string
		wantAllowed  bool
		wantFailed   []string // names of failed checks
		wantChecks   []string
		wantPre      map[string]string
		wantActual   map[string]string
		wantPreEmpty bool
	}{
		{
			name: "allowed", origin: appOrigin, path: pathGreet, method: "GET", headers: []string{"Authorization", "x-request-id"},
			wantAllowed: true, wantChecks: []string{"origin", "procedure", "barred", "method", "header authorization", "header x-request-id"},
			wantPre:    map[string]string{hACAO: appOrigin, hACAM: "GET, POST", hMaxAge: "7200", hVary: varyPreflight},
			wantActual: map[string]string{hACAO: appOrigin, hACEH: greetACEH, hVary: "Origin"},
		},
		{
			name: "origin refused", origin: "https://evil.example.net", path: pathGreet, method: "POST",
			wantFailed: []string{"origin"}, wantChecks: []string{"origin", "procedure", "barred", "method"},
			wantPreEmpty: true, wantActual: map[string]string{hACAO: "", hVary: "Origin"},
		},
		{
			name: "method and header", origin: appOrigin, path: pathSet, method: "GET", headers: []string{"authorization, content-type"},
			wantFailed:   []string{"method", "header authorization"},
			wantChecks:   []string{"origin", "procedure", "barred", "method", "header authorization", "header content-type"},
			wantPreEmpty: true,
		},
		{
			name: "barred", origin: appOrigin, path: pathReset, method: "POST",
			wantFailed: []string{"barred"}, wantChecks: []string{"origin", "procedure", "barred", "method"}, wantPreEmpty: true,
			wantActual: map[string]string{hACAO: ""},
		},
		{
			name: "unknown", origin: appOrigin, path: "/x.v1.S/Do", method: "POST", headers: []string{"x-a"},
			wantFailed: []string{"procedure", "barred", "method", "header x-a"}, wantChecks: []string{"origin", "procedure", "barred", "method", "header x-a"},
			wantPreEmpty: true,
		},
		{
			name: "star without credentials", opts: []Option{WithAllowedOrigins("*")}, origin: "https://any.example.org", path: pathGreet, method: "POST",
			wantAllowed: true, wantChecks: []string{"origin", "procedure", "barred", "method"},
			wantPre: map[string]string{hACAO: "*"}, wantActual: map[string]string{hACAO: "*"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := tt.opts
			if opts == nil {
				opts = []Option{WithAllowedOrigins(appOrigin)}
			}
			var told int
			p := mustNew(t, append(opts, WithObserver(func(Verdict) { told++ }))...)
			ex := p.Explain(greetTable(t), tt.origin, tt.path, tt.method, tt.headers)
			if ex.Allowed != tt.wantAllowed {
				t.Errorf("Allowed = %v, want %v; checks %+v", ex.Allowed, tt.wantAllowed, ex.Checks)
			}
			var names, failed []string
			for _, c := range ex.Checks {
				names = append(names, c.Name)
				if !c.OK {
					failed = append(failed, c.Name)
				}
				if c.Detail == "" {
					t.Errorf("check %q has no detail", c.Name)
				}
			}
			if !slices.Equal(names, tt.wantChecks) {
				t.Errorf("checks = %q, want %q", names, tt.wantChecks)
			}
			if !slices.Equal(failed, tt.wantFailed) {
				t.Errorf("failed = %q, want %q", failed, tt.wantFailed)
			}
			if tt.wantPreEmpty && len(ex.PreflightHeader) != 0 {
				t.Errorf("PreflightHeader = %v, want empty", ex.PreflightHeader)
			}
			assertHeaders(t, ex.PreflightHeader, tt.wantPre)
			assertHeaders(t, ex.ActualHeader, tt.wantActual)
			for k := range ex.ActualHeader {
				if !strings.HasPrefix(k, headerStart) && k != hVary {
					t.Errorf("ActualHeader has %q, not a CORS header", k)
				}
			}
			if told != 0 {
				t.Errorf("Explain told the observer %d times", told)
			}
		})
	}
}

// TestExplainDoesNotShare: changing an explanation's headers must not change
// the policy's precomputed values.
func TestExplainDoesNotShare(t *testing.T) {
	t.Parallel()
	p := mustNew(t, WithAllowedOrigins(appOrigin))
	tb := greetTable(t)
	ex := p.Explain(tb, appOrigin, pathGreet, "POST", nil)
	ex.PreflightHeader[hVary][0] = "broken"
	ex.PreflightHeader[hMaxAge][0] = "broken"
	ex.ActualHeader[hVary][0] = "broken"
	again := p.Explain(tb, appOrigin, pathGreet, "POST", nil)
	assertHeaders(t, again.PreflightHeader, map[string]string{hVary: varyPreflight, hMaxAge: "7200"})
	assertHeaders(t, again.ActualHeader, map[string]string{hVary: "Origin"})
}
