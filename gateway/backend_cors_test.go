package gateway_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

// hardCORSMetadata is what a misconfigured backend (or one that does CORS
// itself) adds to every response, as headers and as trailers.
var hardCORSMetadata = metadata.Pairs(
	"access-control-allow-origin", "*",
	"access-control-allow-credentials", "true",
	"access-control-expose-headers", "*",
	"access-control-allow-methods", "*",
	"access-control-allow-headers", "*",
	"access-control-max-age", "999999",
	"access-control-allow-private-network", "true",
)

// hardCORSBackendOptions make the backend set hardCORSMetadata on every call.
func hardCORSBackendOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
			_ = grpc.SetHeader(ctx, hardCORSMetadata)
			_ = grpc.SetTrailer(ctx, hardCORSMetadata)
			return next(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, next grpc.StreamHandler) error {
			_ = ss.SetHeader(hardCORSMetadata)
			ss.SetTrailer(hardCORSMetadata)
			return next(srv, ss)
		}),
	}
}

// TestBackendCORSHeadersRemoved puts a backend that sets its own
// CORS headers and trailers behind the gateway. In every protocol, for
// success and error, unary and stream, the client must see exactly the
// policy's CORS headers (one Access-Control-Allow-Origin, no credentials,
// the policy's exposed list) and none of the backend's, in headers or in
// trailers; an origin the policy refuses sees none at all.
func TestBackendCORSHeadersRemoved(t *testing.T) {
	t.Parallel()
	backend := startBackend(t, nil, hardCORSBackendOptions()...)
	_, gwURL := startGateway(t, backend, hardFilesOption(t))
	for _, k := range clientKinds() {
		for _, origin := range []string{testOrigin, "https://evil.example.net"} {
			allowed := origin == testOrigin
			name := k.name + map[bool]string{true: "/allowed", false: "/refused origin"}[allowed]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				base := httpClient(t, k.h2).Transport.(originTransport).next
				hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
					r = r.Clone(r.Context())
					r.Header.Set("Origin", origin)
					return base.RoundTrip(r)
				})}
				client := hardGreetClientWith(hc, gwURL, k)
				ctx := context.Background()
				check := func(what string, header, trailer http.Header) {
					t.Helper()
					for key, v := range header {
						if !strings.HasPrefix(key, "Access-Control-") {
							continue
						}
						switch {
						case key == "Access-Control-Allow-Origin" && allowed:
							if !slices.Equal(v, []string{testOrigin}) {
								t.Errorf("%s: Access-Control-Allow-Origin %q, want exactly [%q]", what, v, testOrigin)
							}
						case key == "Access-Control-Expose-Headers" && allowed:
							if len(v) != 1 || strings.Contains(v[0], "*") {
								t.Errorf("%s: Access-Control-Expose-Headers %q: not the policy's list", what, v)
							}
						default:
							t.Errorf("%s: response header %s: %q comes from the backend", what, key, v)
						}
					}
					if allowed && header.Get("Access-Control-Allow-Origin") == "" {
						t.Errorf("%s: no Access-Control-Allow-Origin for an allowed origin", what)
					}
					for key, v := range trailer {
						if strings.HasPrefix(strings.ToLower(key), "access-control-") || strings.HasPrefix(strings.ToLower(key), "trailer-access-control-") {
							t.Errorf("%s: trailer %s: %q comes from the backend", what, key, v)
						}
					}
				}

				res, err := client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{Name: "C"}))
				if err != nil {
					t.Fatal(err)
				}
				check("unary", res.Header(), res.Trailer())

				_, err = client.Greet(ctx, connect.NewRequest(&greetv1.GreetRequest{}))
				var cerr *connect.Error
				if !errAs(err, &cerr) {
					t.Fatalf("error %v", err)
				}
				check("unary error", cerr.Meta(), nil)

				stream, err := client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: "S", Count: 2}))
				if err != nil {
					t.Fatal(err)
				}
				for stream.Receive() {
				}
				if err := stream.Err(); err != nil {
					t.Fatal(err)
				}
				check("server stream", stream.ResponseHeader(), stream.ResponseTrailer())
				_ = stream.Close()
			})
		}
	}
}

// hardGreetClientWith builds a greet client of kind k over hc.
func hardGreetClientWith(hc *http.Client, baseURL string, k clientKind) interface {
	Greet(context.Context, *connect.Request[greetv1.GreetRequest]) (*connect.Response[greetv1.GreetResponse], error)
	GreetStream(context.Context, *connect.Request[greetv1.GreetStreamRequest]) (*connect.ServerStreamForClient[greetv1.GreetStreamResponse], error)
} {
	return greetv1connect.NewGreetServiceClient(hc, baseURL, k.opts...)
}
