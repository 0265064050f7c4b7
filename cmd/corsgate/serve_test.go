package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/internal/greetd"
	"github.com/corsgate/corsgate/internal/greetsvc"
	"github.com/corsgate/corsgate/internal/testutil"
)

const serveOrigin = "https://app.example.com"

// serveBackend starts greetd (reflection and health) on loopback, or, when
// bare, a grpc-go server with the greet service alone.
func serveBackend(t *testing.T, bare bool) string {
	t.Helper()
	if !bare {
		return testutil.StartGreetd(t, nil)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	greetv1.RegisterGreetServiceServer(s, greetsvc.NewGRPC(nil))
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// runningServe is `corsgate serve` running in-process.
type runningServe struct {
	url     string
	metrics string
	grpc    string // host:port of --grpc-listen
	stderr  *testutil.SyncBuffer
	cancel  context.CancelFunc
	done    chan int
}

// startServe runs corsgate serve with args and waits for its printed URLs
// and a healthy /healthz.
func startServe(t *testing.T, args ...string) *runningServe {
	t.Helper()
	return startServeProbing(t, http.DefaultClient, args...)
}

// startServeTLS is startServe for a gateway serving TLS with a certificate
// that cert's pool trusts.
func startServeTLS(t *testing.T, cert testutil.Cert, args ...string) *runningServe {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cert.Pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return startServeProbing(t, &http.Client{Transport: tr}, args...)
}

// startServeProbing is startServe probing /healthz with probe.
func startServeProbing(t *testing.T, probe *http.Client, args ...string) *runningServe {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	rs := &runningServe{stderr: &testutil.SyncBuffer{}, cancel: cancel, done: make(chan int, 1)}
	go func() {
		rs.done <- run(ctx, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...), pw, rs.stderr)
		_ = pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-rs.done:
		case <-time.After(10 * time.Second):
			t.Error("corsgate serve did not stop")
		}
	})
	urls := make(chan [3]string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		var u [3]string
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "Gateway: "); ok {
				u[0] = v
			}
			if v, ok := strings.CutPrefix(sc.Text(), "Metrics: "); ok {
				u[1] = v
			}
			if v, ok := strings.CutPrefix(sc.Text(), "gRPC: "); ok {
				u[2] = v
			}
			if u[0] != "" && (u[1] != "" || !containsArg(args, "--metrics-listen")) && (u[2] != "" || !containsArg(args, "--"+flagGRPCListen)) {
				urls <- u
				break
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	select {
	case u := <-urls:
		rs.url, rs.metrics, rs.grpc = u[0], u[1], u[2]
	case code := <-rs.done:
		rs.done <- code
		t.Fatalf("corsgate serve exited with %d: %s", code, rs.stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("corsgate serve printed no URL; stderr: %s", rs.stderr.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := probe.Get(rs.url + "/healthz")
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never became healthy (%v); stderr: %s", err, rs.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return rs
}

func containsArg(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// serveClient is an HTTP client over h2c (or HTTP/1.1) sending Origin.
func serveClient(t *testing.T, h2c bool) *http.Client {
	t.Helper()
	var p http.Protocols
	if h2c {
		p.SetUnencryptedHTTP2(true)
	} else {
		p.SetHTTP1(true)
	}
	tr := &http.Transport{Protocols: &p}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: serveOriginRT{tr}}
}

type serveOriginRT struct{ next http.RoundTripper }

func (o serveOriginRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Origin", serveOrigin)
	return o.next.RoundTrip(r)
}

func preflight(t *testing.T, url, method string, headers string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodOptions, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", serveOrigin)
	req.Header.Set("Access-Control-Request-Method", method)
	if headers != "" {
		req.Header.Set("Access-Control-Request-Headers", headers)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res
}

func TestServeUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	badYAML := filepath.Join(dir, "bad.yaml")
	serveWriteFile(t, badYAML, "backend: 127.0.0.1:1\nlisen: 127.0.0.1:0\n")
	insecureYAML := filepath.Join(dir, "insecure.yaml")
	serveWriteFile(t, insecureYAML, "backend: 127.0.0.1:1\nbackend-ca: ca.pem\nbackend-insecure-skip-verify: true\n")
	badGRPCYAML := filepath.Join(dir, "grpc.yaml")
	serveWriteFile(t, badGRPCYAML, "backend: 127.0.0.1:1\ngrpc-listen: grpc\n")
	notDescriptors := filepath.Join(dir, "junk.binpb")
	serveWriteFile(t, notDescriptors, "not a descriptor set")
	tests := []struct {
		name string
		args []string
		want string // in the one-line error
	}{
		{name: "no backend", args: nil, want: "--backend is required"},
		{name: "backend without port", args: []string{"--backend", "localhost"}, want: "--backend"},
		{name: "backend scheme", args: []string{"--backend", "ftp://localhost:1"}, want: "--backend"},
		{name: "cert without key", args: []string{"--backend", "127.0.0.1:1", "--tls-cert", "c.pem"}, want: "--tls-cert and --tls-key"},
		{name: "message size", args: []string{"--backend", "127.0.0.1:1", "--max-message-size", "0"}, want: "--max-message-size"},
		{name: "request buffer", args: []string{"--backend", "127.0.0.1:1", "--max-request-buffer", "0"}, want: "--max-request-buffer"},
		{name: "request buffer under message size", args: []string{"--backend", "127.0.0.1:1", "--max-request-buffer", "1000"}, want: "--max-request-buffer"},
		{name: "listen", args: []string{"--backend", "127.0.0.1:1", "--listen", "nope"}, want: "--listen"},
		{name: "grpc listen", args: []string{"--backend", "127.0.0.1:1", "--grpc-listen", "nope"}, want: "--grpc-listen"},
		{name: "grpc listen on listen", args: []string{"--backend", "127.0.0.1:1", "--listen", "127.0.0.1:8999", "--grpc-listen", "127.0.0.1:8999"}, want: "--grpc-listen"},
		{name: "grpc listen key", args: []string{"--config", badGRPCYAML}, want: "grpc-listen"},
		{name: "unknown flag", args: []string{"--backend", "127.0.0.1:1", "--nope"}, want: "--nope"},
		{name: "bad origin", args: []string{"--backend", "127.0.0.1:1", "--allow-origin", "null"}, want: "null"},
		{name: "missing config", args: []string{"--config", filepath.Join(dir, "missing.yaml")}, want: "missing.yaml"},
		{name: "unknown config key", args: []string{"--config", badYAML}, want: "lisen"},
		{name: "bad descriptors", args: []string{"--backend", "127.0.0.1:1", "--descriptors", notDescriptors}, want: "--descriptors"},
		{name: "missing CA", args: []string{"--backend", "127.0.0.1:1", "--backend-ca", filepath.Join(dir, "ca.pem")}, want: "--backend-ca"},
		{name: "skip verify with CA", args: []string{"--backend", "127.0.0.1:1", "--backend-ca", "ca.pem", "--backend-insecure-skip-verify"}, want: "--backend-insecure-skip-verify with --backend-ca"},
		{name: "skip verify with CA, config", args: []string{"--config", insecureYAML}, want: "--backend-insecure-skip-verify with --backend-ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			code := run(context.Background(), append([]string{"serve", "--listen", "127.0.0.1:0"}, tt.args...), &out, &errOut)
			if code != exitUsage {
				t.Errorf("exit = %d, want %d; stderr: %s", code, exitUsage, errOut.String())
			}
			msg := errOut.String()
			if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, tt.want) {
				t.Errorf("stderr = %q, want one line containing %q", msg, tt.want)
			}
		})
	}
}

func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	backend := serveBackend(t, false)
	rs := startServe(t, "--backend", backend, "--allow-origin", serveOrigin, "--metrics-listen", "127.0.0.1:0")

	res := preflight(t, rs.url+"/greet.v1.GreetService/Greet", "POST", "content-type,x-grpc-web,authorization")
	if res.StatusCode/100 != 2 || res.Header.Get("Access-Control-Allow-Origin") != serveOrigin {
		t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
	}
	if res := preflight(t, rs.url+"/greet.v1.GreetService/ResetGreetings", "POST", "content-type"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight of a browser-barred method allowed: %v", res.Header)
	}

	for name, opts := range map[string][]connect.ClientOption{
		"grpc-web": {connect.WithGRPCWeb()},
		"connect":  nil,
	} {
		client := greetv1connect.NewGreetServiceClient(serveClient(t, false), rs.url, opts...)
		out, err := client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "Ada"}))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if out.Msg.GetGreeting() != "Hello, Ada!" || out.Header().Get("Access-Control-Allow-Origin") != serveOrigin {
			t.Errorf("%s: %v %v", name, out.Msg, out.Header())
		}
	}

	// The gateway's own health service.
	hres, err := http.Post(rs.url+"/grpc.health.v1.Health/Check", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hres.Body)
	_ = hres.Body.Close()
	if !strings.Contains(string(body), "SERVING") {
		t.Errorf("health check: %d %s", hres.StatusCode, body)
	}

	mres, err := http.Get(rs.metrics)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mres.Body)
	_ = mres.Body.Close()
	for _, want := range []string{
		`corsgate_requests_total{backend="default",code="ok",procedure="/greet.v1.GreetService/Greet",protocol="grpc_web"} 1`,
		`corsgate_requests_total{backend="default",code="ok",procedure="/greet.v1.GreetService/Greet",protocol="connect"} 1`,
		`corsgate_cors_preflights_total{backend="default",reason="ok",result="allowed"} 1`,
		`corsgate_cors_preflights_total{backend="default",reason="barred",result="refused"} 1`,
		`corsgate_request_duration_seconds_count{backend="default",procedure="/greet.v1.GreetService/Greet",protocol="connect"} 1`,
		`corsgate_backend_errors_total{backend="default"} 0`,
		`corsgate_routing_errors_total{backend="default"} 0`,
		// runtime/metrics' allocation counters, for the bench's bytes per call.
		"\ngo_gc_heap_allocs_bytes_total ",
		"\ngo_gc_heap_allocs_objects_total ",
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	rs.cancel()
	select {
	case code := <-rs.done:
		rs.done <- code
		if code != exitOK {
			t.Errorf("exit = %d; stderr: %s", code, rs.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit after cancel")
	}
}

// TestServeConfigFile checks that --config sets the flags, that flags given
// on the command line win, and that services: replaces derived rules.
func TestServeConfigFile(t *testing.T) {
	t.Parallel()
	backend := serveBackend(t, false)
	path := filepath.Join(t.TempDir(), "corsgate.yaml")
	serveWriteFile(t, path, `backend: `+backend+`
allow-origin: [https://other.example.com]
max-message-size: 2048
services:
  - name: greet.v1.GreetService
    procedures:
      - name: Greet
        methods: [POST]
`)
	rs := startServe(t, "--config", path, "--allow-origin", serveOrigin)

	res := preflight(t, rs.url+"/greet.v1.GreetService/Greet", "POST", "content-type")
	if got := res.Header.Get("Access-Control-Allow-Origin"); got != serveOrigin {
		t.Errorf("the command line's origin: ACAO = %q", got)
	}
	if res := preflight(t, rs.url+"/greet.v1.GreetService/Greet", "GET", ""); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("GET allowed though services: lists only POST")
	}
	if res := preflight(t, rs.url+"/greet.v1.GreetService/Greet", "POST", "authorization"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("authorization allowed though services: declares no request header")
	}
	if res := preflight(t, rs.url+"/greet.v1.GreetService/SetGreeting", "POST", "content-type"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Error("SetGreeting allowed though services: does not list it")
	}
	client := greetv1connect.NewGreetServiceClient(serveClient(t, false), rs.url, connect.WithGRPCWeb())
	_, err := client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: strings.Repeat("x", 3000)}))
	if got := connect.CodeOf(err); got != connect.CodeResourceExhausted {
		t.Errorf("max-message-size from the file: code = %v (%v)", got, err)
	}
}

// TestServeDescriptors serves a backend without reflection from a
// descriptor file.
func TestServeDescriptors(t *testing.T) {
	t.Parallel()
	backend := serveBackend(t, true)
	path := filepath.Join(t.TempDir(), "greet.binpb")
	serveWriteDescriptors(t, path, greetv1.File_greet_v1_greet_proto)
	rs := startServe(t, "--backend", "http://"+backend, "--descriptors", path, "--allow-origin", serveOrigin)
	client := greetv1connect.NewGreetServiceClient(serveClient(t, true), rs.url, connect.WithGRPCWeb())
	stream, err := client.GreetStream(context.Background(), connect.NewRequest(&greetv1.GreetStreamRequest{Name: "Bo", Count: 4}))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for stream.Receive() {
		n++
	}
	if err := stream.Err(); err != nil || n != 4 {
		t.Errorf("stream: %d messages, %v", n, err)
	}
	if res := preflight(t, rs.url+"/greet.v1.GreetService/Greet", "GET", "authorization,x-request-id"); res.Header.Get("Access-Control-Allow-Origin") != serveOrigin {
		t.Errorf("GET with declared headers refused: %v", res.Header)
	}
}

// TestServeShutdownGrace checks that a stream still open at shutdown gets
// the grace and is then canceled, and that serve exits cleanly.
func TestServeShutdownGrace(t *testing.T) {
	t.Parallel()
	backend := serveBackend(t, false)
	rs := startServe(t, "--backend", backend, "--shutdown-grace", "300ms")
	client := greetv1connect.NewGreetServiceClient(serveClient(t, true), rs.url, connect.WithGRPC())
	stream, err := client.GreetStream(context.Background(), connect.NewRequest(&greetv1.GreetStreamRequest{Name: "Bo", Count: 100, IntervalMs: 100}))
	if err != nil {
		t.Fatal(err)
	}
	if !stream.Receive() {
		t.Fatalf("no first message: %v", stream.Err())
	}
	start := time.Now()
	rs.cancel()
	n := 1
	for stream.Receive() {
		n++
	}
	took := time.Since(start)
	if stream.Err() == nil {
		t.Errorf("the stream ended cleanly after %d messages; want it cut at the end of the grace", n)
	}
	if took < 200*time.Millisecond || took > 5*time.Second {
		t.Errorf("stream ended %v after shutdown began, want about the 300ms grace", took)
	}
	select {
	case code := <-rs.done:
		rs.done <- code
		if code != exitOK {
			t.Errorf("exit = %d; stderr: %s", code, rs.stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit")
	}
}

func serveWriteFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// serveWriteDescriptors writes fd and its imports as a FileDescriptorSet.
func serveWriteDescriptors(t *testing.T, path string, fd protoreflect.FileDescriptor) {
	t.Helper()
	data, err := proto.Marshal(testutil.DescriptorSet(fd))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// serveCerts writes a CA and a certificate for 127.0.0.1 signed by it, and
// returns their paths and the CA pool.
func serveCerts(t *testing.T) (caPEM, certPEM, keyPEM string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "corsgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"backend.test"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, certPEM, keyPEM = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	serveWriteFile(t, caPEM, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})))
	serveWriteFile(t, certPEM, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	serveWriteFile(t, keyPEM, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})))
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return caPEM, certPEM, keyPEM, pool
}

// TestServeTLS runs TLS on both sides: the backend verified with
// --backend-ca (and --backend-server-name), the gateway serving HTTP/1.1 and
// HTTP/2 (ALPN) with --tls-cert and --tls-key.
func TestServeTLS(t *testing.T) {
	t.Parallel()
	caPEM, certPEM, keyPEM, pool := serveCerts(t)
	cert, err := tls.LoadX509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := greetd.NewServer(nil, grpc.Creds(credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}})))
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	tests := []struct {
		name string
		args []string
	}{
		{name: "https URL", args: []string{"--backend", "https://" + lis.Addr().String(), "--backend-ca", caPEM}},
		{name: "server name", args: []string{"--backend", lis.Addr().String(), "--backend-ca", caPEM, "--backend-server-name", "backend.test"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// startServe's health probe speaks plain HTTP; probe over TLS here instead.
			ctx, cancel := context.WithCancel(context.Background())
			out := &testutil.SyncBuffer{}
			errOut := &testutil.SyncBuffer{}
			done := make(chan int, 1)
			args := append([]string{"serve", "--listen", "127.0.0.1:0", "--tls-cert", certPEM, "--tls-key", keyPEM, "--allow-origin", serveOrigin}, tt.args...)
			go func() { done <- run(ctx, args, out, errOut) }()
			t.Cleanup(func() {
				cancel()
				<-done
			})
			var url string
			deadline := time.Now().Add(10 * time.Second)
			for url == "" {
				if v, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "Gateway: "); ok {
					url = v
				}
				if time.Now().After(deadline) {
					t.Fatalf("no URL; stderr %s", errOut.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
			if !strings.HasPrefix(url, "https://") {
				t.Fatalf("url %q", url)
			}
			tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, ForceAttemptHTTP2: true}
			t.Cleanup(tr.CloseIdleConnections)
			hc := &http.Client{Transport: serveOriginRT{tr}}
			for name, opts := range map[string][]connect.ClientOption{"grpc-web": {connect.WithGRPCWeb()}, "grpc": {connect.WithGRPC()}} {
				client := greetv1connect.NewGreetServiceClient(hc, url, opts...)
				var res *connect.Response[greetv1.GreetResponse]
				for {
					res, err = client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "Tls"}))
					if err == nil || time.Now().After(deadline) {
						break
					}
					time.Sleep(20 * time.Millisecond) // descriptors still loading
				}
				if err != nil {
					t.Fatalf("%s: %v; stderr %s", name, err, errOut.String())
				}
				if res.Msg.GetGreeting() != "Hello, Tls!" {
					t.Errorf("%s: %v", name, res.Msg)
				}
			}
		})
	}
}
