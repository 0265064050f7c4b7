package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
	"github.com/corsgate/corsgate/gen/greet/v1/greetv1connect"
)

// protoGRPCGo is the streaming row read with grpc-go's own client straight
// from the backend: the native rate the gateways are held against.
const protoGRPCGo = "grpc-go"

const streamName = "bench" // short, so that messages are small (~20 bytes)

type streamKey struct {
	protocol string
	target   string
}

// streamResult accumulates one streaming cell over the rounds.
type streamResult struct {
	msgs     int64
	elapsed  time.Duration
	cpu      time.Duration
	rates    []float64
	peakRSS  uint64
	errors   int
	firstErr string
}

func (r *streamResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.msgs) / r.elapsed.Seconds()
}

// receiver reads one GreetStream of count messages and returns how many
// arrived.
type receiver func(ctx context.Context, count int) (int, error)

// runStreamCell times one stream of cfg.streamCount messages after a short
// unmeasured one, reading the target's CPU and peak RSS around it.
func runStreamCell(ctx context.Context, t *target, recv receiver, count int, res *streamResult) error {
	pid := t.proc.pid()
	if _, err := recv(ctx, 100); err != nil { // warm-up: connection, first buffers
		res.errors++
		if res.firstErr == "" {
			res.firstErr = oneLine(err.Error())
		}
		return nil
	}
	_ = resetPeak(pid)
	cpu0, err := procCPU(pid)
	if err != nil {
		return err
	}
	start := time.Now()
	n, err := recv(ctx, count)
	elapsed := time.Since(start)
	cpu1, cerr := procCPU(pid)
	if cerr != nil {
		return cerr
	}
	mem, merr := procMem(pid)
	if merr != nil {
		return merr
	}
	if err != nil {
		res.errors++
		if res.firstErr == "" {
			res.firstErr = oneLine(err.Error())
		}
		return ctx.Err()
	}
	res.msgs += int64(n)
	res.elapsed += elapsed
	res.cpu += cpu1 - cpu0
	res.rates = append(res.rates, float64(n)/elapsed.Seconds())
	res.peakRSS = max(res.peakRSS, mem.peak)
	return ctx.Err()
}

// connectReceiver reads streams with a connect-go client speaking p.
func connectReceiver(t *target, p protocol) (receiver, func()) {
	hc := newHTTPClient(p, 1)
	client := newGreetClient(hc, t.addrFor(p.name), p)
	return func(ctx context.Context, count int) (int, error) {
		return receiveConnect(ctx, client, count)
	}, hc.CloseIdleConnections
}

func receiveConnect(ctx context.Context, client greetv1connect.GreetServiceClient, count int) (int, error) {
	stream, err := client.GreetStream(ctx, connect.NewRequest(&greetv1.GreetStreamRequest{Name: streamName, Count: int32(count)}))
	if err != nil {
		return 0, err
	}
	defer stream.Close()
	n := 0
	for stream.Receive() {
		n++
	}
	if err := stream.Err(); err != nil {
		return n, err
	}
	if n != count {
		return n, fmt.Errorf("%d messages, want %d", n, count)
	}
	return n, nil
}

// grpcReceiver reads streams with grpc-go's client from addr.
func grpcReceiver(addr string) (receiver, func(), error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("grpc client for %s: %w", addr, err)
	}
	client := greetv1.NewGreetServiceClient(conn)
	return func(ctx context.Context, count int) (int, error) {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := client.GreetStream(ctx, &greetv1.GreetStreamRequest{Name: streamName, Count: int32(count)})
		if err != nil {
			return 0, err
		}
		n := 0
		for {
			_, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return n, err
			}
			n++
		}
		if n != count {
			return n, fmt.Errorf("%d messages, want %d", n, count)
		}
		return n, nil
	}, func() { _ = conn.Close() }, nil
}
