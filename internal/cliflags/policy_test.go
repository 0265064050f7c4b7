package cliflags

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

const appOrigin = "https://app.example.com"

// serveGreet serves the greet service behind the policy built from args.
func serveGreet(t *testing.T, args ...string) *httptest.Server {
	t.Helper()
	c, _, err := parse(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Policy(discard())
	if err != nil {
		t.Fatalf("Policy(%q): %v", args, err)
	}
	mux := http.NewServeMux()
	mux.Handle(p.Wrap(greetv1connect.NewGreetServiceHandler(greetsvc.NewConnect(nil))))
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func do(t *testing.T, req *http.Request) *http.Response {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	return res
}

func preflight(t *testing.T, url, origin, acrh string, extra http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodOptions, url+greetv1connect.GreetServiceGreetProcedure, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", acrh)
	for k, v := range extra {
		req.Header[k] = v
	}
	return do(t, req)
}

// headerList splits a comma-separated header value into lowercase names.
func headerList(v string) []string {
	var out []string
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.ToLower(strings.TrimSpace(f)); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func TestPolicyFromFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want map[string]string // preflight response headers; "" means absent
	}{
		{
			name: "defaults",
			args: []string{"--allow-origin", appOrigin},
			want: map[string]string{
				"Access-Control-Allow-Origin":          appOrigin,
				"Access-Control-Max-Age":               "7200",
				"Access-Control-Allow-Credentials":     "",
				"Access-Control-Allow-Private-Network": "",
			},
		},
		{
			name: "every flag",
			args: []string{
				"--allow-origin", appOrigin, "--allow-credentials", "--max-age", "90s",
				"--private-network", "--allow-header", "x-tenant",
			},
			want: map[string]string{
				"Access-Control-Allow-Origin":          appOrigin,
				"Access-Control-Max-Age":               "90",
				"Access-Control-Allow-Credentials":     "true",
				"Access-Control-Allow-Private-Network": "true",
			},
		},
		{
			name: "max-age zero omits the header",
			args: []string{"--allow-origin", appOrigin, "--max-age", "0", "--allow-header", "x-tenant"},
			want: map[string]string{"Access-Control-Allow-Origin": appOrigin, "Access-Control-Max-Age": ""},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := serveGreet(t, tt.args...)
			acrh := "content-type"
			if slices.Contains(tt.args, "x-tenant") {
				acrh += ",x-tenant"
			}
			res := preflight(t, s.URL, appOrigin, acrh, http.Header{"Access-Control-Request-Private-Network": {"true"}})
			if res.StatusCode != http.StatusNoContent {
				t.Fatalf("preflight status %d, want 204; headers %v", res.StatusCode, res.Header)
			}
			for name, want := range tt.want {
				if got := res.Header.Get(name); got != want {
					t.Errorf("%s = %q, want %q", name, got, want)
				}
			}
			if got := headerList(res.Header.Get("Access-Control-Allow-Headers")); !slices.Contains(got, "content-type") ||
				slices.Contains(tt.args, "x-tenant") && !slices.Contains(got, "x-tenant") {
				t.Errorf("Access-Control-Allow-Headers = %q, want content-type and the extra header", got)
			}
		})
	}
}

func TestPolicyRefusesExtraHeaderNotAllowed(t *testing.T) {
	t.Parallel()
	s := serveGreet(t, "--allow-origin", appOrigin)
	res := preflight(t, s.URL, appOrigin, "content-type,x-tenant", nil)
	if res.StatusCode != http.StatusForbidden || res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight with an unlisted header: status %d ACAO %q, want 403 without ACAO",
			res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
	}
}

func TestPolicyExposeHeader(t *testing.T) {
	t.Parallel()
	s := serveGreet(t, "--allow-origin", appOrigin, "--expose-header", "x-extra")
	req, err := http.NewRequest(http.MethodPost, s.URL+greetv1connect.GreetServiceGreetProcedure, strings.NewReader(`{"name":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", appOrigin)
	req.Header.Set("Content-Type", "application/json")
	res := do(t, req)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200", res.StatusCode)
	}
	if got := headerList(res.Header.Get("Access-Control-Expose-Headers")); !slices.Contains(got, "x-extra") {
		t.Errorf("Access-Control-Expose-Headers = %q, want x-extra among them", got)
	}
}

func TestPolicyRefusedConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{name: "any origin with credentials", args: []string{"--allow-origin", "*", "--allow-credentials"}},
		{name: "null origin", args: []string{"--allow-origin", "null"}},
		{name: "origin with a path", args: []string{"--allow-origin", "https://app.example.com/"}},
		{name: "max-age above a day", args: []string{"--allow-origin", appOrigin, "--max-age", "25h"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, _, err := parse(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			p, err := c.Policy(discard())
			if !IsUsage(err) || p != nil {
				t.Errorf("Policy(%q) = %v, %v; want nil and a UsageError", tt.args, p, err)
			}
		})
	}
}
