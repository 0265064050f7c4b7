package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/internal/greetd"
	"github.com/corsgate/corsgate/internal/testutil"
)

const routeAdminOrigin = "https://admin.example.com"

// writeRoutedConfig writes the README's "many services" config for two
// backends and returns its path.
func writeRoutedConfig(t *testing.T, greet, testing, extra string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "corsgate.yaml")
	serveWriteFile(t, path, `allow-origin: [`+serveOrigin+`]
backends:
  greet:
    addresses: [`+greet+`]
  testing:
    addresses: [`+testing+`]
`+extra+`routes:
  - services: ["greet.v1.*"]
    backend: greet
  - services: ["grpc.testing.TestService"]
    backend: testing
    allow-origin: [`+routeAdminOrigin+`]
`)
	return path
}

func preflightStatus(t *testing.T, url, origin string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, url, nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	return res.StatusCode, res.Header.Get("Access-Control-Allow-Origin")
}

// TestServeRouted runs corsgate serve with a config of two backends and two
// routes: each service answers from its backend, each route's origin is
// allowed on it and refused on the other, and metrics and /healthz name
// the backends.
func TestServeRouted(t *testing.T) {
	t.Parallel()
	path := writeRoutedConfig(t, serveBackend(t, false), testutil.StartTestService(t), "")
	rs := startServe(t, "--config", path, "--metrics-listen", "127.0.0.1:0")

	greet := greetv1connect.NewGreetServiceClient(http.DefaultClient, rs.url)
	req := connect.NewRequest(&greetv1.GreetRequest{Name: "Routes"})
	req.Header().Set("Origin", serveOrigin)
	res, err := greet.Greet(context.Background(), req)
	if err != nil || res.Header().Get("Access-Control-Allow-Origin") != serveOrigin {
		t.Fatalf("Greet: %v %v", res, err)
	}
	unary := connect.NewClient[testgrpc.SimpleRequest, testgrpc.SimpleResponse](http.DefaultClient,
		rs.url+"/grpc.testing.TestService/UnaryCall", connect.WithGRPCWeb())
	ureq := connect.NewRequest(&testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("x")}})
	ureq.Header().Set("Origin", routeAdminOrigin)
	ures, err := unary.CallUnary(context.Background(), ureq)
	if err != nil || ures.Header().Get("Access-Control-Allow-Origin") != routeAdminOrigin {
		t.Fatalf("UnaryCall: %v %v", ures, err)
	}
	for _, tt := range []struct {
		path, origin string
		want         int
	}{
		{path: "/greet.v1.GreetService/Greet", origin: serveOrigin, want: http.StatusNoContent},
		{path: "/greet.v1.GreetService/Greet", origin: routeAdminOrigin, want: http.StatusForbidden},
		{path: "/grpc.testing.TestService/UnaryCall", origin: routeAdminOrigin, want: http.StatusNoContent},
		{path: "/grpc.testing.TestService/UnaryCall", origin: serveOrigin, want: http.StatusForbidden},
	} {
		if code, _ := preflightStatus(t, rs.url+tt.path, tt.origin); code != tt.want {
			t.Errorf("preflight %s from %s = %d, want %d", tt.path, tt.origin, code, tt.want)
		}
	}
	hres, err := http.Get(rs.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(hres.Body)
	_ = hres.Body.Close()
	if !strings.Contains(string(body), "backend greet: ok") || !strings.Contains(string(body), "backend testing: ok") {
		t.Errorf("/healthz = %q, want a line per backend", body)
	}
	mres, err := http.Get(rs.metrics)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(mres.Body)
	_ = mres.Body.Close()
	for _, want := range []string{
		`corsgate_requests_total{backend="greet",code="ok",procedure="/greet.v1.GreetService/Greet",protocol="connect"} 1`,
		`corsgate_requests_total{backend="testing",code="ok",procedure="/grpc.testing.TestService/UnaryCall",protocol="grpc_web"} 1`,
		`corsgate_cors_preflights_total{backend="testing",reason="ok",result="allowed"} 1`,
		`corsgate_cors_preflights_total{backend="greet",reason="origin",result="refused"} 1`,
		`corsgate_backend_errors_total{backend="testing"} 0`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// TestServeRoutedRefused checks routed configs corsgate serve refuses at
// start, with exit status 2 and the key named.
func TestServeRoutedRefused(t *testing.T) {
	t.Parallel()
	files := filepath.Join(t.TempDir(), "greet.binpb")
	serveWriteDescriptors(t, files, greetv1.File_greet_v1_greet_proto)
	tests := []struct {
		name, config, want string
		args               []string
	}{
		{name: "pattern matching no service of a descriptors file", want: `routes[0].services[0]: "greet.v2.*" matches no service of backend greet`,
			config: "allow-origin: [" + serveOrigin + "]\nbackends: {greet: {addresses: [\"127.0.0.1:1\"], descriptors: " + files + "}}\n" +
				"routes: [{services: [\"greet.v2.*\"], backend: greet}]\n"},
		{name: "service in two backends' descriptor files", want: `routes: service greet.v1.GreetService is in the descriptors of backends a and b`,
			config: "backends: {a: {addresses: [\"127.0.0.1:1\"], descriptors: " + files + "}, b: {addresses: [\"127.0.0.1:2\"], descriptors: " + files + "}}\n"},
		{name: "backend flag with backends", want: "--backend with the backends", args: []string{"--backend", "127.0.0.1:1"},
			config: "backends: {a: {addresses: [\"127.0.0.1:1\"]}}\n"},
		{name: "route credentials with a star origin", want: `routes[0].allow-credentials`, args: []string{"--allow-origin", "*"},
			config: "backends: {a: {addresses: [\"127.0.0.1:1\"]}}\nroutes: [{services: [a.B], backend: a, allow-credentials: true}]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "c.yaml")
			serveWriteFile(t, path, tt.config)
			var out, errOut testutil.SyncBuffer
			code := run(context.Background(), append([]string{"serve", "--listen", "127.0.0.1:0", "--config", path}, tt.args...), &out, &errOut)
			if code != 2 || !strings.Contains(errOut.String(), tt.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, errOut.String(), tt.want)
			}
		})
	}
}

// TestServeMutualTLS runs mutual TLS both ways: a backend that requires a
// client certificate, reached with backends.NAME.cert and key, and a
// listener that verifies browsers' certificates with --client-ca.
func TestServeMutualTLS(t *testing.T) {
	t.Parallel()
	c := testutil.NewCert(t)
	certFile, keyFile, pair, pool := c.CertFile, c.KeyFile, c.TLS, c.Pool
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{pair},
		ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert})
	s := greetd.NewServer(nil, grpc.Creds(creds))
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	for _, tt := range []struct {
		mode           string
		anonymousFails bool
	}{{mode: "require", anonymousFails: true}, {mode: "verify-if-given"}} {
		t.Run(tt.mode, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "c.yaml")
			serveWriteFile(t, path, "allow-origin: ["+serveOrigin+"]\nbackends:\n  greet:\n    addresses: [\""+lis.Addr().String()+
				"\"]\n    ca: "+certFile+"\n    cert: "+certFile+"\n    key: "+keyFile+"\n")
			var out, errOut testutil.SyncBuffer
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"serve", "--listen", "127.0.0.1:0", "--config", path, "--tls-cert", certFile, "--tls-key", keyFile,
					"--client-ca", certFile, "--client-auth", tt.mode}, &out, &errOut)
			}()
			t.Cleanup(func() { cancel(); <-done })
			var url string
			for deadline := time.Now().Add(10 * time.Second); url == ""; time.Sleep(10 * time.Millisecond) {
				url, _ = strings.CutPrefix(strings.TrimSpace(out.String()), "Gateway: ")
				if time.Now().After(deadline) {
					t.Fatalf("no URL; stderr %s", errOut.String())
				}
			}
			call := func(withCert bool) error {
				conf := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
				if withCert {
					conf.Certificates = []tls.Certificate{pair}
				}
				tr := &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true}
				defer tr.CloseIdleConnections()
				client := greetv1connect.NewGreetServiceClient(&http.Client{Transport: tr}, url)
				_, err := client.Greet(context.Background(), connect.NewRequest(&greetv1.GreetRequest{Name: "mtls"}))
				return err
			}
			var err error
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if err = call(true); err == nil || time.Now().After(deadline) {
					break
				}
			}
			if err != nil {
				t.Fatalf("with a client certificate: %v; stderr %s", err, errOut.String())
			}
			if err := call(false); (err != nil) != tt.anonymousFails {
				t.Errorf("without a client certificate: %v, want failure %v", err, tt.anonymousFails)
			}
		})
	}
}
