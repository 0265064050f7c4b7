package balancer_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"

	"google.golang.org/protobuf/proto"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/internal/balancer"
	"github.com/corsgate/corsgate/internal/greetd"
	"github.com/corsgate/corsgate/internal/h2client"
)

// A pool of two greetd replicas, one of which is down: the call that
// picks the down one is sent to the other, and the down one is ejected.
func ExampleNew() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := greetd.NewServer(nil)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	down, _ := net.Listen("tcp", "127.0.0.1:0")
	_ = down.Close() // nothing listens there now

	pool, err := balancer.New(balancer.Config{
		Name:      "greet",
		Addresses: []string{down.Addr().String(), lis.Addr().String()},
		Logger:    slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer pool.Close()

	msg, _ := proto.Marshal(&greetv1.GreetRequest{Name: "pool"})
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	frame = append(frame, msg...)
	for range 2 {
		req := &http.Request{
			Method:  http.MethodPost,
			URL:     &url.URL{Path: "/greet.v1.GreetService/Greet"},
			Header:  http.Header{"Content-Type": {"application/grpc"}, "Te": {"trailers"}},
			Body:    h2client.NewBytesBody(frame),
			GetBody: func() (io.ReadCloser, error) { return h2client.NewBytesBody(frame), nil },
		}
		resp, err := pool.Call(context.Background(), req, true)
		if err != nil {
			fmt.Println("call failed:", err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		var res greetv1.GreetResponse
		_ = proto.Unmarshal(body[5:], &res)
		fmt.Println(res.GetGreeting(), "grpc-status", resp.Trailer.Get("Grpc-Status"))
	}
	for _, r := range pool.Replicas() {
		up := r.Address == lis.Addr().String()
		fmt.Printf("up=%v %s ejections=%d\n", up, r.State, r.Ejections)
	}
	// Unordered output:
	// Hello, pool! grpc-status 0
	// Hello, pool! grpc-status 0
	// up=false ejected ejections=1
	// up=true ready ejections=0
}
