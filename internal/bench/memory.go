package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"

	greetv1 "github.com/corsgate/corsgate/gen/greet/v1"
)

// memoryProtocols is the order in which the memory case picks a target's
// protocol: streams multiplexed on few h2c connections first. Only a target
// that speaks nothing else (grpcwebproxy) gets one HTTP/1.1 connection per
// stream.
var memoryProtocols = []string{protoConnectH2C, protoGRPCWebH2C, protoGRPC, protoGRPCWeb}

// memoryResult is the memory case of one target.
type memoryResult struct {
	target    string
	protocol  string
	want      int
	opened    int
	errors    int
	firstErr  string
	openTime  time.Duration // until the last stream delivered its first message
	before    memStatus     // before the streams
	open      memStatus     // with all streams open (peak: since the reset before opening)
	heapOpen  uint64
	heapErr   string
	heapLabel string
}

// runMemory holds n GreetStreams open through t (each asks for 100 000
// messages 10 s apart, so none ends), waits until each delivered its first
// message, then reads the target's RSS and heap, and closes them all.
func runMemory(ctx context.Context, t *target, n int) (memoryResult, error) {
	res := memoryResult{target: t.name, want: n, heapLabel: t.heapLabel}
	for _, name := range memoryProtocols {
		if t.speaks(name) {
			res.protocol = name
			break
		}
	}
	if res.protocol == "" {
		return res, fmt.Errorf("%s speaks none of the memory case's protocols", t.name)
	}
	p := protocols[res.protocol]
	hc := newHTTPClient(p, n)
	defer hc.CloseIdleConnections()
	client := newGreetClient(hc, t.addrFor(p.name), p)
	pid := t.proc.pid()
	_ = resetPeak(pid)
	var err error
	if res.before, err = procMem(pid); err != nil {
		return res, err
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup
		sem     = make(chan struct{}, 256) // streams being opened at once
		settled = make(chan struct{}, n)   // one per stream: opened or failed
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		res.errors++
		if res.firstErr == "" {
			res.firstErr = oneLine(err.Error())
		}
	}
	start := time.Now()
	req := &greetv1.GreetStreamRequest{Name: "m", Count: 100000, IntervalMs: 10000}
	openDeadline := time.NewTimer(2*time.Minute + time.Duration(n)*10*time.Millisecond)
	defer openDeadline.Stop()
launch:
	for range n {
		select {
		case sem <- struct{}{}:
		case <-openDeadline.C:
			break launch
		case <-ctx.Done():
			break launch
		}
		wg.Go(func() {
			stream, err := client.GreetStream(sctx, connect.NewRequest(req))
			if err != nil {
				<-sem
				settled <- struct{}{}
				fail(err)
				return
			}
			defer stream.Close()
			first := stream.Receive()
			<-sem
			settled <- struct{}{}
			if !first {
				fail(fmt.Errorf("no first message: %w", stream.Err()))
				return
			}
			mu.Lock()
			res.opened++
			mu.Unlock()
			for stream.Receive() {
			}
		})
	}
	launched := n
	for i := range n {
		select {
		case <-settled:
			continue
		case <-openDeadline.C:
		case <-ctx.Done():
		}
		launched = i
		break
	}
	res.openTime = time.Since(start)
	time.Sleep(time.Second) // let the target settle (lazy frees, GC)
	if res.open, err = procMem(pid); err != nil {
		return res, err
	}
	if t.heap != nil {
		if h, err := t.heap(ctx); err != nil {
			res.heapErr = oneLine(err.Error())
		} else {
			res.heapOpen = h
		}
	} else {
		res.heapErr = "no heap endpoint"
	}
	mu.Lock()
	opened := res.opened
	mu.Unlock()
	if launched < n && opened < n {
		fail(fmt.Errorf("only %d of %d streams settled in time", launched, n))
	}
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		return res, fmt.Errorf("%s: streams did not close within 30 s of cancelling", t.name)
	}
	return res, ctx.Err()
}
