package greetd_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/greetd"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// start serves a fresh greetd on 127.0.0.1 and returns a client connection.
// The server stops when the test ends.
func start(tb testing.TB, g *greetsvc.Greeter) *grpc.ClientConn {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- greetd.Serve(ctx, greetd.NewServer(g), lis, time.Second, quiet) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn
}

func TestGreet(t *testing.T) {
	t.Parallel()
	calls := make(chan greetsvc.Call, 1)
	conn := start(t, &greetsvc.Greeter{Record: func(c greetsvc.Call) { calls <- c }})
	ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "r1")
	var header, trailer metadata.MD
	res, err := greetv1.NewGreetServiceClient(conn).Greet(ctx, &greetv1.GreetRequest{Name: "Ada"},
		grpc.Header(&header), grpc.Trailer(&trailer))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.GetGreeting(), "Hello, Ada!"; got != want {
		t.Errorf("greeting = %q, want %q", got, want)
	}
	if got := header.Get("x-greet-version"); !slices.Equal(got, []string{greetsvc.Version}) {
		t.Errorf("x-greet-version = %q", got)
	}
	if got := trailer.Get("x-greet-trailer"); !slices.Equal(got, []string{greetsvc.TrailerValue}) {
		t.Errorf("x-greet-trailer = %q", got)
	}
	if c := <-calls; c.Procedure != "Greet" || c.Header.Get("x-request-id") != "r1" {
		t.Errorf("recorded call = %+v", c)
	}
}

func TestGreetError(t *testing.T) {
	t.Parallel()
	conn := start(t, nil)
	_, err := greetv1.NewGreetServiceClient(conn).Greet(t.Context(), &greetv1.GreetRequest{})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || len(st.Details()) != 1 {
		t.Fatalf("status = %v, details %v; want InvalidArgument with one detail", st.Code(), st.Details())
	}
	if _, ok := st.Details()[0].(*greetv1.GreetErrorDetail); !ok {
		t.Errorf("detail = %T, want *greetv1.GreetErrorDetail", st.Details()[0])
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	conn := start(t, nil)
	client := healthpb.NewHealthClient(conn)
	tests := []struct {
		name    string
		service string
		want    healthpb.HealthCheckResponse_ServingStatus
		code    codes.Code
	}{
		{name: "server", service: "", want: healthpb.HealthCheckResponse_SERVING, code: codes.OK},
		{name: "greet", service: "greet.v1.GreetService", want: healthpb.HealthCheckResponse_SERVING, code: codes.OK},
		{name: "unknown", service: "nope.v1.Nope", code: codes.NotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := client.Check(t.Context(), &healthpb.HealthCheckRequest{Service: tt.service})
			if got := status.Code(err); got != tt.code {
				t.Fatalf("code = %v, want %v (%v)", got, tt.code, err)
			}
			if res.GetStatus() != tt.want {
				t.Errorf("status = %v, want %v", res.GetStatus(), tt.want)
			}
		})
	}
}

func TestReflection(t *testing.T) {
	t.Parallel()
	conn := start(t, nil)
	want := []string{"greet.v1.GreetService", "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"}

	t.Run("v1", func(t *testing.T) {
		t.Parallel()
		stream, err := reflectionv1.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		ask := func(req *reflectionv1.ServerReflectionRequest) *reflectionv1.ServerReflectionResponse {
			t.Helper()
			if err := stream.Send(req); err != nil {
				t.Fatal(err)
			}
			res, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		var got []string
		for _, s := range ask(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_ListServices{}}).GetListServicesResponse().GetService() {
			got = append(got, s.GetName())
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("services = %q, want %q", got, want)
		}
		files := ask(&reflectionv1.ServerReflectionRequest{MessageRequest: &reflectionv1.ServerReflectionRequest_FileContainingSymbol{
			FileContainingSymbol: "greet.v1.GreetService",
		}}).GetFileDescriptorResponse().GetFileDescriptorProto()
		if len(files) == 0 {
			t.Fatal("no file descriptor for greet.v1.GreetService")
		}
		fd := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(files[0], fd); err != nil {
			t.Fatal(err)
		}
		if fd.GetName() != "greet/v1/greet.proto" || fd.GetService()[0].GetMethod()[0].GetOptions().GetIdempotencyLevel() != descriptorpb.MethodOptions_NO_SIDE_EFFECTS {
			t.Errorf("file %q: Greet lost its idempotency option", fd.GetName())
		}
	})
	t.Run("v1alpha", func(t *testing.T) {
		t.Parallel()
		stream, err := reflectionv1alpha.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		//lint:ignore SA1019 v1alpha is what older reflection clients (and the gateway's fallback) ask
		if err := stream.Send(&reflectionv1alpha.ServerReflectionRequest{MessageRequest: &reflectionv1alpha.ServerReflectionRequest_ListServices{}}); err != nil {
			t.Fatal(err)
		}
		res, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		//lint:ignore SA1019 v1alpha is what older reflection clients (and the gateway's fallback) ask
		if n := len(res.GetListServicesResponse().GetService()); n != len(want) {
			t.Errorf("v1alpha lists %d services, want %d", n, len(want))
		}
	})
}

func TestServeGrace(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		interval int32 // ms between stream messages
		grace    time.Duration
		wantCode codes.Code // of the in-flight stream
	}{
		{name: "stream finishes within grace", interval: 20, grace: 5 * time.Second, wantCode: codes.OK},
		{name: "stream cut after grace", interval: 5000, grace: 100 * time.Millisecond, wantCode: codes.Unavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- greetd.Serve(ctx, greetd.NewServer(nil), lis, tt.grace, quiet) }()
			conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			stream, err := greetv1.NewGreetServiceClient(conn).GreetStream(t.Context(),
				&greetv1.GreetStreamRequest{Name: "Ada", Count: 3, IntervalMs: tt.interval})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := stream.Recv(); err != nil { // the call is in flight
				t.Fatal(err)
			}
			cancel()
			var streamErr error
			for streamErr == nil {
				_, streamErr = stream.Recv()
			}
			if errors.Is(streamErr, context.Canceled) {
				t.Fatal(streamErr)
			}
			code := status.Code(streamErr)
			if streamErr.Error() == "EOF" {
				code = codes.OK
			}
			if code != tt.wantCode {
				t.Errorf("stream ended with %v, want %v", streamErr, tt.wantCode)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Serve = %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not return after shutdown")
			}
		})
	}
}

var quiet = slog.New(slog.DiscardHandler)
