package greetsvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// GRPC serves the Greeter through grpc-go.
type GRPC struct {
	greetv1.UnimplementedGreetServiceServer
	*Greeter
}

var _ greetv1.GreetServiceServer = (*GRPC)(nil)

// NewGRPC returns a grpc-go implementation over g (a fresh Greeter when nil).
func NewGRPC(g *Greeter) *GRPC {
	if g == nil {
		g = &Greeter{}
	}
	return &GRPC{Greeter: g}
}

func grpcCall(ctx context.Context, name string) Call {
	h := http.Header{}
	md, _ := metadata.FromIncomingContext(ctx)
	for k, vs := range md {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	return Call{Procedure: name, HTTPMethod: "POST", Header: h}
}

// Greet implements greet.v1.GreetService.Greet.
func (s *GRPC) Greet(ctx context.Context, req *greetv1.GreetRequest) (*greetv1.GreetResponse, error) {
	s.record(grpcCall(ctx, "Greet"))
	if err := grpc.SetHeader(ctx, metadata.Pairs(HeaderVersion, Version)); err != nil {
		return nil, err
	}
	if req.GetName() == "" {
		st, err := status.New(codes.InvalidArgument, emptyNameMessage).WithDetails(errDetail())
		if err != nil {
			return nil, status.Error(codes.Internal, err.Error())
		}
		return nil, st.Err()
	}
	if err := grpc.SetTrailer(ctx, metadata.Pairs(TrailerName, TrailerValue)); err != nil {
		return nil, err
	}
	return &greetv1.GreetResponse{Greeting: s.greet(req.GetName())}, nil
}

// SetGreeting implements greet.v1.GreetService.SetGreeting.
func (s *GRPC) SetGreeting(ctx context.Context, req *greetv1.SetGreetingRequest) (*greetv1.SetGreetingResponse, error) {
	s.record(grpcCall(ctx, "SetGreeting"))
	if req.GetGreeting() == "" {
		return nil, status.Error(codes.InvalidArgument, "greeting is required")
	}
	return &greetv1.SetGreetingResponse{Previous: s.setWord(req.GetGreeting())}, nil
}

// GreetStream implements greet.v1.GreetService.GreetStream.
func (s *GRPC) GreetStream(req *greetv1.GreetStreamRequest, stream grpc.ServerStreamingServer[greetv1.GreetStreamResponse]) error {
	ctx := stream.Context()
	s.record(grpcCall(ctx, "GreetStream"))
	count, interval, err := streamPlan(req)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	word := s.word()
	for i := 1; i <= count; i++ {
		if interval > 0 && i > 1 {
			if err := sleep(ctx, interval); err != nil {
				return status.FromContextError(err).Err()
			}
		}
		msg := &greetv1.GreetStreamResponse{Greeting: fmt.Sprintf("%s, %s!", word, req.GetName()), Index: int32(i)}
		if err := stream.Send(msg); err != nil {
			return err
		}
	}
	return nil
}

// GreetMany implements greet.v1.GreetService.GreetMany.
func (s *GRPC) GreetMany(stream grpc.ClientStreamingServer[greetv1.GreetManyRequest, greetv1.GreetManyResponse]) error {
	s.record(grpcCall(stream.Context(), "GreetMany"))
	var names []string
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		names = append(names, msg.GetName())
	}
	return stream.SendAndClose(&greetv1.GreetManyResponse{Greeting: manyGreeting(s.word(), names), Count: int32(len(names))})
}

// Chat implements greet.v1.GreetService.Chat.
func (s *GRPC) Chat(stream grpc.BidiStreamingServer[greetv1.ChatRequest, greetv1.ChatResponse]) error {
	s.record(grpcCall(stream.Context(), "Chat"))
	for {
		msg, err := stream.Recv()
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
func (s *GRPC) ResetGreetings(ctx context.Context, _ *greetv1.ResetGreetingsRequest) (*greetv1.ResetGreetingsResponse, error) {
	s.record(grpcCall(ctx, "ResetGreetings"))
	s.setWord("")
	return &greetv1.ResetGreetingsResponse{}, nil
}
