package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/testutil"
)

const (
	appOrigin = "https://app.example.com"
	greetPath = "/greet.v1.GreetService/Greet"
)

// explainCLI runs corsgate explain in-process.
func explainCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), append([]string{"explain"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

// assertLines checks that each of want is a line of out (after trimming
// spaces at both ends), in this order. A want ending in "*" matches the
// lines that start with the rest.
func assertLines(t *testing.T, out string, want []string) {
	t.Helper()
	lines := strings.Split(out, "\n")
	match := func(line, w string) bool {
		line = strings.TrimSpace(line)
		if prefix, ok := strings.CutSuffix(w, "*"); ok {
			return strings.HasPrefix(line, prefix)
		}
		return line == w
	}
	i := 0
	for _, w := range want {
		for i < len(lines) && !match(lines[i], w) {
			i++
		}
		if i == len(lines) {
			t.Errorf("output lacks the line %q (in this order); output:\n%s", w, out)
			return
		}
		i++
	}
}

func TestExplainGreet(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := explainCLI(t, "--origin", appOrigin, "--allow-origin", appOrigin,
		"--procedure", greetPath, "--header", "Authorization", "--header", "x-request-id")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	assertLines(t, stdout, []string{
		"ALLOWED: POST from https://app.example.com calling /greet.v1.GreetService/Greet",
		"procedures: procedures built into corsgate",
		"checks:",
		`ok    origin                "https://app.example.com" is allowed; Access-Control-Allow-Origin: https://app.example.com`,
		`ok    procedure             "/greet.v1.GreetService/Greet" is known`,
		"ok    barred                browsers may call the procedure",
		"ok    method                POST is allowed (GET, POST)",
		"ok    header authorization  allowed",
		"ok    header x-request-id   allowed",
		"preflight response (OPTIONS /greet.v1.GreetService/Greet):",
		"Access-Control-Allow-Origin: https://app.example.com",
		"Access-Control-Max-Age: 7200",
		"Vary: Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
		"actual response (POST /greet.v1.GreetService/Greet), CORS headers:",
		"Access-Control-Allow-Origin: https://app.example.com",
		"Vary: Origin",
	})
	// The exposed headers carry the proto-declared header and trailer.
	for _, want := range []string{"x-greet-version", "trailer-x-greet-trailer", "grpc-status"} {
		if !strings.Contains(strings.ToLower(stdout), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	// The preflight answer allows the two request headers.
	pre := stdout[strings.Index(stdout, "preflight response"):strings.Index(stdout, "actual response")]
	if !strings.Contains(pre, "Access-Control-Allow-Headers: ") || !strings.Contains(pre, "authorization") || !strings.Contains(pre, "x-request-id") {
		t.Errorf("preflight headers lack the allowed request headers:\n%s", pre)
	}
}

func TestExplainVerdicts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	allow := []string{"--allow-origin", appOrigin}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantLines  []string // lines of stdout, in order
		wantStderr string   // substring of stderr; "" means empty
	}{
		{
			name:      "connect get of a no-side-effects method",
			args:      append([]string{"--origin", appOrigin, "--procedure", greetPath, "--method", "get"}, allow...),
			wantCode:  exitOK,
			wantLines: []string{"ALLOWED: GET from https://app.example.com calling /greet.v1.GreetService/Greet", "ok    method     GET is allowed (GET, POST)"},
		},
		{
			name:       "get of a method with side effects",
			args:       append([]string{"--origin", appOrigin, "--procedure", "/greet.v1.GreetService/SetGreeting", "--method", "GET"}, allow...),
			wantCode:   exitFailure,
			wantLines:  []string{"REFUSED: GET from https://app.example.com calling /greet.v1.GreetService/SetGreeting", `FAIL  method     "GET" is not allowed; allowed: POST`},
			wantStderr: `corsgate explain: a browser would be refused: method: "GET" is not allowed`,
		},
		{
			name:       "browser barred procedure",
			args:       append([]string{"--origin", appOrigin, "--procedure", "/greet.v1.GreetService/ResetGreetings"}, allow...),
			wantCode:   exitFailure,
			wantLines:  []string{"FAIL  barred     the procedure is browser_barred: browsers may never call it"},
			wantStderr: "refused: barred:",
		},
		{
			name:     "origin not allowed",
			args:     append([]string{"--origin", "https://evil.example.net", "--procedure", greetPath}, allow...),
			wantCode: exitFailure,
			wantLines: []string{
				"REFUSED: POST from https://evil.example.net calling /greet.v1.GreetService/Greet",
				`FAIL  origin     "https://evil.example.net" is not among the allowed origins`,
				"refused: no CORS headers, so the browser stops before the call",
			},
			wantStderr: "refused: origin:",
		},
		{
			name:       "subdomain pattern does not match a lookalike",
			args:       []string{"--origin", "https://example.com.evil.com", "--allow-origin", "https://*.example.com", "--procedure", greetPath},
			wantCode:   exitFailure,
			wantStderr: "refused: origin:",
		},
		{
			name:       "header not declared",
			args:       append([]string{"--origin", appOrigin, "--procedure", greetPath, "--header", "x-tenant"}, allow...),
			wantCode:   exitFailure,
			wantLines:  []string{"FAIL  header x-tenant  not allowed: declare it in the proto options ((corsgate.v1.method).request_headers) or allow it with --allow-header"},
			wantStderr: "refused: header x-tenant:",
		},
		{
			name:      "header allowed by flag",
			args:      append([]string{"--origin", appOrigin, "--procedure", greetPath, "--header", "x-tenant", "--allow-header", "x-tenant"}, allow...),
			wantCode:  exitOK,
			wantLines: []string{"ok    header x-tenant  allowed"},
		},
		{
			name:       "unknown procedure",
			args:       append([]string{"--origin", appOrigin, "--procedure", "/greet.v1.GreetService/Nope"}, allow...),
			wantCode:   exitFailure,
			wantLines:  []string{`FAIL  procedure  "/greet.v1.GreetService/Nope" is not a procedure of the table (*`},
			wantStderr: "refused: procedure:",
		},
		{
			name:       "no origin allowed by default",
			args:       []string{"--origin", appOrigin, "--procedure", greetPath},
			wantCode:   exitFailure,
			wantStderr: "refused: origin:",
		},
		// Bad flags: exit status 2.
		{name: "missing origin", args: []string{"--procedure", greetPath}, wantCode: exitUsage, wantStderr: `required flag(s) "origin" not set`},
		{name: "missing procedure", args: []string{"--origin", appOrigin}, wantCode: exitUsage, wantStderr: `required flag(s) "procedure" not set`},
		{name: "empty origin", args: []string{"--origin", "", "--procedure", greetPath}, wantCode: exitUsage, wantStderr: "--origin is empty"},
		{name: "procedure without slash", args: []string{"--origin", appOrigin, "--procedure", "greet.v1.GreetService/Greet"}, wantCode: exitUsage, wantStderr: `--procedure "greet.v1.GreetService/Greet"`},
		{name: "procedure without method", args: []string{"--origin", appOrigin, "--procedure", "/greet.v1.GreetService"}, wantCode: exitUsage, wantStderr: "want a path such as"},
		{name: "method put", args: []string{"--origin", appOrigin, "--procedure", greetPath, "--method", "PUT"}, wantCode: exitUsage, wantStderr: `--method "PUT"`},
		{name: "header with value", args: []string{"--origin", appOrigin, "--procedure", greetPath, "--header", "x-a: 1"}, wantCode: exitUsage, wantStderr: `--header "x-a: 1"`},
		{name: "wildcard with credentials", args: []string{"--origin", appOrigin, "--procedure", greetPath, "--allow-origin", "*", "--allow-credentials"}, wantCode: exitUsage, wantStderr: "credentials"},
		{name: "bad max-age", args: []string{"--origin", appOrigin, "--procedure", greetPath, "--max-age", "soon"}, wantCode: exitUsage, wantStderr: "max-age"},
		{name: "extra argument", args: []string{"--origin", appOrigin, "--procedure", greetPath, "extra"}, wantCode: exitUsage, wantStderr: "corsgate explain:"},
		{name: "missing config", args: []string{"--origin", appOrigin, "--procedure", greetPath, "--config", filepath.Join(dir, "nope.yaml")}, wantCode: exitUsage, wantStderr: "no such file"},
		{name: "missing descriptors", args: []string{"--origin", appOrigin, "--procedure", greetPath, "--descriptors", filepath.Join(dir, "nope.binpb")}, wantCode: exitUsage, wantStderr: "--descriptors"},
		{name: "bad timeout", args: []string{"--origin", appOrigin, "--procedure", greetPath, "--timeout", "0s"}, wantCode: exitUsage, wantStderr: "--timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := explainCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr)
			}
			assertLines(t, stdout, tt.wantLines)
			switch {
			case tt.wantStderr == "" && stderr != "":
				t.Errorf("stderr = %q, want nothing", stderr)
			case tt.wantStderr != "" && !strings.Contains(stderr, tt.wantStderr):
				t.Errorf("stderr = %q, want it to contain %q", stderr, tt.wantStderr)
			case strings.Count(stderr, "\n") > 1:
				t.Errorf("stderr has several lines: %q", stderr)
			}
			if code == exitUsage && stdout != "" && !strings.Contains(tt.wantStderr, "required") {
				t.Errorf("a usage error printed a report:\n%s", stdout)
			}
		})
	}
}

// TestExplainSources checks that every source of procedures gives the same
// verdict for the greet service: linked, descriptor file, config services,
// and the reflection of a running greetd.
func TestExplainSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	descriptors := filepath.Join(dir, "greet.binpb")
	serveWriteDescriptors(t, descriptors, greetv1.File_greet_v1_greet_proto)
	configPath := filepath.Join(dir, "corsgate.yaml")
	writeFile(t, configPath, `
allow-origin: [https://app.example.com]
descriptors: greet.binpb
services:
  - name: greet.v1.GreetService
    procedures:
      - name: Greet
        methods: [POST]
        request-headers: [x-tenant]
`)
	descConfig := filepath.Join(dir, "descriptors.yaml")
	writeFile(t, descConfig, "allow-origin: [https://app.example.com]\ndescriptors: greet.binpb\n")
	backend := testutil.StartGreetd(t, nil)

	tests := []struct {
		name      string
		args      []string
		wantCode  int
		wantLines []string
	}{
		{
			name:      "descriptor file",
			args:      []string{"--allow-origin", appOrigin, "--descriptors", descriptors, "--header", "authorization"},
			wantCode:  exitOK,
			wantLines: []string{"ALLOWED: POST from https://app.example.com calling /greet.v1.GreetService/Greet", "procedures: descriptors " + descriptors, "ok    header authorization  allowed"},
		},
		{
			name:      "config descriptors key resolved against the config's directory",
			args:      []string{"--config", descConfig, "--header", "authorization"},
			wantCode:  exitOK,
			wantLines: []string{"procedures: descriptors " + descriptors},
		},
		{
			name:      "config services replace the descriptors",
			args:      []string{"--config", configPath, "--header", "x-tenant"},
			wantCode:  exitOK,
			wantLines: []string{"procedures: services of " + configPath, "ok    header x-tenant  allowed"},
		},
		{
			name:      "config services have no GET",
			args:      []string{"--config", configPath, "--method", "GET"},
			wantCode:  exitFailure,
			wantLines: []string{`FAIL  method     "GET" is not allowed; allowed: POST`},
		},
		{
			name:      "flag wins over the config's origins",
			args:      []string{"--config", configPath, "--allow-origin", "https://other.example.com"},
			wantCode:  exitFailure,
			wantLines: []string{`FAIL  origin     "https://app.example.com" is not among the allowed origins`},
		},
		{
			name:      "backend reflection",
			args:      []string{"--allow-origin", appOrigin, "--backend", backend, "--header", "authorization", "--method", "GET"},
			wantCode:  exitOK,
			wantLines: []string{"ALLOWED: GET from https://app.example.com calling /greet.v1.GreetService/Greet", "procedures: reflection of " + backend, "ok    header authorization  allowed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--origin", appOrigin, "--procedure", greetPath}, tt.args...)
			code, stdout, stderr := explainCLI(t, args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr)
			}
			assertLines(t, stdout, tt.wantLines)
		})
	}
}

func TestExplainBackendDown(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	start := time.Now()
	code, stdout, stderr := explainCLI(t, "--origin", appOrigin, "--procedure", greetPath, "--allow-origin", appOrigin,
		"--backend", addr, "--timeout", "500ms")
	if code != exitFailure || stdout != "" || !strings.Contains(stderr, "reflection of "+addr) {
		t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, and the reflection error", code, stdout, stderr)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("took %v, --timeout was 500ms", took)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
