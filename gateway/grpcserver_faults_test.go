package gateway_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/greetsvc"
)

// probeGreeter is the greet service with a Greet that tells the deadline it
// got (header x-deadline-left-ms) and a Chat of the test's choosing.
type probeGreeter struct {
	*greetsvc.GRPC
	chat func(grpc.BidiStreamingServer[greetv1.ChatRequest, greetv1.ChatResponse]) error
}

func (p *probeGreeter) Greet(ctx context.Context, req *greetv1.GreetRequest) (*greetv1.GreetResponse, error) {
	if d, ok := ctx.Deadline(); ok {
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-deadline-left-ms", strconv.FormatInt(time.Until(d).Milliseconds(), 10)))
	}
	return p.GRPC.Greet(ctx, req)
}

func (p *probeGreeter) Chat(stream grpc.BidiStreamingServer[greetv1.ChatRequest, greetv1.ChatResponse]) error {
	if p.chat != nil {
		return p.chat(stream)
	}
	return p.GRPC.Chat(stream)
}

// startProbe serves p with reflection on a loopback port; the server is
// stopped when the test ends, or before by the test.
func startProbe(tb testing.TB, p *probeGreeter) (string, *grpc.Server) {
	tb.Helper()
	if p.GRPC == nil {
		p.GRPC = greetsvc.NewGRPC(nil)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := grpc.NewServer()
	greetv1.RegisterGreetServiceServer(s, p)
	reflection.Register(s)
	go func() { _ = s.Serve(lis) }()
	tb.Cleanup(s.Stop)
	return lis.Addr().String(), s
}

func probeGateway(tb testing.TB, p *probeGreeter, opts ...gatewayOption) (greetv1.GreetServiceClient, *grpc.Server) {
	tb.Helper()
	addr, srv := startProbe(tb, p)
	g, _ := startGateway(tb, addr, opts...)
	waitReady(tb, g)
	return greetv1.NewGreetServiceClient(serveGRPC(tb, g)), srv
}

// TestGRPCServerDeadline checks that the client's deadline reaches the
// backend, and that a call past it ends with DEADLINE_EXCEEDED at once.
func TestGRPCServerDeadline(t *testing.T) {
	t.Parallel()
	client, _ := probeGateway(t, &probeGreeter{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var header metadata.MD
	if _, err := client.Greet(ctx, &greetv1.GreetRequest{Name: "d"}, grpc.Header(&header)); err != nil {
		t.Fatal(err)
	}
	left, err := strconv.Atoi(strings.Join(header.Get("x-deadline-left-ms"), ""))
	if err != nil || left <= 3000 || left > 5000 {
		t.Errorf("backend's deadline %q ms away, want the client's 5 s less the trip", header.Get("x-deadline-left-ms"))
	}
	var noDeadline metadata.MD
	if _, err := client.Greet(callCtx(t), &greetv1.GreetRequest{Name: "d"}, grpc.Header(&noDeadline)); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	start := time.Now()
	stream, err := client.GreetStream(short, &greetv1.GreetStreamRequest{Name: "d", Count: 3, IntervalMs: 5000})
	if err == nil {
		for err == nil {
			_, err = stream.Recv()
		}
	}
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 3*time.Second {
		t.Errorf("stream past its deadline: %v after %v, want DEADLINE_EXCEEDED at 300 ms", err, time.Since(start))
	}
}

// TestGRPCServerBackendDown checks UNAVAILABLE for a backend that is not
// there: with descriptors from a file (the call fails), and with
// reflection (the descriptors are pending).
func TestGRPCServerBackendDown(t *testing.T) {
	t.Parallel()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	_ = lis.Close()
	for _, tc := range []struct {
		name  string
		files *protoregistry.Files
		want  string
	}{
		{name: "files", files: protoregistry.GlobalFiles, want: "backend unavailable"},
		{name: "reflection", want: "no descriptors"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g, _ := startGateway(t, dead, func(c *gateway.Config) { c.Files = tc.files })
			client := greetv1.NewGreetServiceClient(serveGRPC(t, g))
			_, err := client.Greet(callCtx(t), &greetv1.GreetRequest{Name: "x"})
			if status.Code(err) != codes.Unavailable || !strings.Contains(status.Convert(err).Message(), tc.want) {
				t.Errorf("Greet: %v, want UNAVAILABLE: …%s…", err, tc.want)
			}
		})
	}
}

// TestGRPCServerMessageSize checks that a client message over
// MaxMessageSize is refused with RESOURCE_EXHAUSTED, unary and streamed,
// before the backend sees it.
func TestGRPCServerMessageSize(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	_, client := grpcGateway(t, rec, func(c *gateway.Config) { c.MaxMessageSize = 1024 })
	ctx := callCtx(t)
	if _, err := client.Greet(ctx, &greetv1.GreetRequest{Name: strings.Repeat("x", 1000)}); err != nil {
		t.Fatalf("Greet under the limit: %v", err)
	}
	if _, err := client.Greet(ctx, &greetv1.GreetRequest{Name: strings.Repeat("x", 2000)}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("Greet over the limit: %v, want RESOURCE_EXHAUSTED", err)
	}
	stream, err := client.GreetMany(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Send(&greetv1.GreetManyRequest{Name: "small"})
	_ = stream.Send(&greetv1.GreetManyRequest{Name: strings.Repeat("x", 2000)})
	if _, err := stream.CloseAndRecv(); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("GreetMany with a message over the limit: %v, want RESOURCE_EXHAUSTED", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	greets := 0
	for _, c := range rec.calls {
		if c.Procedure == "Greet" {
			greets++
		}
	}
	if greets != 1 {
		t.Errorf("backend saw %d Greet calls, want 1: the one under the limit", greets)
	}
}

// TestGRPCServerBackendEndsClientStream checks a backend that ends a bidi
// call while the client, which has not finished sending, waits for the
// answer: the client gets the backend's status at once, not at its
// deadline.
func TestGRPCServerBackendEndsClientStream(t *testing.T) {
	t.Parallel()
	client, _ := probeGateway(t, &probeGreeter{chat: func(s grpc.BidiStreamingServer[greetv1.ChatRequest, greetv1.ChatResponse]) error {
		if _, err := s.Recv(); err != nil {
			return err
		}
		return status.Error(codes.FailedPrecondition, "one message is enough")
	}})
	stream, err := client.Chat(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&greetv1.ChatRequest{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = stream.Recv()
	if status.Code(err) != codes.FailedPrecondition || time.Since(start) > 3*time.Second {
		t.Errorf("Recv: %v after %v, want FAILED_PRECONDITION at once", err, time.Since(start))
	}
}

// TestGRPCServerBackendDiesMidStream stops the backend while a bidi call
// waits for its first answer and the client has more to send: the client
// gets UNAVAILABLE at once.
func TestGRPCServerBackendDiesMidStream(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	var once sync.Once
	client, srv := probeGateway(t, &probeGreeter{chat: func(s grpc.BidiStreamingServer[greetv1.ChatRequest, greetv1.ChatResponse]) error {
		if _, err := s.Recv(); err != nil {
			return err
		}
		once.Do(func() { close(started) })
		<-s.Context().Done()
		return s.Context().Err()
	}})
	stream, err := client.Chat(callCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&greetv1.ChatRequest{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend never saw the call")
	}
	srv.Stop()
	start := time.Now()
	_, err = stream.Recv()
	if status.Code(err) != codes.Unavailable || time.Since(start) > 3*time.Second {
		t.Errorf("Recv: %v after %v, want UNAVAILABLE at once", err, time.Since(start))
	}
}

// TestGRPCServerCancelReachesBackend cancels a bidi call from the client:
// the backend's call is canceled too.
func TestGRPCServerCancelReachesBackend(t *testing.T) {
	t.Parallel()
	ended := make(chan error, 1)
	client, _ := probeGateway(t, &probeGreeter{chat: func(s grpc.BidiStreamingServer[greetv1.ChatRequest, greetv1.ChatResponse]) error {
		msg, err := s.Recv()
		if err != nil {
			return err
		}
		if err := s.Send(&greetv1.ChatResponse{Text: msg.GetText()}); err != nil {
			return err
		}
		<-s.Context().Done()
		ended <- s.Context().Err()
		return nil
	}})
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := client.Chat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&greetv1.ChatRequest{Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("backend's call ended with %v, want canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the backend's call was not canceled")
	}
}

// TestGRPCServerNoLeaks runs every kind of call through the gRPC listener,
// some canceled, some failed, then stops it all: no goroutine may be left.
// Not parallel: goleak sees the whole process.
func TestGRPCServerNoLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	addr, srv := startProbe(t, &probeGreeter{})
	g, err := gateway.New(gateway.Config{Backend: addr, Files: protoregistry.GlobalFiles, MaxMessageSize: 1 << 10, Logger: hardDiscardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := g.GRPCServer()
	go func() { _ = gs.Serve(lis) }()
	conn := dialGRPC(t, lis.Addr().String())
	client := greetv1.NewGreetServiceClient(conn)
	ctx := callCtx(t)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			switch i % 5 {
			case 0:
				_, _ = client.Greet(ctx, &greetv1.GreetRequest{Name: "n"})
			case 1:
				_, _ = client.Greet(ctx, &greetv1.GreetRequest{Name: strings.Repeat("x", 2000)})
			case 2:
				s, err := client.GreetMany(ctx)
				if err == nil {
					_ = s.Send(&greetv1.GreetManyRequest{Name: "a"})
					_, _ = s.CloseAndRecv()
				}
			case 3:
				cctx, cancel := context.WithCancel(ctx)
				s, err := client.Chat(cctx)
				if err == nil {
					_ = s.Send(&greetv1.ChatRequest{Text: "a"})
					_, _ = s.Recv()
				}
				cancel()
			case 4:
				s, err := client.GreetStream(ctx, &greetv1.GreetStreamRequest{Name: "s", Count: 100})
				if err == nil {
					_, _ = s.Recv()
				}
			}
		})
	}
	wg.Wait()
	_ = conn.Close()
	gs.GracefulStop()
	_ = g.Close()
	srv.Stop()
	goleak.VerifyNone(t, ignore)
}
