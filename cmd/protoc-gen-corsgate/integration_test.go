package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1corsgate"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// TestGatewayServesGeneratedConfig runs `corsgate serve --config
// example/config/corsgate.yaml` in front of example/greetd (a grpc-go server),
// both as real processes on 127.0.0.1, and checks that browsers get the
// generated policy: preflights answered as the generated Go handler answers
// them, and Connect, Connect GET and gRPC-Web calls readable cross-origin.
func TestGatewayServesGeneratedConfig(t *testing.T) {
	t.Parallel()
	bin := t.TempDir()
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin+string(filepath.Separator), "./cmd/corsgate", "./example/greetd")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	backend := startProcess(t, filepath.Join(bin, "greetd"), `addr=(\S+)`, "--listen", "127.0.0.1:0")
	config, err := filepath.Abs("../../example/config/corsgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// listen and backend are flags here: flags given on the command line
	// win over the config, which names fixed ports.
	gateway := "http://" + startProcess(t, filepath.Join(bin, "corsgate"), `listen=(\S+)`,
		"serve", "--config", config, "--listen", "127.0.0.1:0", "--backend", backend)
	waitHealthy(t, gateway)

	// The reference: the generated Go handler under the config's policy.
	policy, _ := examplePolicy(t)
	mux := http.NewServeMux()
	mux.Handle(greetv1corsgate.NewGreetServiceHandler(greetsvc.NewConnect(nil), policy))
	reference := httptest.NewServer(mux)
	t.Cleanup(reference.Close)

	t.Run("preflights", func(t *testing.T) {
		for _, req := range equivalenceRequests {
			if req.method != http.MethodOptions {
				continue
			}
			want, got := send(t, reference.URL, req), send(t, gateway, req)
			if got.status != want.status {
				t.Errorf("%s: gateway answered %d, generated handler %d", req.name, got.status, want.status)
			}
			for _, key := range unionKeys(want.header, got.header) {
				if !strings.HasPrefix(key, "Access-Control-") && key != "Vary" {
					continue
				}
				if strings.Join(got.header[key], ", ") != strings.Join(want.header[key], ", ") {
					t.Errorf("%s: %s: gateway %q, generated handler %q", req.name, key, got.header[key], want.header[key])
				}
			}
		}
	})

	t.Run("config rules win over descriptors", func(t *testing.T) {
		checkConfigRulesWin(t, filepath.Join(bin, "corsgate"), backend)
	})

	calls := []struct {
		name, method, path string
		header             map[string]string
		body               []byte
		wantBody           string // regular expression
		wantACAO           bool
	}{
		{
			name: "connect unary", method: http.MethodPost, path: "/greet.v1.GreetService/Greet",
			header:   map[string]string{"Content-Type": "application/json", "Connect-Protocol-Version": "1", "X-Request-Id": "r1"},
			body:     []byte(`{"name":"Ada"}`),
			wantBody: "Hello, Ada!", wantACAO: true,
		},
		{
			name: "connect GET", method: http.MethodGet,
			path:     `/greet.v1.GreetService/Greet?connect=v1&encoding=json&message=%7B%22name%22%3A%22Ada%22%7D`,
			wantBody: "Hello, Ada!", wantACAO: true,
		},
		{
			name: "grpc-web", method: http.MethodPost, path: "/greet.v1.GreetService/Greet",
			header:   map[string]string{"Content-Type": "application/grpc-web+proto", "X-Grpc-Web": "1", "X-User-Agent": "grpc-web-javascript/0.1"},
			body:     grpcWebFrame(t, &greetv1.GreetRequest{Name: "Ada"}),
			wantBody: `(?s)Hello, Ada!.*grpc-status: ?0\r\n`, wantACAO: true,
		},
		{
			name: "barred", method: http.MethodPost, path: "/greet.v1.GreetService/ResetGreetings",
			header: map[string]string{"Content-Type": "application/json"}, body: []byte(`{}`),
			wantACAO: false,
		},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), c.method, gateway+c.path, bytes.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", exampleOrigin)
			for k, v := range c.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); (got == exampleOrigin) != c.wantACAO {
				t.Errorf("Access-Control-Allow-Origin %q, want it: %v", got, c.wantACAO)
			}
			if !regexp.MustCompile(c.wantBody).Match(body) {
				t.Errorf("status %d, body %q lacks %q", resp.StatusCode, body, c.wantBody)
			}
			if c.wantACAO {
				exposed := strings.ToLower(resp.Header.Get("Access-Control-Expose-Headers"))
				for _, h := range []string{"grpc-status", "grpc-message", "x-greet-version", "trailer-x-greet-trailer"} {
					if !strings.Contains(exposed, h) {
						t.Errorf("Access-Control-Expose-Headers %q lacks %s", exposed, h)
					}
				}
			}
		})
	}
}

// checkConfigRulesWin starts a second gateway on a copy of the example config
// whose Greet no longer declares x-request-id: the gateway must follow the
// file, not the backend's descriptors, which still declare it.
func checkConfigRulesWin(t *testing.T, corsgate, backend string) {
	t.Helper()
	data, err := os.ReadFile("../../example/config/corsgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const declared = "request-headers: [authorization, x-request-id]"
	if !bytes.Contains(data, []byte(declared)) {
		t.Fatalf("example config lacks %q", declared)
	}
	changed := filepath.Join(t.TempDir(), "corsgate.yaml")
	if err := os.WriteFile(changed, bytes.Replace(data, []byte(declared), []byte("request-headers: [authorization]"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	gateway := "http://" + startProcess(t, corsgate, `listen=(\S+)`,
		"serve", "--config", changed, "--listen", "127.0.0.1:0", "--backend", backend)
	waitHealthy(t, gateway)
	for _, tc := range []struct {
		headers string
		want    int
	}{
		{headers: "authorization,content-type", want: http.StatusNoContent},
		{headers: "content-type,x-request-id", want: http.StatusForbidden},
	} {
		got := send(t, gateway, preflight(tc.headers, "Greet", exampleOrigin, "POST", tc.headers, tc.want))
		if got.status != tc.want {
			t.Errorf("preflight with %s: %d, want %d", tc.headers, got.status, tc.want)
		}
	}
}

// startProcess starts a server binary, returns the address its log names
// (first group of pattern), and stops it gracefully when the test ends.
func startProcess(t *testing.T, bin, pattern string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu  sync.Mutex
		log strings.Builder
	)
	found := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		re := regexp.MustCompile(pattern)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan error, 1)
		go func() { <-done; exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("%s log:\n%s", filepath.Base(bin), log.String())
			mu.Unlock()
		}
	})
	select {
	case addr := <-found:
		return addr
	case <-done:
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("%s exited before serving:\n%s", bin, log.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not log its address in 60s", bin)
	}
	return ""
}

// waitHealthy waits until the gateway's /healthz answers 200, i.e. it has
// loaded the backend's descriptors.
func waitHealthy(t *testing.T, base string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/healthz", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway not healthy after 30s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// grpcWebFrame is a gRPC-Web request body: one uncompressed message frame.
func grpcWebFrame(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 5, 5+len(b))
	binary.BigEndian.PutUint32(frame[1:], uint32(len(b)))
	return append(frame, b...)
}
