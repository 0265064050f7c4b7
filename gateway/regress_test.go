package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/corsgate/corsgate/gateway"
	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

// failingChat ends Chat with an error after the first message, while the
// client's request stream is still open.
type failingChat struct {
	greetv1connect.UnimplementedGreetServiceHandler
}

func (failingChat) Chat(_ context.Context, stream *connect.BidiStream[greetv1.ChatRequest, greetv1.ChatResponse]) error {
	if _, err := stream.Receive(); err != nil {
		return err
	}
	stream.ResponseTrailer().Set("x-custom-trailer", "bing")
	return connect.NewError(connect.CodeInternal, errors.New("bidi full duplex stream failed"))
}

// TestBidiErrorWhileClientStreams is the conformance case
// bidi-stream/full-duplex/error-no-responses, which hung: the backend
// answered while the client's request stream was open, and closing the
// backend response waited for the transport's pending read of the client's
// body, which only the client could end.
func TestBidiErrorWhileClientStreams(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.Handle(greetv1connect.NewGreetServiceHandler(failingChat{}))
	backendURL := serveHandler(t, mux)
	g, url := startGateway(t, backendURL, func(c *gateway.Config) { c.Files = protoregistry.GlobalFiles })
	waitReady(t, g)
	for _, k := range clientKinds() {
		if !k.h2 {
			continue
		}
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			client := newGreetClient(t, url, k)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			stream := client.Chat(ctx)
			if err := stream.Send(&greetv1.ChatRequest{Text: "x"}); err != nil {
				t.Fatal(err)
			}
			_, err := stream.Receive() // the request stream stays open
			if connect.CodeOf(err) != connect.CodeInternal {
				t.Errorf("err = %v, want internal", err)
			}
			if got := stream.ResponseTrailer().Get("x-custom-trailer"); got != "bing" {
				t.Errorf("trailer = %q", got)
			}
			_ = stream.CloseRequest()
			_ = stream.CloseResponse()
		})
	}
}
