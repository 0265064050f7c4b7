package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/internal/cliflags"
	"github.com/corsgate/corsgate/internal/greetd"
	"github.com/corsgate/corsgate/internal/greetsvc"
	"github.com/corsgate/corsgate/internal/testutil"
)

// hardServeConfig is a serveConfig as the flags' defaults leave it.
func hardServeConfig(backend string) *serveConfig {
	return &serveConfig{
		cors:           cliflags.CORS{AllowOrigins: []string{serveOrigin}, MaxAge: cliflags.DefaultMaxAge, LogLevel: "info"},
		listen:         "127.0.0.1:0",
		backend:        backend,
		maxMessageSize: 4 << 20,
		shutdownGrace:  defaultShutdownGrace,
		// Set apart: the flag's default.
		maxRequestBuffer: 128 << 20,
	}
}

// TestServeServerSettings checks the http.Server corsgate serve
// builds: a header timeout and size limit against slow and huge headers, an
// idle timeout, and no write timeout (it would cut streams); with TLS, at
// least TLS 1.2.
func TestServeServerSettings(t *testing.T) {
	t.Parallel()
	cert := testutil.NewCert(t)
	cfg := hardServeConfig("127.0.0.1:1")
	cfg.tlsCert, cfg.tlsKey = cert.CertFile, cert.KeyFile
	s, err := newServeServer(cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.handler.closeAll)
	srv := s.srv
	switch {
	case srv.ReadHeaderTimeout <= 0 || srv.ReadHeaderTimeout > 30*time.Second:
		t.Errorf("ReadHeaderTimeout %v: want a bound of at most 30s against slowloris", srv.ReadHeaderTimeout)
	case srv.MaxHeaderBytes <= 0 || srv.MaxHeaderBytes > 1<<20:
		t.Errorf("MaxHeaderBytes %d: want a bound of at most 1 MiB", srv.MaxHeaderBytes)
	case srv.WriteTimeout != 0:
		t.Errorf("WriteTimeout %v: it cuts long streams", srv.WriteTimeout)
	case srv.IdleTimeout <= 0:
		t.Errorf("IdleTimeout %v: idle keep-alive connections are never closed", srv.IdleTimeout)
	case srv.TLSConfig == nil || srv.TLSConfig.MinVersion < tls.VersionTLS12:
		t.Errorf("TLS config %+v: want MinVersion TLS 1.2 or more", srv.TLSConfig)
	case srv.TLSConfig.InsecureSkipVerify || len(srv.TLSConfig.CipherSuites) > 0 && hardInsecureSuite(srv.TLSConfig.CipherSuites):
		t.Errorf("TLS config allows insecure settings: %+v", srv.TLSConfig)
	}
}

func hardInsecureSuite(ids []uint16) bool {
	for _, s := range tls.InsecureCipherSuites() {
		for _, id := range ids {
			if s.ID == id {
				return true
			}
		}
	}
	return false
}

// hardStartServe runs corsgate serve in-process with args and returns its
// printed URL without waiting for health.
func hardStartServe(t *testing.T, args ...string) (url string, stderr *testutil.SyncBuffer, cancel context.CancelFunc, done chan int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr = &testutil.SyncBuffer{}
	done = make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), pw, stderr)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			done <- code
		case <-time.After(10 * time.Second):
			t.Error("corsgate serve did not stop")
		}
	})
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Gateway: "); ok {
				urls <- v
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case url = <-urls:
	case code := <-done:
		done <- code
		t.Fatalf("corsgate serve exited with %d: %s", code, stderr.String())
	case <-time.After(startWait):
		t.Fatalf("corsgate serve printed no URL; stderr: %s", stderr.String())
	}
	return url, stderr, cancel, done
}

// TestServeTLSHandshakes serves TLS and checks the handshake from clients:
// TLS 1.0 and 1.1 refused, TLS 1.2 and 1.3 accepted, insecure cipher suites
// refused, HTTP/2 offered by ALPN, and a browser-style call works over it.
func TestServeTLSHandshakes(t *testing.T) {
	t.Parallel()
	backend := serveBackend(t, false)
	cert := testutil.NewCert(t)
	descriptors := filepath.Join(t.TempDir(), "greet.binpb")
	serveWriteDescriptors(t, descriptors, greetv1.File_greet_v1_greet_proto)
	url, stderr, _, _ := hardStartServe(t, "--backend", backend, "--allow-origin", serveOrigin,
		"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile, "--descriptors", descriptors)
	if !strings.HasPrefix(url, "https://") {
		t.Fatalf("printed URL %q, want https://", url)
	}
	addr := strings.TrimPrefix(url, "https://")
	tests := []struct {
		name    string
		conf    *tls.Config
		wantErr bool
	}{
		{name: "TLS 1.0", conf: &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, wantErr: true},
		{name: "TLS 1.1", conf: &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, wantErr: true},
		{name: "TLS 1.2", conf: &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}},
		{name: "TLS 1.3", conf: &tls.Config{MinVersion: tls.VersionTLS13}},
		{name: "TLS 1.2 with insecure suites only", wantErr: true, conf: &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			conf := tt.conf.Clone()
			conf.RootCAs = cert.Pool
			conf.NextProtos = []string{"h2", "http/1.1"}
			conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, conf)
			if tt.wantErr {
				if err == nil {
					_ = conn.Close()
					t.Fatalf("handshake with %s succeeded (version %#x)", tt.name, conn.ConnectionState().Version)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v; stderr: %s", err, stderr.String())
			}
			defer conn.Close()
			if p := conn.ConnectionState().NegotiatedProtocol; p != "h2" {
				t.Errorf("ALPN negotiated %q, want h2", p)
			}
		})
	}
	t.Run("call over TLS", func(t *testing.T) {
		t.Parallel()
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cert.Pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
		t.Cleanup(tr.CloseIdleConnections)
		client := greetv1connect.NewGreetServiceClient(&http.Client{Transport: serveOriginRT{tr}}, url, connect.WithGRPCWeb())
		res, err := client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "Tls"}))
		if err != nil {
			t.Fatal(err)
		}
		if res.Msg.GetGreeting() != "Hello, Tls!" || res.Header().Get("Access-Control-Allow-Origin") != serveOrigin {
			t.Errorf("%v %v", res.Msg, res.Header())
		}
	})
}

// hardTLSBackend starts greetd over TLS with cert.
func hardTLSBackend(t *testing.T, cert testutil.Cert) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12})
	s := greetd.NewServer(nil, grpc.Creds(creds))
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// hardInsecureFlagNames are names a flag that skips backend verification could
// have (BUG-8 added backend-insecure-skip-verify).
var hardInsecureFlagNames = []string{"backend-insecure-skip-verify", "backend-insecure", "backend-tls-insecure", "backend-skip-verify"}

// TestServeBackendTLSVerifies puts a TLS backend with a
// self-signed certificate behind corsgate serve: without its CA the gateway
// must refuse the backend (calls UNAVAILABLE, /healthz 503), with it calls
// work, and a wrong --backend-server-name is refused too.
func TestServeBackendTLSVerifies(t *testing.T) {
	t.Parallel()
	cert := testutil.NewCert(t, "greet.internal")
	backend := hardTLSBackend(t, cert)
	descriptors := filepath.Join(t.TempDir(), "greet.binpb")
	serveWriteDescriptors(t, descriptors, greetv1.File_greet_v1_greet_proto)
	tests := []struct {
		name   string
		args   []string
		wantOK bool
	}{
		{name: "https backend, system roots", args: []string{"--backend", "https://" + backend}},
		{name: "backend-tls, system roots", args: []string{"--backend", backend, "--backend-tls"}},
		{name: "backend-ca", args: []string{"--backend", backend, "--backend-ca", cert.CertFile}, wantOK: true},
		{name: "https backend and backend-ca", args: []string{"--backend", "https://" + backend, "--backend-ca", cert.CertFile}, wantOK: true},
		{name: "backend-ca, server name in the certificate", args: []string{"--backend", backend, "--backend-ca", cert.CertFile, "--backend-server-name", "greet.internal"}, wantOK: true},
		{name: "backend-ca, wrong server name", args: []string{"--backend", backend, "--backend-ca", cert.CertFile, "--backend-server-name", "evil.internal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, stderr, _, _ := hardStartServe(t, append(tt.args, "--allow-origin", serveOrigin, "--descriptors", descriptors)...)
			client := greetv1connect.NewGreetServiceClient(serveClient(t, false), url, connect.WithGRPCWeb())
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "Tls"}))
			if tt.wantOK {
				if err != nil {
					t.Fatalf("call through a verified TLS backend: %v; stderr: %s", err, stderr.String())
				}
				if res.Msg.GetGreeting() != "Hello, Tls!" {
					t.Errorf("greeting %q", res.Msg.GetGreeting())
				}
				return
			}
			if err == nil {
				t.Fatal("the gateway talked to a backend whose certificate it cannot verify")
			}
			if got := connect.CodeOf(err); got != connect.CodeUnavailable {
				t.Errorf("code %v (%v), want unavailable", got, err)
			}
			hres, err := http.Get(url + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			_ = hres.Body.Close()
			if hres.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("/healthz = %d with an unverifiable backend, want 503", hres.StatusCode)
			}
		})
	}

	t.Run("explicit skip flag logs a warning", func(t *testing.T) {
		t.Parallel()
		flag := ""
		for _, name := range hardInsecureFlagNames {
			if newServeCmd().Flags().Lookup(name) != nil {
				flag = name
			}
		}
		if flag == "" {
			t.Fatalf("corsgate serve has none of the flags %q", hardInsecureFlagNames)
		}
		url, stderr, _, _ := hardStartServe(t, "--backend", backend, "--backend-tls", "--"+flag,
			"--allow-origin", serveOrigin, "--descriptors", descriptors)
		client := greetv1connect.NewGreetServiceClient(serveClient(t, false), url, connect.WithGRPCWeb())
		if _, err := client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "Tls"})); err != nil {
			t.Fatalf("--%s: %v", flag, err)
		}
		if log := strings.ToLower(stderr.String()); !strings.Contains(log, "level=warn") || !strings.Contains(log, "verif") {
			t.Errorf("--%s logged no warning about skipped verification: %s", flag, stderr.String())
		}
	})
}

// TestServeWildcardCredentials tries the "*" origin with
// credentials through every way of configuring corsgate: flags of serve,
// demo and explain, a YAML config, the JSON protoc-gen-corsgate writes, and
// config and flags mixed. Each must exit with status 2 and one line, before
// listening.
func TestServeWildcardCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		serveWriteFile(t, p, content)
		return p
	}
	yamlBoth := write("both.yaml", "backend: 127.0.0.1:1\nallow-origin: ['*']\nallow-credentials: true\n")
	yamlStar := write("star.yaml", "backend: 127.0.0.1:1\nallow-origin: ['*']\n")
	yamlCreds := write("creds.yaml", "backend: 127.0.0.1:1\nallow-origin: [https://app.example.com]\nallow-credentials: true\n")
	generated := write("corsgate.json", `{
  "listen": "127.0.0.1:0",
  "backend": "127.0.0.1:1",
  "allow-origin": ["*"],
  "allow-credentials": true,
  "max-age": 7200,
  "services": []
}`)
	tests := []struct {
		name string
		args []string
	}{
		{name: "serve flags", args: []string{"serve", "--backend", "127.0.0.1:1", "--allow-origin", "*", "--allow-credentials"}},
		{name: "serve flags, origin in a list", args: []string{"serve", "--backend", "127.0.0.1:1", "--allow-origin", "https://a.example.com,*", "--allow-credentials=true"}},
		{name: "serve yaml", args: []string{"serve", "--config", yamlBoth}},
		{name: "serve generated json", args: []string{"serve", "--config", generated}},
		{name: "serve yaml origin, flag credentials", args: []string{"serve", "--config", yamlStar, "--allow-credentials"}},
		{name: "serve yaml credentials, flag origin", args: []string{"serve", "--config", yamlCreds, "--allow-origin", "*"}},
		{name: "serve expose star", args: []string{"serve", "--backend", "127.0.0.1:1", "--allow-origin", "https://a.example.com", "--expose-header", "*", "--allow-credentials"}},
		{name: "demo flags", args: []string{"demo", "--allow-origin", "*", "--allow-credentials", "--listen", "127.0.0.1:0", "--web-listen", "127.0.0.1:0"}},
		{name: "explain flags", args: []string{"explain", "--allow-origin", "*", "--allow-credentials", "--origin", "https://evil.example", "--procedure", "/greet.v1.GreetService/Greet"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := tt.args
			if args[0] == "serve" {
				args = append(args, "--listen", "127.0.0.1:0")
			}
			code := run(ctx, args, &stdout, &stderr)
			if ctx.Err() != nil {
				t.Fatal("corsgate started serving with a wildcard and credentials")
			}
			if code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %q", code, exitUsage, stderr.String())
			}
			if strings.Count(stderr.String(), "\n") != 1 || !strings.Contains(stderr.String(), "credentials") {
				t.Errorf("stderr %q, want one line about credentials", stderr.String())
			}
			if strings.Contains(stdout.String(), "http") {
				t.Errorf("stdout %q: a URL was printed, so something listened", stdout.String())
			}
			t.Run("names the flag", func(t *testing.T) {
				if !strings.Contains(stderr.String(), "allow-credentials") {
					t.Errorf("stderr %q does not name allow-credentials", stderr.String())
				}
			})
		})
	}
}

// TestServeSIGTERM runs the built corsgate binary under load and
// sends SIGTERM: unary calls in flight finish with their answer, the
// listener stops accepting at once, open streams keep flowing for the grace
// and then end with a status, and the process exits 0.
func TestServeSIGTERM(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	const (
		grace     = 1500 * time.Millisecond
		slowUnary = 1 * time.Second
	)
	// Backend: greetd whose Greet takes slowUnary for the name "slow".
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	backendSrv := greetd.NewServer(&greetsvc.Greeter{}, grpc.ChainUnaryInterceptor(
		func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
			if r, ok := req.(*greetv1.GreetRequest); ok && r.GetName() == "slow" {
				select {
				case <-time.After(slowUnary):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return next(ctx, req)
		}))
	go func() { _ = backendSrv.Serve(lis) }()
	t.Cleanup(backendSrv.Stop)

	bin := buildBinary(t)
	cmd := exec.Command(bin, "serve", "--backend", lis.Addr().String(), "--listen", "127.0.0.1:0",
		"--allow-origin", serveOrigin, "--shutdown-grace", grace.String())
	pr, pw := io.Pipe()
	stderr := &testutil.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = pw, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() {
		exited <- cmd.Wait()
		_ = pw.Close()
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	urlc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Gateway: "); ok {
				urlc <- v
			}
		}
	}()
	var url string
	select {
	case url = <-urlc:
	case err := <-exited:
		t.Fatalf("corsgate serve exited: %v\n%s", err, stderr)
	case <-time.After(startWait):
		t.Fatalf("no URL printed\n%s", stderr)
	}
	addr := strings.TrimPrefix(url, "http://")
	deadline := time.Now().Add(startWait)
	for {
		res, err := http.Get(url + "/healthz")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never became healthy\n%s", stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Load: streams over HTTP/1.1 (gRPC-Web) and h2c (Connect), slow unary
	// calls in flight, and a background of quick calls.
	type streamResult struct {
		name          string
		afterSignal   int
		err           error
		endedAfterSig time.Duration
	}
	var signaled time.Time
	var sigMu sync.Mutex
	sigAt := func() time.Time { sigMu.Lock(); defer sigMu.Unlock(); return signaled }
	streamKinds := []struct {
		name string
		h2   bool
		opts []connect.ClientOption
	}{
		{name: "grpc-web/h1", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
		{name: "connect/h2c", h2: true},
		{name: "grpc-web/h2c", h2: true, opts: []connect.ClientOption{connect.WithGRPCWeb()}},
	}
	streams := make(chan streamResult, len(streamKinds))
	started := make(chan struct{}, len(streamKinds))
	for _, k := range streamKinds {
		go func() {
			client := greetv1connect.NewGreetServiceClient(serveClient(t, k.h2), url, k.opts...)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "S", Count: 10000, IntervalMs: 50}))
			if err != nil {
				started <- struct{}{}
				streams <- streamResult{name: k.name, err: err}
				return
			}
			defer s.Close()
			r := streamResult{name: k.name}
			first := true
			for s.Receive() {
				if first {
					first = false
					started <- struct{}{}
				}
				if at := sigAt(); !at.IsZero() {
					r.afterSignal++
				}
			}
			if first {
				started <- struct{}{}
			}
			r.err = s.Err()
			if at := sigAt(); !at.IsZero() {
				r.endedAfterSig = time.Since(at)
			}
			streams <- r
		}()
	}
	for range streamKinds {
		<-started
	}

	const inflight = 6
	unary := make(chan error, inflight)
	for i := range inflight {
		go func() {
			client := greetv1connect.NewGreetServiceClient(serveClient(t, i%2 == 0), url, connect.WithGRPCWeb())
			res, err := client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "slow"}))
			if err == nil && res.Msg.GetGreeting() != "Hello, slow!" {
				err = errors.New("wrong greeting " + res.Msg.GetGreeting())
			}
			unary <- err
		}()
	}
	stopQuick := make(chan struct{})
	var quick sync.WaitGroup
	for range 4 {
		quick.Add(1)
		go func() {
			defer quick.Done()
			client := greetv1connect.NewGreetServiceClient(serveClient(t, false), url)
			for {
				select {
				case <-stopQuick:
					return
				default:
				}
				_, _ = client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "q"}))
			}
		}()
	}
	time.Sleep(slowUnary / 3) // the slow calls are now in the backend

	sigMu.Lock()
	signaled = time.Now()
	sigMu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// The listener closes at once: new connections are refused while the
	// old ones finish.
	refusedBy := time.Now().Add(grace / 2)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		_ = c.Close()
		if time.Now().After(refusedBy) {
			t.Errorf("new connections still accepted %v after SIGTERM", time.Since(sigAt()))
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	for range inflight {
		if err := <-unary; err != nil {
			t.Errorf("a unary call in flight at SIGTERM failed: %v", err)
		}
	}
	close(stopQuick)
	quick.Wait()

	var results []streamResult
	for range streamKinds {
		r := <-streams
		results = append(results, r)
		switch {
		case r.err == nil:
			t.Errorf("%s: the stream ended cleanly at shutdown; want a status telling it was cut", r.name)
		case r.afterSignal == 0:
			t.Errorf("%s: no message after SIGTERM: the stream did not get the grace (ended with %v)", r.name, r.err)
		case r.endedAfterSig < grace-200*time.Millisecond || r.endedAfterSig > grace+5*time.Second:
			t.Errorf("%s: ended %v after SIGTERM, want about the %v grace", r.name, r.endedAfterSig, grace)
		}
		t.Logf("%s: %d messages after SIGTERM, ended %v after it with %v", r.name, r.afterSignal, r.endedAfterSig.Round(time.Millisecond), r.err)
	}
	// At the end of the grace each stream must get its final status (the
	// gateway writes CANCELED), not a connection cut under it, which the
	// client can only report as a broken message.
	t.Run("streams end with a status", func(t *testing.T) {
		for _, r := range results {
			code := connect.CodeOf(r.err)
			if code != connect.CodeCanceled && code != connect.CodeUnavailable && code != connect.CodeDeadlineExceeded {
				t.Errorf("%s: ended with %v: the connection was closed before the final status went out", r.name, r.err)
			}
		}
	})

	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("corsgate serve exited with %v after SIGTERM, want status 0\n%s", err, stderr)
		}
	case <-time.After(grace + 10*time.Second):
		t.Fatalf("corsgate serve still running %v after SIGTERM\n%s", grace+10*time.Second, stderr)
	}
	if !strings.Contains(stderr.String(), "shutting down") {
		t.Errorf("stderr does not log the shutdown:\n%s", stderr)
	}
}

// TestServeHugeHeaders sends preflights whose headers a browser
// never sends to corsgate serve over the wire: the server refuses them
// (431, over its 64 KiB header limit, or 403 from the policy) quickly, and
// keeps serving.
func TestServeHugeHeaders(t *testing.T) {
	t.Parallel()
	backend := serveBackend(t, false)
	rs := startServe(t, "--backend", backend, "--allow-origin", serveOrigin)
	addr := strings.TrimPrefix(rs.url, "http://")
	many := func(n int, line string) string { return strings.Repeat(line, n) }
	tests := []struct {
		name    string
		headers string
		want    int
	}{
		{name: "1 MiB of commas", headers: "Access-Control-Request-Headers: " + strings.Repeat(",", 1<<20) + "\r\n", want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "10 000 header lines", headers: many(10000, "Access-Control-Request-Headers: content-type\r\n"), want: http.StatusRequestHeaderFieldsTooLarge},
		{name: "8 KiB name", headers: "Access-Control-Request-Headers: " + strings.Repeat("a", 8<<10) + "\r\n", want: http.StatusForbidden},
		{name: "30 lines of 100 names", headers: many(30, "Access-Control-Request-Headers: "+strings.TrimSuffix(strings.Repeat("content-type,", 100), ",")+"\r\n"), want: http.StatusForbidden},
		{name: "control byte in a name", headers: "Access-Control-Request-Headers: content-type\x01\r\n", want: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			start := time.Now()
			req := "OPTIONS /greet.v1.GreetService/Greet HTTP/1.1\r\nHost: " + addr + "\r\nOrigin: " + serveOrigin +
				"\r\nAccess-Control-Request-Method: POST\r\n" + tt.headers + "\r\n"
			go func() { _, _ = c.Write([]byte(req)) }() // the server may answer before reading it all
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			_ = res.Body.Close()
			if res.StatusCode != tt.want {
				t.Errorf("status %d, want %d", res.StatusCode, tt.want)
			}
			if v := res.Header.Get("Access-Control-Allow-Origin"); v != "" {
				t.Errorf("refused preflight carries Access-Control-Allow-Origin %q", v)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("answered in %v", took)
			}
		})
	}
	if res := preflight(t, rs.url+"/greet.v1.GreetService/Greet", "POST", "content-type"); res.StatusCode != http.StatusNoContent {
		t.Errorf("a sane preflight after the hostile ones: %d", res.StatusCode)
	}
}
