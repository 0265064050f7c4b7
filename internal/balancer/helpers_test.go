package balancer

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/greetsvc"
	"github.com/corsgate/corsgate/internal/h2client"
	"github.com/corsgate/corsgate/internal/testutil"
)

func TestMain(m *testing.M) {
	testutil.RunGreetdProcess()
	goleak.VerifyTestMain(m)
}

// counted is an in-process greetd whose calls are counted.
type counted struct {
	addr  string
	calls atomic.Int64
}

func startCounted(tb testing.TB) *counted {
	tb.Helper()
	c := &counted{}
	c.addr = testutil.StartGreetd(tb, &greetsvc.Greeter{Record: func(greetsvc.Call) { c.calls.Add(1) }})
	return c
}

// closedPort returns a loopback address nothing listens on.
func closedPort(tb testing.TB) string {
	tb.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr := lis.Addr().String()
	_ = lis.Close()
	return addr
}

// newPool returns a pool for cfg, closed at the test's end.
func newPool(tb testing.TB, cfg Config) *Pool {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close() })
	return p
}

// grpcFrame is m as one gRPC message.
func grpcFrame(m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	out := make([]byte, 5+len(b))
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	copy(out[5:], b)
	return out
}

// greetRequest is a gRPC Greet call as the gateway makes one: a body held
// whole and replayable.
func greetRequest(name string) *http.Request {
	frame := grpcFrame(&greetv1.GreetRequest{Name: name})
	return &http.Request{
		Method:        http.MethodPost,
		URL:           &url.URL{Scheme: "http", Host: "greet", Path: "/greet.v1.GreetService/Greet"},
		Host:          "greet",
		Header:        http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}},
		Body:          h2client.NewBytesBody(frame),
		GetBody:       func() (io.ReadCloser, error) { return h2client.NewBytesBody(frame), nil },
		ContentLength: int64(len(frame)),
	}
}

// errTransport marks a call that failed in the pool or the transport (the
// gateway's UNAVAILABLE), as opposed to a gRPC status.
var errTransport = errors.New("transport")

// greet makes a Greet call through p and checks its answer.
func greet(ctx context.Context, p *Pool, req *http.Request) error {
	resp, err := p.Call(ctx, req, true)
	if err != nil {
		return fmt.Errorf("%w: %w", errTransport, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%w: reading the body: %w", errTransport, err)
	}
	st := resp.Trailer.Get("Grpc-Status")
	if st == "" {
		st = resp.Header.Get("Grpc-Status")
	}
	if st != "0" {
		return fmt.Errorf("grpc-status %q: %s", st, resp.Trailer.Get("Grpc-Message"))
	}
	if len(data) < 5 {
		return fmt.Errorf("body %q holds no message", data)
	}
	var res greetv1.GreetResponse
	if err := proto.Unmarshal(data[5:], &res); err != nil {
		return err
	}
	if !strings.Contains(res.GetGreeting(), "Hello") {
		return fmt.Errorf("greeting %q", res.GetGreeting())
	}
	return nil
}

// status returns the status of the replica at addr, or a zero status.
func status(p *Pool, addr string) ReplicaStatus {
	for _, s := range p.Replicas() {
		if s.Address == addr && s.State != StateDraining {
			return s
		}
	}
	for _, s := range p.Replicas() {
		if s.Address == addr {
			return s
		}
	}
	return ReplicaStatus{}
}

// eventually polls cond every 10 ms until it holds or d passed.
func eventually(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
