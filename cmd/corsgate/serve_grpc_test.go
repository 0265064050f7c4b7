package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/internal/testutil"
)

func grpcGreetClient(t *testing.T, addr string, creds credentials.TransportCredentials) greetv1.GreetServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return greetv1.NewGreetServiceClient(conn)
}

// TestServeGRPCListen serves --grpc-listen next to --listen: gRPC works on
// both, Connect and gRPC-Web over h2c stay on --listen, and at shutdown a
// stream on the gRPC listener gets the grace, then is cut.
func TestServeGRPCListen(t *testing.T) {
	t.Parallel()
	rs := startServe(t, "--backend", serveBackend(t, false), "--grpc-listen", "127.0.0.1:0", "--shutdown-grace", "300ms")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client := grpcGreetClient(t, rs.grpc, insecure.NewCredentials())
	res, err := client.Greet(ctx, &greetv1.GreetRequest{Name: "Gl"})
	if err != nil || res.GetGreeting() != "Hello, Gl!" {
		t.Fatalf("Greet on --grpc-listen: %v, %v", res, err)
	}
	for name, opts := range map[string][]connect.ClientOption{"connect": nil, "grpc-web": {connect.WithGRPCWeb()}, "grpc": {connect.WithGRPC()}} {
		c := greetv1connect.NewGreetServiceClient(serveClient(t, true), rs.url, opts...)
		if _, err := c.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "h2c"})); err != nil {
			t.Errorf("%s over h2c on --listen: %v", name, err)
		}
	}
	c := greetv1connect.NewGreetServiceClient(serveClient(t, true), "http://"+rs.grpc)
	if _, err := c.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "x"})); err == nil {
		t.Error("Connect on --grpc-listen answered; want a refusal: it serves gRPC only")
	}

	stream, err := client.GreetStream(ctx, &greetv1.GreetStreamRequest{Name: "Bo", Count: 100, IntervalMs: 100})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rs.cancel()
	n := 1
	for err == nil {
		_, err = stream.Recv()
		n++
	}
	took := time.Since(start)
	if code := status.Code(err); code == codes.OK || took < 200*time.Millisecond || took > 5*time.Second {
		t.Errorf("stream ended with %v after %d messages, %v after shutdown began; want cut at the end of the 300ms grace", err, n, took)
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

// TestServeGRPCListenMutualTLS serves --grpc-listen with --tls-cert and
// --client-ca: a client with a certificate the CA signed is served, one
// without is refused in the handshake.
func TestServeGRPCListenMutualTLS(t *testing.T) {
	t.Parallel()
	cert := testutil.NewCert(t)
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &testutil.SyncBuffer{}, &testutil.SyncBuffer{}
	done := make(chan int, 1)
	args := []string{"serve", "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0", "--backend", serveBackend(t, false),
		"--tls-cert", cert.CertFile, "--tls-key", cert.KeyFile, "--client-ca", cert.CertFile}
	go func() { done <- run(ctx, args, out, errOut) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	var addr string
	deadline := time.Now().Add(10 * time.Second)
	for addr == "" {
		for line := range strings.SplitSeq(out.String(), "\n") {
			if v, ok := strings.CutPrefix(line, "gRPC: "); ok {
				addr = v
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no gRPC address; stderr %s", errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	withCert := grpcGreetClient(t, addr, credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cert.Pool, Certificates: []tls.Certificate{cert.TLS}}))
	var err error
	for {
		callCtx, cancelCall := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = withCert.Greet(callCtx, &greetv1.GreetRequest{Name: "m"})
		cancelCall()
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // descriptors still loading
	}
	if err != nil {
		t.Fatalf("Greet with a client certificate: %v; stderr %s", err, errOut.String())
	}
	without := grpcGreetClient(t, addr, credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cert.Pool}))
	callCtx, cancelCall := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelCall()
	if _, err := without.Greet(callCtx, &greetv1.GreetRequest{Name: "m"}); status.Code(err) != codes.Unavailable {
		t.Errorf("Greet without a client certificate: %v, want the handshake refused (UNAVAILABLE)", err)
	}
}

// TestServeGRPCListenReload reloads the config under --grpc-listen: a
// stream opened before keeps its config to its end, new calls get the new
// one (here a smaller --max-message-size), and raising the limit past the
// one the gRPC server started with is refused as needing a restart.
func TestServeGRPCListenReload(t *testing.T) {
	t.Parallel()
	backend := testutil.StartGreetd(t, nil)
	path := filepath.Join(t.TempDir(), "corsgate.yaml")
	conf := func(maxMsg int) string {
		return fmt.Sprintf("backend: %s\nallow-origin: [%s]\nmax-message-size: %d\n", backend, serveOrigin, maxMsg)
	}
	serveWriteFile(t, path, conf(1<<20))
	rs := startServe(t, "--config", path, "--grpc-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client := grpcGreetClient(t, rs.grpc, insecure.NewCredentials())
	big := strings.Repeat("b", 8<<10)
	if _, err := client.Greet(ctx, &greetv1.GreetRequest{Name: big}); err != nil {
		t.Fatalf("an 8 KiB Greet under a 1 MiB limit: %v", err)
	}
	stream, err := client.GreetStream(ctx, &greetv1.GreetStreamRequest{Name: "Lo", Count: 30, IntervalMs: 50})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}

	writeAtomically(t, path, conf(4<<10))
	waitUntil(t, "the smaller limit to reach --grpc-listen", func() bool {
		_, err := client.Greet(ctx, &greetv1.GreetRequest{Name: big})
		return status.Code(err) == codes.ResourceExhausted
	})
	if _, err := client.Greet(ctx, &greetv1.GreetRequest{Name: "small"}); err != nil {
		t.Errorf("a small Greet after the reload: %v", err)
	}
	writeAtomically(t, path, conf(2<<20))
	waitUntil(t, "the raise to be refused", func() bool { _, refused := reloadCounts(t, rs.metrics); return refused == 1 })
	if _, body := healthz(t, rs.url); !strings.Contains(body, "--max-message-size") || !strings.Contains(body, "restart") {
		t.Errorf("/healthz: %q, want the refusal naming --max-message-size and a restart", body)
	}

	n := 1
	for {
		if _, err = stream.Recv(); err != nil {
			break
		}
		n++
	}
	if !errors.Is(err, io.EOF) || n != 30 {
		t.Errorf("the stream opened before the reloads ended with %v after %d of 30 messages", err, n)
	}
}
