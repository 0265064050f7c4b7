package grpcwebserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
	"github.com/corsgate/corsgate/interceptor"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

const appOrigin = "https://app.example.com"

// start serves a real grpc-go GreetService through Handler on 127.0.0.1,
// over HTTP/1.1 and unencrypted HTTP/2.
func start(tb testing.TB, opts ...interceptor.Option) string {
	tb.Helper()
	s := grpc.NewServer()
	greetv1.RegisterGreetServiceServer(s, greetsvc.NewGRPC(nil))
	tb.Cleanup(s.Stop)
	p, err := interceptor.New(append([]interceptor.Option{interceptor.WithAllowedOrigins(appOrigin)}, opts...)...)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := Handler(p, s)
	if err != nil {
		tb.Fatalf("Handler() error = %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	tb.Cleanup(srv.Close)
	return srv.URL
}

type originTransport struct {
	base   http.RoundTripper
	origin string
	header chan http.Header
}

func (o *originTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Origin", o.origin)
	res, err := o.base.RoundTrip(r)
	if err == nil {
		select {
		case o.header <- res.Header.Clone():
		default:
		}
	}
	return res, err
}

func client(tb testing.TB, url string, http2 bool, opts ...connect.ClientOption) (greetv1connect.GreetServiceClient, chan http.Header) {
	tb.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	if http2 {
		tr.Protocols.SetUnencryptedHTTP2(true)
	} else {
		tr.Protocols.SetHTTP1(true)
	}
	tb.Cleanup(tr.CloseIdleConnections)
	ot := &originTransport{base: tr, origin: appOrigin, header: make(chan http.Header, 1)}
	return greetv1connect.NewGreetServiceClient(&http.Client{Transport: ot}, url, opts...), ot.header
}

func TestCalls(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  []connect.ClientOption
		http2 bool
	}{
		{name: "grpc-web over HTTP/1.1", opts: []connect.ClientOption{connect.WithGRPCWeb()}},
		{name: "grpc over h2c", opts: []connect.ClientOption{connect.WithGRPC()}, http2: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, headers := client(t, start(t), tt.http2, tt.opts...)
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			res, err := c.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "Ada"}))
			if err != nil {
				t.Fatalf("Greet() error = %v", err)
			}
			if !strings.Contains(res.Msg.GetGreeting(), "Ada") {
				t.Errorf("greeting = %q", res.Msg.GetGreeting())
			}
			if got := res.Trailer().Get(greetsvc.TrailerName); got != greetsvc.TrailerValue {
				t.Errorf("trailer %s = %q, want %q", greetsvc.TrailerName, got, greetsvc.TrailerValue)
			}
			hdr := <-headers
			if got := hdr.Values("Access-Control-Allow-Origin"); !slices.Equal(got, []string{appOrigin}) {
				t.Errorf("ACAO = %q, want exactly [%q] (the wrapper's own must be dropped)", got, appOrigin)
			}
			if got := hdr.Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("ACAC = %q: the wrapper's hard-coded credentials leaked", got)
			}
			if got := hdr.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "Grpc-Status") || !strings.Contains(got, "X-Greet-Trailer") {
				t.Errorf("ACEH = %q", got)
			}

			stream, err := c.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "Ada", Count: 3}))
			if err != nil {
				t.Fatalf("GreetStream() error = %v", err)
			}
			n := 0
			for stream.Receive() {
				n++
			}
			if err := stream.Err(); err != nil || n != 3 {
				t.Errorf("GreetStream() got %d messages, error %v; want 3, nil", n, err)
			}
			_ = stream.Close()

			_, err = c.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{}))
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("Greet(empty) error = %v, want INVALID_ARGUMENT", err)
			}
		})
	}
}

func TestPreflight(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		origin     string
		path       string
		acrh       string
		wantStatus int
	}{
		{name: "grpc-web JS", origin: appOrigin, path: "/greet.v1.GreetService/Greet", acrh: "content-type,x-grpc-web,x-user-agent", wantStatus: 204},
		{name: "without x-grpc-web", origin: appOrigin, path: "/greet.v1.GreetService/Greet", acrh: "connect-protocol-version,content-type", wantStatus: 204},
		{name: "declared authorization", origin: appOrigin, path: "/greet.v1.GreetService/Greet", acrh: "authorization,content-type,x-grpc-web", wantStatus: 204},
		{name: "disallowed origin", origin: "https://evil.example.net", path: "/greet.v1.GreetService/Greet", acrh: "content-type,x-grpc-web", wantStatus: 403},
		{name: "barred", origin: appOrigin, path: "/greet.v1.GreetService/ResetGreetings", acrh: "content-type,x-grpc-web", wantStatus: 403},
		{name: "unknown", origin: appOrigin, path: "/greet.v1.GreetService/Nope", acrh: "content-type,x-grpc-web", wantStatus: 403},
	}
	url := start(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, url+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", tt.acrh)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.wantStatus)
			}
			acao := res.Header.Values("Access-Control-Allow-Origin")
			if tt.wantStatus == 204 && !slices.Equal(acao, []string{tt.origin}) {
				t.Errorf("ACAO = %q, want [%q]", acao, tt.origin)
			}
			if tt.wantStatus != 204 && len(acao) != 0 {
				t.Errorf("refused preflight has ACAO %q", acao)
			}
		})
	}
}

func TestHandlerErrors(t *testing.T) {
	t.Parallel()
	p, err := interceptor.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Handler(nil, grpc.NewServer()); err == nil {
		t.Errorf("Handler(nil policy) error = nil")
	}
	if _, err := Handler(p, nil); err == nil {
		t.Errorf("Handler(nil server) error = nil")
	}
	s := grpc.NewServer()
	s.RegisterService(&grpc.ServiceDesc{ServiceName: "nowhere.v1.Ghost", HandlerType: (*any)(nil)}, struct{}{})
	if _, err := Handler(p, s); err == nil || !strings.Contains(err.Error(), `"nowhere.v1.Ghost"`) {
		t.Errorf("Handler(unregistered descriptor) error = %v, want one naming the service", err)
	}
}
