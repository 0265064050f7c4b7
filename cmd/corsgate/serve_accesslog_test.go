package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corsgate/corsgate/internal/testutil"
)

const (
	secretAuthorization = "Bearer s3cret-token-never-logged"
	secretCookie        = "session=c00kie-value-never-logged"
	logTraceID          = "4bf92f3577b34da6a3ce929d0e0e4736"
	logTraceparent      = "00-" + logTraceID + "-00f067aa0ba902b7-01"
)

// serveWithStdout runs corsgate serve with args in-process, keeping its
// standard output, and returns the gateway's and the metrics' URLs once
// printed and its /healthz answers 200 ("" for metrics without
// --metrics-listen).
func serveWithStdout(t *testing.T, args ...string) (gatewayURL, metricsURL string, stdout *testutil.SyncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), stdout, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("corsgate serve did not stop")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range strings.Split(stdout.String(), "\n") {
			if v, ok := strings.CutPrefix(line, "Gateway: "); ok {
				gatewayURL = v
			}
			if v, ok := strings.CutPrefix(line, "Metrics: "); ok {
				metricsURL = strings.TrimSuffix(v, "/metrics")
			}
		}
		if gatewayURL != "" && (metricsURL != "" || !containsArg(args, "--metrics-listen")) && healthy(gatewayURL) {
			return gatewayURL, metricsURL, stdout
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("corsgate serve exited with %d: %s", code, stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("corsgate serve printed no URL; stderr: %s", stderr.String())
		}
	}
}

// healthy reports a gateway whose /healthz answers 200: it has its
// descriptors.
func healthy(url string) bool {
	res, err := http.Get(url + "/healthz")
	if err != nil {
		return false
	}
	_ = res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// greetWithSecrets calls Greet (Connect, JSON) from serveOrigin with a
// traceparent, an Authorization and a Cookie, and waits for the answer.
func greetWithSecrets(t *testing.T, url string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/greet.v1.GreetService/Greet", strings.NewReader(`{"name":"Ada"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", serveOrigin)
	req.Header.Set("Traceparent", logTraceparent)
	req.Header.Set("Authorization", secretAuthorization)
	req.Header.Set("Cookie", secretCookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Greet: HTTP %d %s", resp.StatusCode, body)
	}
}

// waitFor returns stdout's text once it holds want.
func waitFor(t *testing.T, stdout *testutil.SyncBuffer, want string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(stdout.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("standard output lacks %q:\n%s", want, stdout.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return stdout.String()
}

// TestServeAccessLog: --access-log json prints one JSON line per call on
// standard output, access-log: text in the config file a text line, and
// the default prints none; no Authorization or Cookie value ever appears.
func TestServeAccessLog(t *testing.T) {
	t.Parallel()
	backend := serveBackend(t, false)
	t.Run("json", func(t *testing.T) {
		t.Parallel()
		url, _, stdout := serveWithStdout(t, "--backend", backend, "--allow-origin", serveOrigin, "--access-log", "json")
		greetWithSecrets(t, url)
		out := waitFor(t, stdout, logTraceID)
		var line map[string]any
		for _, l := range strings.Split(out, "\n") {
			if strings.Contains(l, logTraceID) {
				if err := json.Unmarshal([]byte(l), &line); err != nil {
					t.Fatalf("%v: %s", err, l)
				}
			}
		}
		for k, v := range map[string]any{
			"msg": "access", "procedure": "/greet.v1.GreetService/Greet", "protocol": "connect", "route": "backends.default",
			"backend": "default", "replica": backend, "code": "ok", "http_status": float64(200), "origin": serveOrigin,
			"cors": "allowed", "trace_id": logTraceID,
		} {
			if line[k] != v {
				t.Errorf("%s = %v, want %v; line %v", k, line[k], v, line)
			}
		}
		checkNoSecrets(t, out)
	})
	t.Run("text from the config file", func(t *testing.T) {
		t.Parallel()
		cfg := filepath.Join(t.TempDir(), "corsgate.yaml")
		serveWriteFile(t, cfg, "access-log: text\nallow-origin: ["+serveOrigin+"]\nbackend: "+backend+"\n")
		url, _, stdout := serveWithStdout(t, "--config", cfg)
		greetWithSecrets(t, url)
		out := waitFor(t, stdout, "trace_id="+logTraceID)
		for _, want := range []string{"msg=access", "procedure=/greet.v1.GreetService/Greet", "protocol=connect", "replica=" + backend, "cors=allowed"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		checkNoSecrets(t, out)
	})
	t.Run("off by default", func(t *testing.T) {
		t.Parallel()
		url, _, stdout := serveWithStdout(t, "--backend", backend, "--allow-origin", serveOrigin)
		greetWithSecrets(t, url)
		time.Sleep(100 * time.Millisecond) // a line would be written by now
		if out := stdout.String(); strings.Contains(out, "access") || strings.Count(out, "\n") != 1 {
			t.Errorf("want only the Gateway line on standard output:\n%s", out)
		}
	})
}

func checkNoSecrets(t *testing.T, out string) {
	t.Helper()
	for _, secret := range []string{secretAuthorization, "s3cret", secretCookie, "c00kie"} {
		if strings.Contains(out, secret) {
			t.Errorf("the access log holds %q:\n%s", secret, out)
		}
	}
}

// TestServeAccessLogRefused: a bad value, on the command line or in the
// config file, is a usage error (exit 2) naming the flag or the key and the
// values allowed.
func TestServeAccessLogRefused(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "corsgate.yaml")
	serveWriteFile(t, cfg, "access-log: loud\nbackend: 127.0.0.1:1\n")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{name: "flag", args: []string{"serve", "--backend", "127.0.0.1:1", "--access-log", "verbose"}, want: []string{"--access-log", `"verbose"`, "off, json or text"}},
		{name: "config key", args: []string{"serve", "--config", cfg}, want: []string{`"access-log"`, `"loud"`, "off, json or text"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runCLI(t, tc.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr %q", code, exitUsage, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
		})
	}
}
