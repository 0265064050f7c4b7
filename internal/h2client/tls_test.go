package h2client

import (
	"context"
	"crypto/tls"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/testutil"
)

// TestTLSBackend calls a grpc-go backend over TLS through the transport,
// and through net/http's client dialing with Transport.Dial, as the
// gateway's reflection and health clients do: one dial path for both.
func TestTLSBackend(t *testing.T) {
	t.Parallel()
	c := testutil.NewCert(t)
	cert, pool := c.TLS, c.Pool
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	addr := h2Backend(t, grpc.Creds(creds))
	// ServerName stays empty: the transport takes it from the Authority.
	tr := newTestTransport(t, Config{Authority: addr, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	frame := h2Frame(t, &greetv1.GreetRequest{Name: "tls"})

	var protocols http.Protocols
	protocols.SetHTTP2(true)
	std := &http.Transport{Protocols: &protocols, ForceAttemptHTTP2: true, DialTLSContext: tr.Dial}
	t.Cleanup(std.CloseIdleConnections)

	tests := []struct {
		name string
		rt   http.RoundTripper
	}{
		{name: "h2client", rt: tr},
		{name: "net/http over Dial", rt: std},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req := h2Request(ctx, addr, "Greet", NewBytesBody(frame))
			req.URL.Scheme = "https"
			resp, err := tt.rt.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			msgs, status := h2Messages(t, resp)
			if status != "0" || len(msgs) != 1 || greeting(t, msgs[0]) != "Hello, tls!" {
				t.Fatalf("status %q, %d messages; want 0 and the greeting", status, len(msgs))
			}
		})
	}
}

// TestTLSBackendWithoutH2 dials a TLS server that knows no ALPN (an old
// HTTP/1.1 server): the dial fails and says why. (A server that offers
// only other protocols fails the handshake itself.)
func TestTLSBackendWithoutH2(t *testing.T) {
	t.Parallel()
	c := testutil.NewCert(t)
	cert, pool := c.TLS, c.Pool
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.(*tls.Conn).Handshake()
				_ = c.Close()
			}()
		}
	}()
	tr := newTestTransport(t, Config{Authority: lis.Addr().String(), TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := tr.Dial(ctx, "tcp", "ignored:1"); err == nil || !strings.Contains(err.Error(), `negotiated "" over TLS, not h2`) {
		t.Errorf("Dial: %v, want the refusal of a backend without h2", err)
	}
	frame := h2Frame(t, &greetv1.GreetRequest{Name: "x"})
	if _, err := tr.Call(ctx, h2Request(ctx, lis.Addr().String(), "Greet", NewBytesBody(frame)), true); err == nil || !strings.Contains(err.Error(), "not h2") {
		t.Errorf("Call: %v, want the refusal of a backend without h2", err)
	}
}
