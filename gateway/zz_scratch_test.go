package gateway_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

type slowGreet struct {
	greetv1connect.UnimplementedGreetServiceHandler
}

func (slowGreet) Greet(ctx context.Context, _ *connect.Request[greetv1.GreetRequest]) (*connect.Response[greetv1.GreetResponse], error) {
	select {
	case <-time.After(time.Second):
	case <-ctx.Done():
	}
	return nil, connect.NewError(connect.CodeDeadlineExceeded, ctx.Err())
}

type bodyCapture struct {
	next http.RoundTripper
	t    *testing.T
}

func (b bodyCapture) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := b.next.RoundTrip(r)
	if err != nil {
		b.t.Log("rt err", err)
		return res, err
	}
	body, rerr := io.ReadAll(res.Body)
	b.t.Logf("status %d body %q readerr %v", res.StatusCode, body, rerr)
	res.Body = io.NopCloser(bytesReader(body))
	return res, err
}

func TestScratchTimeout(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(greetv1connect.NewGreetServiceHandler(slowGreet{}))
	backendURL := serveHandler(t, mux)
	g, url := startGateway(t, backendURL, func(c *gateway.Config) { c.Files = protoregistry.GlobalFiles })
	waitReady(t, g)
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	hc := &http.Client{Transport: bodyCapture{&http.Transport{Protocols: &p}, t}}
	client := greetv1connect.NewGreetServiceClient(hc, url)
	for range 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "x"}))
		t.Log(err)
		cancel()
	}
}

func bytesReader(b []byte) io.Reader { return &sliceReader{b} }

type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}
