package greetsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"connectrpc.com/connect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

// Connect serves the Greeter through connect-go.
type Connect struct {
	// Greeter is the shared state; nil means a fresh one.
	*Greeter
}

var _ greetv1connect.GreetServiceHandler = Connect{}

// NewConnect returns a connect-go implementation over g (a fresh Greeter when nil).
func NewConnect(g *Greeter) Connect {
	if g == nil {
		g = &Greeter{}
	}
	return Connect{Greeter: g}
}

func connectCall(name string, _ connect.Spec, method string, h http.Header) Call {
	return Call{Procedure: name, HTTPMethod: method, Header: h}
}

// Greet implements greet.v1.GreetService.Greet.
func (s Connect) Greet(_ context.Context, req *connect.Request[greetv1.GreetRequest]) (*connect.Response[greetv1.GreetResponse], error) {
	s.record(connectCall("Greet", req.Spec(), req.HTTPMethod(), req.Header().Clone()))
	if req.Msg.GetName() == "" {
		cerr := connect.NewError(connect.CodeInvalidArgument, errors.New(emptyNameMessage))
		if d, err := connect.NewErrorDetail(errDetail()); err == nil {
			cerr.AddDetail(d)
		}
		cerr.Meta().Set(HeaderVersion, Version)
		return nil, cerr
	}
	res := connect.NewResponse(&greetv1.GreetResponse{Greeting: s.greet(req.Msg.GetName())})
	res.Header().Set(HeaderVersion, Version)
	res.Trailer().Set(TrailerName, TrailerValue)
	return res, nil
}

// SetGreeting implements greet.v1.GreetService.SetGreeting.
func (s Connect) SetGreeting(_ context.Context, req *connect.Request[greetv1.SetGreetingRequest]) (*connect.Response[greetv1.SetGreetingResponse], error) {
	s.record(connectCall("SetGreeting", req.Spec(), req.HTTPMethod(), req.Header().Clone()))
	if req.Msg.GetGreeting() == "" {
		return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("greeting is required"))
	}
	return connect.NewResponse(&greetv1.SetGreetingResponse{Previous: s.setWord(req.Msg.GetGreeting())}), nil
}

// GreetStream implements greet.v1.GreetService.GreetStream.
func (s Connect) GreetStream(ctx context.Context, req *connect.Request[greetv1.GreetStreamRequest], stream *connect.ServerStream[greetv1.GreetStreamResponse]) error {
	s.record(connectCall("GreetStream", req.Spec(), req.HTTPMethod(), req.Header().Clone()))
	count, interval, err := streamPlan(req.Msg)
	if err != nil {
		return connect.NewError(connect.CodeInvalidArgument, err)
	}
	word := s.word()
	for i := 1; i <= count; i++ {
		if interval > 0 && i > 1 {
			if err := sleep(ctx, interval); err != nil {
				return connect.NewError(connect.CodeCanceled, err)
			}
		}
		msg := &greetv1.GreetStreamResponse{Greeting: fmt.Sprintf("%s, %s!", word, req.Msg.GetName()), Index: int32(i)}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	return nil
}

// GreetMany implements greet.v1.GreetService.GreetMany.
func (s Connect) GreetMany(_ context.Context, stream *connect.ClientStream[greetv1.GreetManyRequest]) (*connect.Response[greetv1.GreetManyResponse], error) {
	s.record(connectCall("GreetMany", stream.Spec(), "POST", stream.RequestHeader().Clone()))
	var names []string
	for stream.Receive() {
		names = append(names, stream.Msg().GetName())
	}
	if err := stream.Err(); err != nil {
		return nil, err
	}
	return connect.NewResponse(&greetv1.GreetManyResponse{Greeting: manyGreeting(s.word(), names), Count: int32(len(names))}), nil
}

// Chat implements greet.v1.GreetService.Chat.
func (s Connect) Chat(_ context.Context, stream *connect.BidiStream[greetv1.ChatRequest, greetv1.ChatResponse]) error {
	s.record(connectCall("Chat", stream.Spec(), "POST", stream.RequestHeader().Clone()))
	for {
		msg, err := stream.Receive()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&greetv1.ChatResponse{Text: "you said: " + msg.GetText()}); err != nil {
			return err
		}
	}
}

// ResetGreetings implements greet.v1.GreetService.ResetGreetings.
func (s Connect) ResetGreetings(_ context.Context, req *connect.Request[greetv1.ResetGreetingsRequest]) (*connect.Response[greetv1.ResetGreetingsResponse], error) {
	s.record(connectCall("ResetGreetings", req.Spec(), req.HTTPMethod(), req.Header().Clone()))
	s.setWord("")
	return connect.NewResponse(&greetv1.ResetGreetingsResponse{}), nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
