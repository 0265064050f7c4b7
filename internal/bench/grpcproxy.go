package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The pass-through floor: the cheapest gRPC proxy grpc-go makes, as
// transparent gRPC proxies are built on it. grpc-go's server transport
// accepts the call, a raw codec keeps each message the buffers it arrived
// in (no copy, no decoding), an unknown-service handler forwards it on one
// grpc-go client connection to the backend, and the answer's messages go
// back the same way. No routing, no limits, no metrics, no metadata
// filtering: what any gRPC pass-through on grpc-go pays. corsgate's
// --grpc-listen is the same server transport with its own backend client;
// against native grpc-go, this target's ratio is the most that design
// reaches on this machine.

// rawMsg is one message as grpc-go's buffers.
type rawMsg struct{ data mem.BufferSlice }

// rawMsgCodec passes *rawMsg through: Unmarshal keeps a reference to the
// received buffers, Marshal hands them to the sender, which frees them once
// written.
type rawMsgCodec struct{}

func (rawMsgCodec) Name() string { return "bench-raw" }

func (rawMsgCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMsg)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return m.data, nil
}

func (rawMsgCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMsg)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	data.Ref()
	m.data = data
	return nil
}

// proxyStreamDesc is every call, to the client connection: both sides may
// stream.
var proxyStreamDesc = &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}

// serveGRPCProxy serves the pass-through floor on lis until ctx ends.
func serveGRPCProxy(ctx context.Context, backend string, lis net.Listener) error {
	if backend == "" {
		return fmt.Errorf("%s not set", childBackendEnv)
	}
	conn, err := grpc.NewClient(backend, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	srv := grpc.NewServer(
		grpc.ForceServerCodecV2(rawMsgCodec{}),
		grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
			return forward(conn, ss)
		}),
	)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		srv.Stop()
	}
	return err
}

// forward passes one call through: the client's messages first, then the
// backend's answer. Sequential, so it serves calls whose client does not
// wait for an answer before it ends its stream (unary and server
// streaming, what the bench's pass-through cells call), with no goroutine
// of its own.
func forward(conn *grpc.ClientConn, ss grpc.ServerStream) error {
	method, _ := grpc.MethodFromServerStream(ss)
	md, _ := metadata.FromIncomingContext(ss.Context())
	md = md.Copy()
	delete(md, ":authority")
	ctx, cancel := context.WithCancel(metadata.NewOutgoingContext(ss.Context(), md))
	defer cancel()
	cs, err := conn.NewStream(ctx, proxyStreamDesc, method, grpc.ForceCodecV2(rawMsgCodec{}))
	if err != nil {
		return err
	}
	for {
		var m rawMsg
		err := ss.RecvMsg(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if err := cs.SendMsg(&m); err != nil {
			break // the backend ended the call: its status comes with RecvMsg
		}
	}
	if err := cs.CloseSend(); err != nil {
		return err
	}
	if hdr, err := cs.Header(); err == nil && len(hdr) > 0 {
		_ = ss.SetHeader(hdr)
	}
	for {
		var m rawMsg
		err := cs.RecvMsg(&m)
		if errors.Is(err, io.EOF) {
			ss.SetTrailer(cs.Trailer())
			return nil
		}
		if err != nil {
			ss.SetTrailer(cs.Trailer())
			return status.Convert(err).Err()
		}
		if err := ss.SendMsg(&m); err != nil {
			return err
		}
	}
}
